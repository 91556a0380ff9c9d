r"""Step doubling: an embedded error estimate for any SDE method, from two half steps."""

import functools
from typing import NamedTuple

import jax

from ..brownian import Increment
from ._base import LinearDense, SDEFacts, Solver, linear_interpolate


class HalfIncrement(NamedTuple):
    """The Brownian increments of a step's two halves $[t_0, t_m]$ and $[t_m, t_1]$, with
    $t_m = t_0 + (t_1 - t_0)/2$: what the step of a `half_step` solver receives."""

    left: Increment
    right: Increment


class HalvedFacts(SDEFacts):
    """`SDEFacts` of a step-doubling method. `halves` tells `sk.solve` to hand its step a
    `HalfIncrement` (both halves queried from the tree) instead of one `Increment`."""

    __slots__ = ()
    halves = True


def join(left: Increment, right: Increment) -> Increment:
    r"""The increment over the union of two adjacent intervals, by Chen's relation (exact):
    with $h_1, h_2$ the halves' lengths and $\bar H = hH$, $\bar K = h^2 K$,
    $\bar H = \bar H_1 + \bar H_2 + \tfrac12(h_2 W_1 - h_1 W_2)$ and
    $\bar K = \bar K_1 + \bar K_2 + \tfrac12(h_2\bar H_1 - h_1\bar H_2) + \tfrac{h_1 - h_2}{12}(h_1 W_2 - h_2 W_1)$."""
    h1, h2 = left.dt, right.dt
    h = h1 + h2
    w = jax.tree.map(lambda a, b: a + b, left.W, right.W)
    if left.H is None:
        return Increment(h, w, None, None)

    def hbar(a, b, w1, w2):
        d1, d2 = h1.astype(a.dtype), h2.astype(a.dtype)
        return d1 * a + d2 * b + (d2 * w1 - d1 * w2) / 2

    hb = jax.tree.map(hbar, left.H, right.H, left.W, right.W)
    hh = jax.tree.map(lambda x: x / h.astype(x.dtype), hb)
    if left.K is None:
        return Increment(h, w, hh, None)

    def kbar(k1, k2, a, b, w1, w2):
        d1, d2 = h1.astype(k1.dtype), h2.astype(k1.dtype)
        return (d1**2 * k1 + d2**2 * k2 + (d2 * d1 * a - d1 * d2 * b) / 2
                + (d1 - d2) / 12 * (d1 * w2 - d2 * w1))

    kk = jax.tree.map(lambda x: x / h.astype(x.dtype) ** 2,
                      jax.tree.map(kbar, left.K, right.K, left.H, right.H, left.W, right.W))
    return Increment(h, w, hh, kk)


@functools.cache
def half_step(solver: Solver) -> Solver:
    r"""Step doubling: each step takes one step of `solver` over $[t_0, t_1]$ and two over its
    halves, returns the two-half result and their difference as the error estimate, so any SDE
    method (e.g. `sk.solvers.quicsort()` or `should()`, which have no embedded estimate) steps
    adaptively with `sk.PID` (diffrax's `HalfSolver`).

    - Orders: those of `solver`; the error estimate is the local error of its step,
      $O(h^{p + 1/2})$ for strong order $p$ (`sde.error_order`).
    - Evaluations per step: 3 times `solver`'s.
    - Brownian path: `sk.solve` queries both halves from the tree (`HalfIncrement`); the whole
      step's increment is joined from them by Chen's relation, exactly. Build the tree with
      `tol` at most half the smallest step (`dtmin >= 2 tol`), so the halves' increments are
      exact in joint law.

    Args:
        solver: an SDE method (its `sde` facts not None), without space-space area.

    Returns:
        A `Solver` whose step takes a `HalfIncrement`.

    Raises:
        ValueError: for an ODE method or one that needs the space-space Lévy area.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> uld = sk.UnderdampedLangevin(lambda x, args: x**3 - x, gamma=1.0, u=1.0)
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 8.0, shape=(2,), tol=2**-10,
        ...                        levy="space-time-time")
        >>> solver = sk.solvers.half_step(sk.solvers.quicsort())
        >>> sol = sk.solve(uld, solver, 0.0, 8.0, (jnp.ones(2), jnp.zeros(2)), dt0=0.1, brownian=tree,
        ...                controller=sk.PID(rtol=0.0, atol=2**-6, pcoeff=0.1, icoeff=0.4, dtmin=2**-9))
        >>> int(sol.result), int(sol.stats["num_fevals"]) == 6 * int(sol.stats["num_steps"])
        (0, True)
    """
    facts = solver.sde
    if facts is None:
        raise ValueError(f"half_step wraps an SDE method; {solver.name} is an ODE method.")
    if facts.levy_area == "space-space":
        raise ValueError(f"half_step cannot wrap {solver.name}: it needs the space-space Lévy area.")

    def step(problem, t0, t1, y0, args, inc: HalfIncrement, state):
        tm = t0 + (t1 - t0) / 2
        whole, _, _, _ = solver.step(problem, t0, t1, y0, args, join(inc.left, inc.right), state)
        y_half, _, _, state_half = solver.step(problem, t0, tm, y0, args, inc.left, state)
        y1, _, _, state1 = solver.step(problem, tm, t1, y_half, args, inc.right, state_half)
        error = jax.tree.map(lambda a, b: a - b, y1, whole)
        return y1, error, LinearDense(y0, y1), state1

    return Solver(
        name=f"half_step({solver.name})",
        init=solver.init,
        step=step,
        interpolate=linear_interpolate,
        order=None,
        embedded_order=1,
        interpolation_order=1,
        fevals_per_step=3 * solver.fevals_per_step,
        init_fevals=solver.init_fevals,
        sde=HalvedFacts(
            calculus=facts.calculus,
            strong_order=facts.strong_order,
            weak_order=facts.weak_order,
            levy_area=facts.levy_area,
            error_order=tuple((noise, order + 0.5) for noise, order in facts.strong_order),
        ),
    )
