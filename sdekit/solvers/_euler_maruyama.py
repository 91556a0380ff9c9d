"""Euler--Maruyama."""

import functools

import jax

from ._base import EmptyState, LinearDense, SDEFacts, Solver, linear_interpolate


def _init(problem, t0, y0, args):
    return EmptyState()


def _step(problem, t0, t1, y0, args, inc, state):
    h = inc.dt
    f0 = problem.drift(t0, y0, args)
    noise = problem.noise_term(t0, y0, args, inc.W)
    y1 = jax.tree.map(lambda y, f, g: y + h.astype(y.dtype) * f + g, y0, f0, noise)
    return y1, None, LinearDense(y0, y1), state


@functools.cache
def euler_maruyama() -> Solver:
    r"""Euler--Maruyama: $y_1 = y_0 + f(t_0, y_0) h + g(t_0, y_0) \Delta W$.

    Itô. Strong order 0.5 (1.0 for additive noise), weak order 1, any noise type. One drift
    and one diffusion evaluation per step. Needs only the increment W; no error estimate
    (fixed steps only: adaptive Euler--Maruyama with non-additive noise need not converge).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> ou = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.5 * jnp.ones_like(y), noise="additive")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-12)
        >>> sol = sk.solve(ou, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(3), dt0=0.01,
        ...                brownian=tree)
        >>> sol.ys.shape
        (1, 3)

    References:
        G. Maruyama, Rend. Circ. Mat. Palermo 4 (1955) 48--90; Kloeden & Platen, Numerical
        Solution of SDEs (1992), Sec. 10.2.
    """
    return Solver(
        name="euler_maruyama",
        init=_init,
        step=_step,
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        sde=SDEFacts(
            calculus="ito",
            strong_order=(("additive", 1.0), ("scalar", 0.5), ("diagonal", 0.5), ("commutative", 0.5), ("general", 0.5)),
            weak_order=tuple((n, 1.0) for n in ("additive", "scalar", "diagonal", "commutative", "general")),
        ),
    )
