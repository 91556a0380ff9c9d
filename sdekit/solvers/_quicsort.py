r"""QUICSORT: QUadrature Inspired and Contractive Shifted ODE with Runge--Kutta Three (Foster & O'Kane)."""

import functools
import math

import jax.numpy as jnp

from ._base import Solver
from ._langevin_common import grad, make_langevin_solver, phi1, phi2, prepare, tmap

#: The Gauss--Legendre nodes on [0, 1] at which the gradient is evaluated.
LEFT = 0.5 - math.sqrt(3) / 6
RIGHT = 0.5 + math.sqrt(3) / 6


def _step(problem, t0, t1, y0, args, inc, state):
    x0, v0 = y0
    s = prepare(problem, t0, t1, y0, inc, "quicsort", needs_k=True)
    h = s.h
    alpha = tmap(lambda g: g * h, s.gamma)

    def a(c):  # (1 - exp(-c alpha)) / gamma
        return tmap(lambda al: (c * h) * phi1(c * al), alpha)

    def b(c):  # (exp(-c alpha) + c alpha - 1) / (gamma^2 h)
        return tmap(lambda al: (c * c * h) * phi2(c * al), alpha)

    def beta(c):
        return tmap(lambda al: jnp.exp(-c * al), alpha)

    a_l, a_r, a_1, a_third = a(LEFT), a(RIGHT), a(1.0), a(1.0 / 3.0)
    b_l, b_r, b_1 = b(LEFT), b(RIGHT), b(1.0)
    beta_l, beta_r, beta_1 = beta(LEFT), beta(RIGHT), beta(1.0)
    v_shift = tmap(lambda v, r, hh, kk: v + r * (hh + 6 * kk), v0, s.rho, s.H, s.K)
    noise = tmap(lambda r, w, kk: r * (w - 12 * kk), s.rho, s.W, s.K)
    x_l = tmap(lambda x, vs, n, al, bl: x + al * vs + bl * n, x0, v_shift, noise, a_l, b_l)
    g_l = tmap(lambda f, u: u * h * f, grad(problem, x_l, args), s.u)
    x_r = tmap(lambda x, vs, n, ar, br, at, g: x + ar * vs + br * n - at * g, x0, v_shift, noise, a_r, b_r, a_third, g_l)
    g_r = tmap(lambda f, u: u * h * f, grad(problem, x_r, args), s.u)
    x1 = tmap(lambda x, vs, n, a1, b1, ar, al, gl, gr: x + a1 * vs + b1 * n - 0.5 * (ar * gl + al * gr),
              x0, v_shift, noise, a_1, b_1, a_r, a_l, g_l, g_r)
    v1 = tmap(lambda vs, n, be1, ber, bel, a1, gl, gr, r, hh, kk:
              be1 * vs - 0.5 * (ber * gl + bel * gr) + (a1 / h) * n - r * (hh - 6 * kk),
              v_shift, noise, beta_1, beta_r, beta_l, a_1, g_l, g_r, s.rho, s.H, s.K)
    return (x1, v1), None, state


@functools.cache
def quicsort() -> Solver:
    r"""QUICSORT, Foster and O'Kane's third-order method for the underdamped Langevin diffusion
    (`sk.UnderdampedLangevin`): the shifted ODE of SORT with the gradient at the two
    Gauss--Legendre nodes $l, r = \tfrac12 \mp \tfrac{\sqrt3}{6}$ and UBU-style exact
    Ornstein--Uhlenbeck transport.

    With $h$ the step, $\alpha = \gamma h$, $\beta_c = e^{-c\alpha}$, $a_c = (1 - \beta_c)/\gamma$,
    $b_c = (\beta_c + c\alpha - 1)/(\gamma^2 h)$, $\rho = \sqrt{2\gamma u}$ and the tree's
    $W$, $H$, $K$:

    $$\tilde v_0 = v_0 + \rho(H + 6K),\qquad N = \rho(W - 12K),$$
    $$x_l = x_0 + a_l\tilde v_0 + b_l N,\quad g_l = u h\nabla f(x_l),\qquad
    x_r = x_0 + a_r\tilde v_0 + b_r N - a_{1/3}\,g_l,\quad g_r = u h\nabla f(x_r),$$
    $$x_1 = x_0 + a_1\tilde v_0 + b_1 N - \tfrac12(a_r g_l + a_l g_r),\qquad
    v_1 = \beta_1\tilde v_0 - \tfrac12(\beta_r g_l + \beta_l g_r) + \tfrac{a_1}{h} N - \rho(H - 6K).$$

    - Problems: `sk.UnderdampedLangevin` only.
    - Orders: strong 3, weak 3 (measured in `tests/solvers/test_langevin.py`).
    - Evaluations per step: 2 gradients (not FSAL).
    - Lévy area: space-time-time ($H$ and $K$; `levy="space-time-time"`).
    - Error estimate: none of its own; adaptive with `sk.PID` through `sk.solvers.half_step`
      (step doubling), else constant steps or `sk.StepTo` (`sk.solve` refuses `sk.PID` on it).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: for a problem that is not `sk.UnderdampedLangevin`; from `step` if the
            increment has no $K$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> uld = sk.UnderdampedLangevin(lambda x, args: x, gamma=2.0, u=1.0)
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8,
        ...                        levy="space-time-time")
        >>> sol = sk.solve(uld, sk.solvers.quicsort(), 0.0, 1.0, (jnp.ones(2), jnp.zeros(2)),
        ...                dt0=0.125, brownian=tree)
        >>> sol.stats["num_fevals"].item()  # 2 per step
        16

    References:
        J. Foster, T. Lyons, H. Oberhauser, "The shifted ODE method for underdamped Langevin
        MCMC", arXiv 2101.03446 (2021), Definition 1.2 (SORT); with the modifications inspired by
        UBU (N. K. Chada, B. Leimkuhler, D. Paulin, P. A. Whalley, arXiv 2311.05025, 2024); used in
        A. Jelinčič, J. Foster, P. Kidger, arXiv 2405.06464 (2024), §5; the form as in diffrax
        0.7.2 (`diffrax.QUICSORT`).
    """
    return make_langevin_solver("quicsort", _step, strong_order=3.0, weak_order=3.0, levy_area="space-time-time",
                                fsal=False, grads_per_step=2)
