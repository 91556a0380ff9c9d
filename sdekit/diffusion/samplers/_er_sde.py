r"""ER-SDE-Solver (Cui et al. 2023, "Elucidating the solution space of extended reverse-time SDE
for diffusion models", arXiv 2309.06169): multistep solvers of the extended reverse-time SDEs,
a family indexed by a noise-scale function $\varphi$, with the data prediction $\hat x_0$.

In VE variables $y = x/\alpha$, $\rho = \sigma/\alpha$, every member has the model's marginals, and
with $\hat x_0$ a function of $\rho$ the step from $s$ to $t$ ($\rho_t < \rho_s$) is exactly

$$y_t = r\,y_s + \varphi(\rho_t)\int_{\rho_t}^{\rho_s}\frac{\varphi'(\rho)}{\varphi(\rho)^2}\hat x_0(\rho)\,d\rho
       + \sqrt{\rho_t^2 - r^2\rho_s^2}\;z,\qquad r = \frac{\varphi(\rho_t)}{\varphi(\rho_s)}.$$

Expanding $\hat x_0$ about $\rho_s$ and integrating by parts gives the updates, with
$S_1 = \int_{\rho_t}^{\rho_s}d\rho/\varphi$ and $S_2 = \int_{\rho_t}^{\rho_s}(\rho - \rho_s)\,d\rho/\varphi$:

$$y_t = r\,y_s + (1 - r)\hat x_0 + \bigl(\rho_t - \rho_s + \varphi(\rho_t)S_1\bigr)\hat x_0'
       + \bigl(\tfrac12(\rho_t - \rho_s)^2 + \varphi(\rho_t)S_2\bigr)\hat x_0'' + \sqrt{\rho_t^2 - r^2\rho_s^2}\;z,$$

order 1 (ER-SDE-Solver-1) keeping the first two terms, 2 and 3 adding the derivative terms,
estimated from the last two or three predictions (one model evaluation per step; step $i$ uses
order $\min(k, i + 1)$, a warm-up). $S_1, S_2$ are computed by 16-point Gauss–Legendre quadrature in
$\log\rho$, where the integrands $\rho/\varphi$ and $(\rho - \rho_s)\rho/\varphi$ are smooth for the
usual $\varphi$ (the paper's code and ComfyUI's `sample_er_sde` use a 100- or 200-point Riemann
sum in $\rho$, whose relative error is about its spacing).

$\varphi$ (`noise_scale`): `"er"` (default), the paper's recommended $\varphi(\rho) = \rho(e^{\rho^{0.3}} + 10)$
(its "SDE_5", ComfyUI's default); `"reverse_sde"`, $\varphi = \rho^2$, the reverse SDE (order 1 is
SDE-DPM-Solver++1, DDPM's step); `"ode"`, $\varphi = \rho$, the probability-flow ODE (no noise; order 1
is DDIM); or any callable. The noise variance is non-negative when $\varphi(\rho)/\rho$ is
non-decreasing, the paper's condition, checked on construction.

Derivatives (`third_order`): with $d_1 = \hat x_0[s, s_{-1}]$ and $d_2 = \hat x_0[s, s_{-1}, s_{-2}]$ the
divided differences in $\rho$, the paper's code and ComfyUI take $\hat x_0' \approx d_1$ and
$\hat x_0'' \approx 2d_2$ (`"reference"`). But $d_1$ is the derivative at the midpoint of
$[\rho_{s-1}, \rho_s]$, off by $O(\Delta\rho)$ at $\rho_s$, and its coefficient is $O(\Delta\rho^2)$: the local
error stays $O(\Delta\rho^3)$ and the method is of order 2 (measured on the probability-flow ODE,
`"ode"`: slope 2.0). The default `"exact"` differentiates the quadratic through the three
predictions at $\rho_s$, $\hat x_0' \approx d_1 + (\rho_s - \rho_{s-1})d_2$, and is of order 3.

Orders. Deterministic part: the order above in the largest $\rho$-step. Stochastic: as for
SDE-DPM-Solver++ (`_dpm_solver_pp_sde.py`), the noise is $c\,\Delta W/\sqrt{\Delta s}$ with $c^2$ the exact
variance of the linear part's stochastic integral, so the strong order on the additive noise
is 1 and the weak order 1. A step that ends at $\sigma_t = 0$ returns $\hat x_0(s)$; one from
$\alpha_s = 0$ ($\rho_s = \infty$, $r = 0$) is first order.
"""

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

import sdekit as sk

from . import _common as c
from ._dpm_solver import THIRD

QUADRATURE_NODES = 16  # Gauss-Legendre in log(rho): S1, S2 to 1e-15 relative for rho_s/rho_t up to 100, 4e-12 at 4e4


