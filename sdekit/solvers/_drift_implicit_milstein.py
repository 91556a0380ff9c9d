"""Drift-implicit (theta) Milstein method for commutative noise."""

import functools

import jax

from . import _newton
from ._base import LinearDense, SDEFacts, Solver, linear_interpolate
from ._drift_implicit_euler import check_theta, drift_implicit_stage, init
from ._milstein import _derivative_terms

_NOISE = ("additive", "scalar", "diagonal", "commutative")


def _step(theta: float, ito: bool, options, problem, t0, t1, y0, args, inc, state):
    g_w, correction = _derivative_terms(problem, t0, y0, args, inc.W, ito, inc.dt)
    explicit = jax.tree.map(lambda a, b: a + b, g_w, correction)
    y1, new_state = drift_implicit_stage(theta, options, problem, t0, t1, y0, args, explicit, state)
    return y1, None, LinearDense(y0, y1), new_state


@functools.cache
def implicit_milstein(theta: float = 1.0, calculus: str = "ito", jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Drift-implicit (theta) Milstein method for stiff drifts and commutative noise:
    $y_1 = y_0 + \big((1 - \theta) f(t_0, y_0) + \theta f(t_1, y_1)\big) h + g\Delta W
    + \tfrac12 \sum_{j,k} (\partial g_k)[g_j] (\Delta W_j \Delta W_k - \delta_{jk} h)$
    (Itô; Stratonovich drops the $h$ term), $g$ and its derivative at $(t_0, y_0)$.

    Strong order 1.0 and weak order 1.0 for scalar, diagonal, commutative and additive noise;
    not for general noise. Mean-square stable for stiff linear drifts at steps far beyond
    Milstein's explicit limit when $\theta \ge 1/2$. The drift stage is solved by a chord
    Newton iteration (the drift's Jacobian carried between steps); the diffusion's derivative
    by Jacobian-vector products as in `milstein`. Needs only W; no error estimate (fixed steps).

    Args:
        theta: implicitness of the drift in [0, 1] (1: implicit Euler drift).
        calculus: `"ito"` (default) or `"stratonovich"`.
        jacobian: `None` (`jax.jacfwd` of the drift), or `jacobian(t, y, args) -> (n, n)` for the
            flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> sde = sk.SDE(lambda t, y, a: -500.0 * (y - 1.0), lambda t, y, a: 0.5 * y, noise="diagonal")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-12)
        >>> sol = sk.solve(sde, sk.solvers.implicit_milstein(), 0.0, 1.0, jnp.ones(2), dt0=0.05,
        ...                brownian=tree)
        >>> bool(jnp.all(jnp.abs(sol.ys[-1] - 1.0) < 0.5))
        True

    References:
        G. N. Milstein, E. Platen, H. Schurz, "Balanced implicit methods for stiff stochastic
        systems", SIAM J. Numer. Anal. 35 (1998) 1010--1019; Kloeden & Platen (1992), Sec. 12.3
        (implicit strong order 1.0 schemes).
    """
    theta = check_theta("implicit_milstein", theta)
    if calculus not in ("ito", "stratonovich"):
        raise ValueError(f"implicit_milstein: calculus must be 'ito' or 'stratonovich', got {calculus!r}.")
    options = _newton.check_options("implicit_milstein", jacobian, linear_solver)
    orders = tuple((n, 1.0) for n in _NOISE)
    return Solver(
        name="implicit_milstein",
        init=functools.partial(init, options),
        step=functools.partial(_step, theta, calculus == "ito", options),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        sde=SDEFacts(calculus=calculus, strong_order=orders, weak_order=orders),
    )
