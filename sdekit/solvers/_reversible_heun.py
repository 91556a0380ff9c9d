r"""Reversible Heun: an algebraically reversible Stratonovich (and ODE) method.

The state carries a second copy $\hat y$ of the solution and the vector field's values at it,
so each step costs one drift and one diffusion evaluation, and a step can be undone exactly
(`inverse_step`): the reverse pass of `sk.adjoint.Reversible` rebuilds the
trajectory from the final state instead of storing it.
"""

import functools
from typing import Any, NamedTuple

import jax

from ..terms import SDE, contract
from ._base import LinearDense, SDEFacts, Solver, linear_interpolate


class ReversibleHeunState(NamedTuple):
    r"""The carried half of the reversible pair and the vector field cached there.

    Attributes:
        yhat: $\hat y_n$.
        f: drift (ODE: vector field) at $(t_n, \hat y_n)$.
        g: diffusion at $(t_n, \hat y_n)$ (its raw output, contracted with each step's $W$);
            `None` for ODEs.
    """

    yhat: Any
    f: Any
    g: Any


def _fields(problem, t, y, args):
    if isinstance(problem, SDE):
        return problem.drift(t, y, args), problem.diffusion(t, y, args)
    return problem.vector_field(t, y, args), None


def _increment(problem, f, g, h, inc, like):
    """$f h + g W$ (just $f h$ for ODEs)."""
    out = jax.tree.map(lambda fi: fi * h.astype(fi.dtype), f)
    if g is not None:
        out = jax.tree.map(lambda a, b: a + b, out, contract(g, inc.W, like))
    return out


def _init(problem, t0, y0, args):
    f, g = _fields(problem, t0, y0, args)
    return ReversibleHeunState(yhat=y0, f=f, g=g)


def _step(problem, t0, t1, y0, args, inc, state):
    h = jax.numpy.asarray(t1) - jax.numpy.asarray(t0)
    half = _increment(problem, state.f, state.g, h, inc, y0)
    # yhat_{n+1} = 2 y_n - yhat_n + (f_n h + g_n W)
    yhat1 = jax.tree.map(lambda y, yh, d: 2 * y - yh + d, y0, state.yhat, half)
    f1, g1 = _fields(problem, t1, yhat1, args)
    half1 = _increment(problem, f1, g1, h, inc, y0)
    # y_{n+1} = y_n + (f_n + f_{n+1}) h / 2 + (g_n + g_{n+1}) W / 2
    y1 = jax.tree.map(lambda y, a, b: y + 0.5 * (a + b), y0, half, half1)
    return y1, None, LinearDense(y0, y1), ReversibleHeunState(yhat=yhat1, f=f1, g=g1)


def _inverse_step(problem, t0, t1, y1, args, inc, state1):
    r"""Undo one `reversible_heun` step from $t_1$ back to $t_0$ (exact up to rounding):

    $\hat y_n = 2 y_{n+1} - \hat y_{n+1} - (f_{n+1} h + g_{n+1} W)$,
    $y_n = y_{n+1} - \tfrac12 (f_n + f_{n+1}) h - \tfrac12 (g_n + g_{n+1}) W$,

    with $f_n, g_n$ evaluated at $(t_0, \hat y_n)$: one evaluation, as forwards.

    Args:
        problem, args: as given to `step`.
        t0, t1: the step's interval (the same as forwards).
        y1, state1: the state after the step.
        inc: the step's Brownian increment (the same as forwards); `None` for ODEs.

    Returns:
        `(y0, state0)`.
    """
    h = jax.numpy.asarray(t1) - jax.numpy.asarray(t0)
    half1 = _increment(problem, state1.f, state1.g, h, inc, y1)
    yhat0 = jax.tree.map(lambda y, yh, d: 2 * y - yh - d, y1, state1.yhat, half1)
    f0, g0 = _fields(problem, t0, yhat0, args)
    half0 = _increment(problem, f0, g0, h, inc, y1)
    y0 = jax.tree.map(lambda y, a, b: y - 0.5 * (a + b), y1, half0, half1)
    return y0, ReversibleHeunState(yhat=yhat0, f=f0, g=g0)


_NOISES = ("additive", "scalar", "diagonal", "commutative", "general")


@functools.cache
def reversible_heun() -> Solver:
    r"""Reversible Heun (Kidger, Foster, Li, Lyons 2021), for Stratonovich SDEs and ODEs:

    $\hat y_{n+1} = 2 y_n - \hat y_n + f(t_n, \hat y_n) h + g(t_n, \hat y_n) W_n$,
    $y_{n+1} = y_n + \tfrac12\big(f(t_n, \hat y_n) + f(t_{n+1}, \hat y_{n+1})\big) h
    + \tfrac12\big(g(t_n, \hat y_n) + g(t_{n+1}, \hat y_{n+1})\big) W_n$,

    starting from $\hat y_0 = y_0$. The values at $\hat y_{n+1}$ are cached in the state
    (`ReversibleHeunState`), and the map $(y_n, \hat y_n) \mapsto (y_{n+1}, \hat y_{n+1})$ has
    an explicit inverse (`inverse_step`).

    - ODE order 2.
    - Calculus: Stratonovich. Strong order 1.0 for additive, scalar and commutative noise
      (like Heun's method: measured 1.00, 0.97, 1.02 in `tests/solvers/test_reversible_heun_order.py`),
      0.5 for general (and diagonal) noise; weak order 1.
    - Evaluations per step: 1 drift, 1 diffusion (after 1 of each in `init`).
    - Lévy area: none (increment $W$ only).
    - Error estimate: none (fixed steps only: `StepTo` or `ConstantStep`; adaptive reversible
      Heun is unstable, diffrax #317). Its stability region is small: use small steps on
      stiff or strongly dissipative problems.

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output. Use it with
        `adjoint=sk.adjoint.Reversible()` for exact gradients in O(1) memory.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import reversible_heun
        >>> sol = sk.solve(sk.ODE(lambda t, y, a: -y), reversible_heun(), 0.0, 1.0,
        ...                jnp.array(1.0), dt0=0.01)
        >>> round(float(sol.ys[-1]), 4)
        0.3679

    References:
        P. Kidger, J. Foster, X. Li, T. Lyons, "Efficient and Accurate Gradients for Neural
        SDEs", NeurIPS 2021 (arXiv 2105.13493), Algorithm 1 (forward) and 2 (backward).
    """
    return Solver(
        name="reversible_heun",
        init=_init,
        step=_step,
        interpolate=linear_interpolate,
        order=2,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        init_fevals=1,
        sde=SDEFacts(
            calculus="stratonovich",
            strong_order=(("additive", 1.0), ("scalar", 1.0), ("diagonal", 0.5), ("commutative", 1.0), ("general", 0.5)),
            weak_order=tuple((n, 1.0) for n in _NOISES),
        ),
        inverse_step=_inverse_step,
    )