def er_noise_scale(rho: Float[Array, "..."]) -> Float[Array, "..."]:
    r"""The paper's recommended noise scale $\varphi(\rho) = \rho\,(e^{\rho^{0.3}} + 10)$ ("SDE_5")."""
    return rho * (jnp.exp(rho**0.3) + 10)


PRESETS = {"er": er_noise_scale, "reverse_sde": jnp.square, "ode": lambda rho: rho}


class _Config(NamedTuple):
    name: str
    order: int
    noise_scale: Callable
    s_noise: float
    third_order: str


def _at(model, t, dtype):
    """The schedule at `t` and $\\rho = \\sigma/\\alpha$ there (inf where alpha = 0)."""
    p = c.point(model, t, dtype)
    rho = jnp.where(p.alpha == 0, jnp.inf, p.sigma / jnp.where(p.alpha == 0, 1, p.alpha))
    return p, rho


def _integrals(phi, rho_t, rho_s):
    r"""$S_1 = \int_{\rho_t}^{\rho_s} d\rho/\varphi$ and $S_2 = \int_{\rho_t}^{\rho_s}(\rho - \rho_s)\,d\rho/\varphi$
    (finite $0 < \rho_t < \rho_s$), by Gauss–Legendre in $u = \log\rho$ ($d\rho = \rho\,du$)."""
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    dtype = rho_s.dtype
    a, b = jnp.log(rho_t), jnp.log(rho_s)
    half = (b - a) / 2
    rho = jnp.exp((a + b) / 2 + half * jnp.asarray(nodes, dtype))
    w = half * jnp.asarray(weights, dtype) * rho / phi(rho)
    return jnp.sum(w), jnp.sum(w * (rho - rho_s))


def _init(cfg: _Config, problem, t0, y0, args):
    c.check_state(y0, cfg.name)
    return c.History.empty(max(cfg.order - 1, 1), y0)


def _step(cfg: _Config, problem, tau0, tau1, x, args, inc, hist: c.History):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, cfg.name)
    dtype = x.dtype
    (s, rho_s), (t, rho_t) = _at(model, t0, dtype), _at(model, t1, dtype)
    x0 = model.x0(x, s.t, args)
    phi = cfg.noise_scale
    # Where a coefficient is undefined (rho_s = inf: r = 0, first order; sigma_t = 0: x0 is
    # returned), finite stand-ins keep the unused branch finite (and its gradients).
    from_inf = ~jnp.isfinite(rho_s)
    to_data = t.sigma == 0
    rs = jnp.where(from_inf, 2 * jnp.maximum(rho_t, 1), rho_s)
    rt = jnp.where(to_data, rs / 2, rho_t)
    # r = phi_t/phi_s = q rho_t/rho_s with q = (phi_t/rho_t)/(phi_s/rho_s) in (0, 1]; the noise
    # variance rho_t^2 - r^2 rho_s^2 = rho_t^2 (1 - q^2), formed from q so that it is exactly 0
    # for the ODE (q = 1) rather than a rounding error's square root.
    phi_t = phi(rt)
    q = jnp.where(from_inf, 0, (phi_t / rt) / (phi(rs) / rs))
    r = q * (rt / rs)
    y = jnp.where(from_inf, 0, x / jnp.where(s.alpha == 0, 1, s.alpha))
    y1 = r * y + (1 - r) * x0
    if cfg.order >= 2:
        p = jnp.where(from_inf, 1, jnp.minimum(cfg.order, hist.count + 1))
        s1, s2 = _integrals(phi, rt, rs)
        c1 = rt - rs + phi_t * s1
        c2 = 0.5 * (rt - rs) ** 2 + phi_t * s2
        one = jnp.ones_like(rs)
        # Divided differences of x0 in rho (the history's rho are larger: noisier).
        gap0 = jnp.where(p >= 2, hist.lams[0] - rs, one)
        d1 = jnp.where(p >= 2, (hist.values[0] - x0) / gap0, 0)  # x0[s, s-1]
        update = c1 * d1
        if cfg.order >= 3:
            gap1 = jnp.where(p >= 3, hist.lams[1] - hist.lams[0], one)
            d1_old = (hist.values[1] - hist.values[0]) / gap1
            d2 = jnp.where(p >= 3, (d1_old - d1) / jnp.where(p >= 3, gap0 + gap1, one), 0)  # x0[s, s-1, s-2]
            slope = d1 if cfg.third_order == "reference" else d1 - gap0 * d2
            update = c1 * slope + 2 * c2 * d2
        y1 = y1 + update
    variance = (1 - q) * (1 + q)  # / rho_t^2; 0 for the ODE, where sqrt has no derivative
    noise = rt * jnp.where(variance > 0, jnp.sqrt(jnp.where(variance > 0, variance, 1)), 0) * cfg.s_noise
    x1 = t.alpha * (y1 + noise * c.standard_noise(inc, dtype))
    x1 = c.at_data_end(t, x0, x1)
    # A step from rho = inf starts the history afresh: no divided difference reaches across it.
    new = hist.push(x0, rho_s)
    new = new._replace(count=jnp.where(from_inf, 0, new.count))
    return x1, None, sk.solvers.LinearDense(x, x1), new


