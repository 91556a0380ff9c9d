r"""Drift-implicit (theta) Euler--Maruyama, and the implicit drift stage it shares with the
drift-implicit Milstein method."""

import functools

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from . import _newton
from ._base import LinearDense, SDEFacts, Solver, linear_interpolate

_NOISE = ("additive", "scalar", "diagonal", "commutative", "general")


def init(options: _newton.NewtonOptions, problem, t0, y0, args):
    return _newton.initial_state(options, y0)


def drift_implicit_stage(theta: float, options, problem, t0, t1, y0, args, explicit_part, state):
    r"""$y_1 = y_0 + (1 - \theta) h f(t_0, y_0) + \theta h f(t_1, y_1) + \text{explicit\_part}$ by the
    chord iteration (Jacobian of the drift carried in `state`): `(y1, new_state)`, with NaN in
    `y1` and a failure code in the state when Newton fails even with a fresh Jacobian."""
    t0, t1 = jnp.asarray(t0), jnp.asarray(t1)
    v0, flat = _newton.flat_field(problem.drift, y0, args)
    dtype = v0.dtype
    h = (t1 - t0).astype(dtype)
    h_theta = h * jnp.asarray(theta, dtype)
    base = v0 + ravel_pytree(explicit_part)[0].astype(dtype)
    fevals = 0
    guess = base
    if theta != 1:
        f0 = flat.f(t0, v0)
        base = base + (1 - theta) * h * f0
        guess = base + h_theta * f0
        fevals = 1
    scale = _newton.tolerances(state, v0)

    def attempt(jacobian):
        solve = _newton.linear_solver(options, flat, jacobian, h_theta, t1, v0)
        result = _newton.chord(lambda z: z - base - h_theta * flat.f(t1, z), solve, guess, scale, state.eta,
                               jnp.ones((), bool), _newton.tangent_solver(options), state.tied)
        return _newton.Attempt(result.z, result.converged, result.eta, result.rate, result.iterations)

    zero = jnp.zeros((), dtype)
    template = _newton.Attempt(v0, jnp.zeros((), bool), zero, zero, jnp.zeros((), jnp.int32))
    tried, jacobian, _, newton_fevals = _newton.with_fresh_retry(
        attempt, lambda: _newton.jacobian_at(options, flat, t0, v0, args), state, template
    )
    y1 = _newton.failed_to_nan(~tried.converged, flat.unravel(tried.outcome))
    return y1, _newton.next_state(state, tried, jacobian, (), fevals + newton_fevals)


def _step(theta: float, options, problem, t0, t1, y0, args, inc, state):
    noise = problem.noise_term(t0, y0, args, inc.W)
    y1, new_state = drift_implicit_stage(theta, options, problem, t0, t1, y0, args, noise, state)
    return y1, None, LinearDense(y0, y1), new_state


def check_theta(name: str, theta) -> float:
    if not isinstance(theta, (int, float)) or isinstance(theta, bool) or not 0 <= theta <= 1:
        raise ValueError(f"{name}: theta must be a number in [0, 1] (1: fully implicit drift), got {theta!r}.")
    return float(theta)


@functools.cache
def implicit_euler_maruyama(theta: float = 1.0, jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Drift-implicit (theta) Euler--Maruyama for stiff drifts:
    $y_1 = y_0 + \big((1 - \theta) f(t_0, y_0) + \theta f(t_1, y_1)\big) h + g(t_0, y_0) \Delta W$.

    Itô (the noise stays explicit). Strong order 0.5 (1.0 for additive noise), weak order 1, any
    noise type. With $\theta \ge 1/2$ it is mean-square A-stable on linear test equations
    ($\theta = 1$, the default, also damps the stiff modes: L-stable drift part), so steps need
    not resolve the drift's fast time scales, where Euler--Maruyama blows up beyond
    $h = 2/\lambda$. The drift stage is solved by a chord Newton iteration (one evaluation per
    iteration; the drift's Jacobian is carried between steps). Needs only the increment W; no
    error estimate (fixed steps).

    Args:
        theta: implicitness of the drift in [0, 1]: 1 implicit Euler, 1/2 trapezoidal, 0
            Euler--Maruyama.
        jacobian: `None` (`jax.jacfwd` of the drift), or `jacobian(t, y, args) -> (n, n)` for the
            flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> ou = sk.SDE(lambda t, y, a: -1000.0 * y, lambda t, y, a: jnp.ones_like(y), noise="additive")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-12)
        >>> sol = sk.solve(ou, sk.solvers.implicit_euler_maruyama(), 0.0, 1.0, jnp.ones(2), dt0=0.01,
        ...                brownian=tree)  # Euler--Maruyama would blow up: 1000 * 0.01 > 2
        >>> bool(jnp.all(jnp.abs(sol.ys[-1]) < 0.5))
        True

    References:
        D. J. Higham, "Mean-square and asymptotic stability of the stochastic theta method",
        SIAM J. Numer. Anal. 38 (2000) 753--769; Kloeden & Platen (1992), Sec. 12.2.
    """
    theta = check_theta("implicit_euler_maruyama", theta)
    options = _newton.check_options("implicit_euler_maruyama", jacobian, linear_solver)
    return Solver(
        name="implicit_euler_maruyama",
        init=functools.partial(init, options),
        step=functools.partial(_step, theta, options),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        sde=SDEFacts(
            calculus="ito",
            strong_order=tuple((n, 1.0 if n == "additive" else 0.5) for n in _NOISE),
            weak_order=tuple((n, 1.0) for n in _NOISE),
        ),
    )
