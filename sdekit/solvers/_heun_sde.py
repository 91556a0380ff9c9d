r"""Stratonovich Euler--Heun, Heun and midpoint methods for SDEs (increment $W$ only).

Each is a `StochasticTableau` in the general form without Lévy areas, stepped by the SRK engine
(`sdekit/solvers/_srk.py`); Heun and midpoint treat $h f + g W$ as one vector field, as their
ODE namesakes treat $h f$, and carry the same embedded Euler estimate.
"""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import GeneralNoiseCoeffs, StochasticTableau, make_srk_solver

_NOISES = ("additive", "scalar", "diagonal", "commutative", "general")

#: Euler--Heun: Euler for the drift, the trapezoidal (Heun) rule for the diffusion, both of its
#: diffusion evaluations at $t_0$; the second stage evaluates only the diffusion.
EULER_HEUN_TABLEAU = StochasticTableau(
    c=(F(0), F(0)),
    a=((F(0),),),
    b=(F(1), F(0)),
    e=None,
    w=GeneralNoiseCoeffs(a=((F(1),),), b=(F(1, 2), F(1, 2))),
)

#: Heun (explicit trapezoidal rule) on $h f + g W$; estimate: the difference to Euler.
HEUN_SDE_TABLEAU = StochasticTableau(
    c=(F(0), F(1)),
    a=((F(1),),),
    b=(F(1, 2), F(1, 2)),
    e=(F(1, 2), F(-1, 2)),
    w=GeneralNoiseCoeffs(a=((F(1),),), b=(F(1, 2), F(1, 2)), e=(F(1, 2), F(-1, 2))),
)

#: Explicit midpoint rule on $h f + g W$; estimate: the difference to Euler.
MIDPOINT_SDE_TABLEAU = StochasticTableau(
    c=(F(0), F(1, 2)),
    a=((F(1, 2),),),
    b=(F(0), F(1)),
    e=(F(1), F(-1)),
    w=GeneralNoiseCoeffs(a=((F(1, 2),),), b=(F(0), F(1)), e=(F(1), F(-1))),
)


@functools.cache
def euler_heun() -> Solver:
    r"""Euler--Heun: $y_1 = y_0 + h f(t_0, y_0) + \tfrac12\big(g(t_0, y_0) + g(t_0, \hat y)\big) W$
    with $\hat y = y_0 + g(t_0, y_0) W$.

    - Calculus: Stratonovich (the cheapest Stratonovich method).
    - Strong orders: 0.5 general noise; 1.0 commutative, scalar and additive noise
      (`"diagonal"` counts as general: commutative only when each $g_i$ depends on $y_i$ alone).
      With commutative noise the step reproduces the derivative-free Stratonovich Milstein term
      $\tfrac12 \sum_{ij} (Dg_j\, g_i) W_i W_j$, hence order 1 (diffrax's table lists 0.5; the
      tests here measure 1.0 on scalar noise). Weak order 1.
    - Evaluations per step: 1 drift, 2 diffusion.
    - Lévy area: none (increment $W$ only).
    - Error estimate: none (fixed steps only).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import euler_heun
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.5 * y, noise="scalar",
        ...              calculus="stratonovich")
        >>> inc = sk.Increment(jnp.asarray(0.01), jnp.asarray(0.1), None, None)
        >>> solver, y0 = euler_heun(), jnp.array(1.0)
        >>> y1, y_error, _, _ = solver.step(gbm, 0.0, 0.01, y0, None, inc, solver.init(gbm, 0.0, y0, None))
        >>> round(float(y1), 6), y_error is None  # 1 + 0.001 + 0.05 + 0.5 * 0.5**2 * 0.1**2
        (1.05225, True)

    References:
        P. E. Kloeden, E. Platen, Numerical Solution of Stochastic Differential Equations
        (Springer, 1992), Sec. 11.1; as in diffrax's `EulerHeun`.
    r"""
    return make_srk_solver(
        "euler_heun",
        EULER_HEUN_TABLEAU,
        strong_order=(("additive", 1.0), ("scalar", 1.0), ("diagonal", 0.5), ("commutative", 1.0), ("general", 0.5)),
        weak_order=tuple((n, 1.0) for n in _NOISES),
    )


