r"""ShOULD: the shifted ODE method with a third-order Runge--Kutta scheme (Foster, Lyons, Oberhauser)."""

import functools

import jax.numpy as jnp

from ._base import Solver
from ._langevin_common import LangevinFSALState, grad, make_langevin_solver, phi1, phi2, prepare, psi_h, psi_k, tmap


def _step(problem, t0, t1, y0, args, inc, state):
    x0, v0 = y0
    s = prepare(problem, t0, t1, y0, inc, "should", needs_k=True)
    h, f0 = s.h, state.grad
    alpha = tmap(lambda g: g * h, s.gamma)
    beta1 = tmap(lambda a: jnp.exp(-a), alpha)
    beta_half = tmap(lambda a: jnp.exp(-a / 2), alpha)
    a1 = tmap(lambda a: h * phi1(a), alpha)
    b1 = tmap(lambda a: h * phi2(a), alpha)
    a_half = tmap(lambda a: (h / 2) * phi1(a / 2), alpha)
    b_half = tmap(lambda a: (h / 4) * phi2(a / 2), alpha)
    # rho (c_H H + c_K K): the shifted noise of the position.
    noise_hk = tmap(lambda a, r, hh, kk: r * h * (psi_h(a) * hh + psi_k(a) * kk), alpha, s.rho, s.H, s.K)
    v_shift = tmap(lambda v, r, hh, kk: v + r * (hh + 6 * kk), v0, s.rho, s.H, s.K)
    x_half = tmap(lambda x, vs, f, a, b, u, r, w, kk: x + a * vs + b * (-u * h * f + r * (w - 12 * kk)),
                  x0, v_shift, f0, a_half, b_half, s.u, s.rho, s.W, s.K)
    f_half = grad(problem, x_half, args)
    x1 = tmap(lambda x, v, fa, fb, a, b, u, r, w, n: x + a * v - u * h * b * (fa / 3 + 2 * fb / 3) + r * b * w + n,
              x0, v0, f0, f_half, a1, b1, s.u, s.rho, s.W, noise_hk)
    f1 = grad(problem, x1, args)
    v1 = tmap(lambda v, fa, fb, fc, be, bh, a, g, u, r, w, n:
              be * v - u * h * (be * fa / 6 + 2 * bh * fb / 3 + fc / 6) + r * (a / h) * w - g * n,
              v0, f0, f_half, f1, beta1, beta_half, a1, s.gamma, s.u, s.rho, s.W, noise_hk)
    return (x1, v1), None, LangevinFSALState(f1)


@functools.cache
def should() -> Solver:
    r"""ShOULD, the shifted ODE method with a third-order Runge--Kutta scheme, for the underdamped
    Langevin diffusion (`sk.UnderdampedLangevin`).

    With $h$ the step, $\alpha = \gamma h$, $\beta_c = e^{-c\alpha}$, $a_c = (1 - \beta_c)/\gamma$,
    $b_c = (\beta_c + c\alpha - 1)/(\gamma^2 h)$, $c_H = 6(\beta_1(\alpha+2) + \alpha - 2)/(\gamma\alpha^2)$,
    $c_K = 60(\beta_1(\alpha^2 + 6\alpha + 12) - \alpha^2 + 6\alpha - 12)/(\gamma\alpha^3)$,
    $\rho = \sqrt{2\gamma u}$, the tree's $W$, $H$, $K$ and $f_0 = \nabla f(x_0)$ carried over:

    $$\tilde v = v_0 + \rho(H + 6K),\qquad
    x_{1/2} = x_0 + a_{1/2}\tilde v + b_{1/2}\big(-u h f_0 + \rho(W - 12K)\big),\qquad f_{1/2} = \nabla f(x_{1/2}),$$
    $$x_1 = x_0 + a_1 v_0 - u h b_1\big(\tfrac13 f_0 + \tfrac23 f_{1/2}\big) + \rho(b_1 W + c_H H + c_K K),
    \qquad f_1 = \nabla f(x_1),$$
    $$v_1 = \beta_1 v_0 - u h\big(\tfrac16\beta_1 f_0 + \tfrac23\beta_{1/2} f_{1/2} + \tfrac16 f_1\big)
    + \rho\big(\tfrac{a_1}{h} W - \gamma(c_H H + c_K K)\big).$$

    - Problems: `sk.UnderdampedLangevin` only.
    - Orders: strong 3, weak 3 (on smooth potentials; measured in `tests/solvers/test_langevin.py`).
    - Evaluations per step: 2 gradients (FSAL; 1 more in `init`).
    - Lévy area: space-time-time ($H$ and $K$; build the tree with `levy="space-time-time"`).
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
        >>> sol = sk.solve(uld, sk.solvers.should(), 0.0, 1.0, (jnp.ones(2), jnp.zeros(2)),
        ...                dt0=0.125, brownian=tree)
        >>> sol.stats["num_fevals"].item()  # 1 in init + 2 per step
        17

    References:
        J. Foster, T. Lyons, H. Oberhauser, "The shifted ODE method for underdamped Langevin
        MCMC", arXiv 2101.03446 (2021), Definition 7.1 (as implemented by diffrax 0.7.2,
        `diffrax.ShOULD`).
    """
    return make_langevin_solver("should", _step, strong_order=3.0, weak_order=3.0, levy_area="space-time-time",
                                fsal=True, grads_per_step=2)