@functools.cache
def _build(cfg: _Config) -> sk.solvers.Solver:
    return c.stochastic(cfg.name, functools.partial(_init, cfg), functools.partial(_step, cfg), weak_order=1.0,
                        fevals_per_step=1, strong_order=1.0)


def _checked_scale(noise_scale):
    if isinstance(noise_scale, str):
        if noise_scale not in PRESETS:
            raise ValueError(f"er_sde: noise_scale must be one of {tuple(PRESETS)} or a callable; got {noise_scale!r}.")
        return PRESETS[noise_scale]
    if not callable(noise_scale):
        raise TypeError(f"er_sde: noise_scale must be one of {tuple(PRESETS)} or a callable; "
                        f"got {type(noise_scale).__name__}.")
    # The paper's condition, phi(rho)/rho non-decreasing (so every step's noise variance is >= 0),
    # and phi > 0, checked where samplers step: rho from 1e-4 to 1e4.
    rho = np.logspace(-4, 4, 401)
    with jax.ensure_compile_time_eval():
        values = np.asarray(noise_scale(jnp.asarray(rho, jnp.float32)), np.float64)
    if values.shape != rho.shape or not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise ValueError("er_sde: noise_scale must map rho = sigma/alpha > 0 (an array) to finite positive values "
                         "of the same shape.")
    ratio = values / rho
    if np.any(np.diff(ratio) < -1e-5 * ratio[1:]):
        worst = int(np.argmin(np.diff(ratio)))
        raise ValueError("er_sde: noise_scale(rho)/rho must be non-decreasing (the ER-SDE condition that makes "
                         f"the noise variance non-negative); it decreases near rho = {rho[worst]:.3g}.")
    return noise_scale


def er_sde(order: int = 3, noise_scale: str | Callable = "er", s_noise: float = 1.0,
           third_order: str = "exact") -> sk.solvers.Solver:
    r"""ER-SDE-Solver-1/2/3 (Cui et al. 2023, arXiv 2309.06169): multistep solvers of the extended
    reverse-time SDE with noise scale $\varphi$; a solver of `skd.reverse_sde(model)` using the data
    prediction `model.x0`, its noise from the step's Brownian increment. See this module's
    docstring for the update.

    Args:
        order: 1, 2 or 3 (one model evaluation per step; warm-up steps use lower orders).
        noise_scale: $\varphi(\rho)$, $\rho = \sigma/\alpha$: `"er"` (default, $\rho(e^{\rho^{0.3}} + 10)$,
            the paper's and ComfyUI's choice), `"reverse_sde"` ($\rho^2$), `"ode"` ($\rho$: no noise),
            or a callable on arrays with $\varphi(\rho)/\rho$ non-decreasing.
        s_noise: a factor on the injected noise (1 is exact).
        third_order: order 3's derivative estimate: `"exact"` (default, of order 3) or
            `"reference"` (the paper's code and ComfyUI's `sample_er_sde`, of order 2).

    Strong order 1 and weak order 1 on the reverse SDE's additive noise (the deterministic
    part has order `order`).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.EDM()
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> x_T = sched.prior(jax.random.key(0), (2048, 2))
        >>> ts = skd.time_grid(sched, 20, "karras", zero_end=True)
        >>> x0 = skd.sample(gm.model(sched), skd.samplers.er_sde(3), x_T, ts, key=jax.random.key(1))
        >>> bool(abs(float(jnp.std(x0)) - 0.5) < 0.1)   # the data's std 0.5, after 20 steps from sigma = 80
        True
    """
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= 3:
        raise ValueError(f"er_sde: order must be 1, 2 or 3; got {order!r}.")
    if third_order not in THIRD:
        raise ValueError(f"er_sde: third_order must be one of {THIRD}; got {third_order!r}.")
    if not (isinstance(s_noise, (int, float)) and s_noise >= 0):
        raise ValueError(f"er_sde: s_noise must be a number >= 0; got {s_noise!r}.")
    return _build(_Config("er_sde", order, _checked_scale(noise_scale), float(s_noise), third_order))