_TWO_STAGE_STRONG = (("additive", 1.0), ("scalar", 1.0), ("diagonal", 0.5), ("commutative", 1.0), ("general", 0.5))
# Per step: O(h^1.5) for additive noise; O(h) otherwise (the estimate's leading term is
# $\frac12 g'g\,W^2$-like, nonzero even for commutative noise).
_TWO_STAGE_ERROR = (("additive", 1.5), ("scalar", 1.0), ("diagonal", 1.0), ("commutative", 1.0), ("general", 1.0))


@functools.cache
def heun_sde() -> Solver:
    r"""Heun's method for Stratonovich SDEs: the explicit trapezoidal rule on $h f + g W$,

    $z = y_0 + h f(t_0, y_0) + g(t_0, y_0) W$,
    $y_1 = y_0 + \tfrac12 h\big(f(t_0, y_0) + f(t_1, z)\big) + \tfrac12\big(g(t_0, y_0) + g(t_1, z)\big) W$.

    - Calculus: Stratonovich.
    - Strong orders: 0.5 general noise; 1.0 commutative, scalar and additive noise (`"diagonal"`
      counts as general: commutative only when each $g_i$ depends on $y_i$ alone). Weak order 1.
    - Evaluations per step: 2 drift, 2 diffusion.
    - Lévy area: none (increment $W$ only).
    - Error estimate: difference to Euler--Maruyama-type Euler step,
      $\tfrac12(h f_1 + g_1 W) - \tfrac12(h f_2 + g_2 W)$: $O(h^{1.5})$ per step for additive
      noise, $O(h)$ otherwise (`sde.error_order`).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import heun_sde
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.5 * y, noise="scalar",
        ...              calculus="stratonovich")
        >>> inc = sk.Increment(jnp.asarray(0.01), jnp.asarray(0.1), None, None)
        >>> solver, y0 = heun_sde(), jnp.array(1.0)
        >>> y1, y_error, _, _ = solver.step(gbm, 0.0, 0.01, y0, None, inc, solver.init(gbm, 0.0, y0, None))
        >>> y1.shape, y_error.shape
        ((), ())

    References:
        W. Rümelin, "Numerical treatment of stochastic differential equations", SIAM J. Numer.
        Anal. 19(3) (1982) 604--613; as in diffrax's `Heun` applied to SDEs.
    """
    return make_srk_solver(
        "heun_sde",
        HEUN_SDE_TABLEAU,
        strong_order=_TWO_STAGE_STRONG,
        weak_order=tuple((n, 1.0) for n in _NOISES),
        error_order=_TWO_STAGE_ERROR,
    )


@functools.cache
def midpoint_sde() -> Solver:
    r"""The explicit midpoint method for Stratonovich SDEs, on $h f + g W$:

    $z = y_0 + \tfrac12\big(h f(t_0, y_0) + g(t_0, y_0) W\big)$,
    $y_1 = y_0 + h f(t_0 + h/2, z) + g(t_0 + h/2, z) W$.

    - Calculus: Stratonovich.
    - Strong orders: 0.5 general noise; 1.0 commutative, scalar and additive noise (`"diagonal"`
      counts as general: commutative only when each $g_i$ depends on $y_i$ alone). Weak order 1.
    - Evaluations per step: 2 drift, 2 diffusion.
    - Lévy area: none (increment $W$ only).
    - Error estimate: difference to the Euler step, $(h f_1 + g_1 W) - (h f_2 + g_2 W)$:
      $O(h^{1.5})$ per step for additive noise, $O(h)$ otherwise (`sde.error_order`).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import midpoint_sde
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.5 * y, noise="scalar",
        ...              calculus="stratonovich")
        >>> inc = sk.Increment(jnp.asarray(0.01), jnp.asarray(0.1), None, None)
        >>> solver, y0 = midpoint_sde(), jnp.array(1.0)
        >>> y1, y_error, _, _ = solver.step(gbm, 0.0, 0.01, y0, None, inc, solver.init(gbm, 0.0, y0, None))
        >>> y1.shape, y_error.shape
        ((), ())

    References:
        W. Rümelin, "Numerical treatment of stochastic differential equations", SIAM J. Numer.
        Anal. 19(3) (1982) 604--613; Kloeden & Platen (1992), Sec. 11.1; as in diffrax's
        `Midpoint` applied to SDEs.
    """
    return make_srk_solver(
        "midpoint_sde",
        MIDPOINT_SDE_TABLEAU,
        strong_order=_TWO_STAGE_STRONG,
        weak_order=tuple((n, 1.0) for n in _NOISES),
        error_order=_TWO_STAGE_ERROR,
    )
