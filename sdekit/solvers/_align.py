r"""ALIGN: Adaptive Langevin via Interpolated Gradients and Noise (Foster; strong order 2)."""

import functools

import jax.numpy as jnp

from ._base import Solver
from ._langevin_common import LangevinFSALState, grad, make_langevin_solver, phi1, phi2, prepare, psi_h, tmap


def _step(problem, t0, t1, y0, args, inc, state):
    x0, v0 = y0
    s = prepare(problem, t0, t1, y0, inc, "align", needs_k=False)
    h, f0 = s.h, state.grad
    alpha = tmap(lambda g: g * h, s.gamma)
    beta = tmap(lambda a: jnp.exp(-a), alpha)
    a1 = tmap(lambda a: h * phi1(a), alpha)      # (1 - beta) / gamma
    b1 = tmap(lambda a: h * phi2(a), alpha)      # (beta + alpha - 1) / (gamma alpha)
    chh = tmap(lambda a: h * psi_h(a), alpha)    # 6 (beta (alpha + 2) + alpha - 2) / (gamma alpha^2)
    x1 = tmap(lambda x, v, f, a, b, c, u, r, w, hh: x + a * v - b * u * h * f + r * (b * w + c * hh),
              x0, v0, f0, a1, b1, chh, s.u, s.rho, s.W, s.H)
    f1 = grad(problem, x1, args)
    v1 = tmap(lambda v, fa, fb, be, a, b, c, g, u, r, w, hh:
              be * v - u * ((a - b) * fa + b * fb) + r * ((a / h) * w - g * c * hh),
              v0, f0, f1, beta, a1, b1, chh, s.gamma, s.u, s.rho, s.W, s.H)
    error = (tmap(jnp.zeros_like, x0), tmap(lambda fa, fb, b, u: -u * b * (fb - fa), f0, f1, b1, s.u))
    return (x1, v1), error, LangevinFSALState(f1)


@functools.cache
def align() -> Solver:
    r"""ALIGN, Foster's second-order method for the underdamped Langevin diffusion
    (`sk.UnderdampedLangevin`), a shifted Strang splitting with an embedded error estimate.

    With $h$ the step, $\alpha = \gamma h$, $\beta = e^{-\alpha}$, $a = (1-\beta)/\gamma$,
    $b = (\beta + \alpha - 1)/(\gamma\alpha)$, $c_H = 6(\beta(\alpha+2) + \alpha - 2)/(\gamma\alpha^2)$,
    $\rho = \sqrt{2\gamma u}$, the increment $W$ and space-time Lévy area $H$, and
    $f_0 = \nabla f(x_0)$ carried from the previous step:

    $$x_1 = x_0 + a v_0 - b\,u h f_0 + \rho\,(b W + c_H H),\qquad f_1 = \nabla f(x_1),$$
    $$v_1 = \beta v_0 - u\big((a - b) f_0 + b f_1\big) + \rho\,\big(\tfrac{a}{h} W - \gamma c_H H\big).$$

    - Problems: `sk.UnderdampedLangevin` only (additive noise; Itô and Stratonovich coincide).
    - Orders: strong 2, weak 2 (Foster, Lyons & Oberhauser's analysis; measured in
      `tests/solvers/test_langevin.py`).
    - Evaluations per step: 1 gradient (FSAL: $f_1$ is the next step's $f_0$; 1 more in `init`).
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"` or richer).
    - Error estimate: $(0,\ -u b (f_1 - f_0))$, of size $O(h^2)$ per step (`sde.error_order`
      2), so it steps adaptively with `sk.PID`.
    - Coefficients: series below $\alpha = 1$, direct above (see `_langevin_common`).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `init`/`step` for a problem that is not `sk.UnderdampedLangevin`; from
            `step` if the increment has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> uld = sk.UnderdampedLangevin(lambda x, args: x, gamma=1.0, u=1.0)
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 10.0, shape=(2,), tol=2**-10,
        ...                        levy="space-time")
        >>> sol = sk.solve(uld, sk.solvers.align(), 0.0, 10.0, (jnp.ones(2), jnp.zeros(2)),
        ...                dt0=0.1, brownian=tree, controller=sk.PID(rtol=0.0, atol=1e-2))
        >>> int(sol.result), sol.ys[0].shape
        (0, (1, 2))

    References:
        J. Foster, T. Lyons, H. Oberhauser, "The shifted ODE method for underdamped Langevin
        MCMC", arXiv 2101.03446 (2021), Definition 4.2 (the Strang splitting that ALIGN modifies);
        the ALIGN form and error estimate as in diffrax 0.7.2 (`diffrax.ALIGN`).
    """
    return make_langevin_solver("align", _step, strong_order=2.0, weak_order=2.0, levy_area="space-time",
                                fsal=True, grads_per_step=1, error_order=2.0)
