r"""SDE-DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095, Sec. 5 and App. B): exponential
integrators of the reverse-time SDE with the data prediction $\hat x_0$, noise from the
Brownian increment of the step.

In VE variables $y = x/\alpha$, $\rho = \sigma/\alpha = e^{-\lambda}$, the family of reverse SDEs
with the model's marginals, $\eta \ge 0$ scaling the injected noise ($\eta = 0$ is the
probability-flow ODE, $\eta = 1$ the reverse SDE), solved exactly on its linear part from $s$ to
$t$ ($h = \lambda_t - \lambda_s$, $H = (1 + \eta)h$) with $\hat x_0$ frozen, is

$$x_t = \frac{\sigma_t}{\sigma_s}e^{-\eta h}x_s + \alpha_t(1 - e^{-H})\hat x_0(s)
       + \sigma_t\sqrt{1 - e^{-2\eta h}}\,S_{noise}\,z,\qquad z = \Delta W/\sqrt{\Delta s}.$$

- order 1 (SDE-DPM-Solver++1; $\eta = 1$ is DDPM's posterior step in exponential form);
- order 2, multistep (2M), with the last prediction $\hat x_0(s_{-1})$, $r = h_{-1}/h$ and
  $D = (\hat x_0(s) - \hat x_0(s_{-1}))/r$: plus $\tfrac12\alpha_t(1 - e^{-H})D$ ("midpoint",
  k-diffusion's `sample_dpmpp_2m_sde` default) or $\alpha_t\varphi_2(H)D$,
  $\varphi_2(H) = 1 - (1 - e^{-H})/H$ ("heun");
- order 3, multistep (3M): plus $\alpha_t\varphi_2(H)d_1 - w\,\alpha_t\varphi_3(H)d_2$,
  $\varphi_3 = \varphi_2/H - \tfrac12$, $d_1, d_2$ the divided differences of $\hat x_0$ in $\lambda$
  scaled by $h$ (`_dpm_solver.py`); $w = 1$ (`third_order="reference"`) is k-diffusion's
  `sample_dpmpp_3m_sde`, $w = 2$ (default) the exact integral of the quadratic in $\lambda$;
  warm-up steps are orders 1 and 2 ("heun", as k-diffusion);
- order 2, singlestep (2S, k-diffusion's `sample_dpmpp_sde` and diffusers'
  `DPMSolverSDEScheduler`): ancestral steps (in $\rho$: $\rho_{up} = \rho_t\min(1, \eta\sqrt{1 - e^{-2h}})$,
  $\rho_{down} = \sqrt{\rho_t^2 - \rho_{up}^2}$, $y \leftarrow \frac{\rho_{down}}{\rho_s}y + (1 - \frac{\rho_{down}}{\rho_s})D + \rho_{up}z$)
  first to the intermediate point $\lambda_s + rh$ with $D = \hat x_0(s)$, then from $s$ to $t$
  with $D = (1 - \tfrac1{2r})\hat x_0(s) + \tfrac1{2r}\hat x_0(u)$, $u$ the intermediate state. The
  second step's noise is the Brownian increment over the whole step, so it needs the path
  at the intermediate time: the grid carries it (`midpoint_grid`, as diffusers interleaves
  its $\sigma$ table), and grid steps pair up, step $2k$ to the intermediate point and step
  $2k + 1$ completing the pair, with $r$ measured from the three times.

A step that ends at $\sigma_t = 0$ returns $\hat x_0(s)$ (k-diffusion's and diffusers' rule).

Orders. Deterministic part: the order above in the largest $\lambda$-step. Stochastic: the
reverse SDE has additive noise, and every variant takes its noise as $c\,\Delta W/\sqrt{\Delta s}$
with $c^2$ the exact variance of the linear part's stochastic integral $\int\varphi(u)\,dW_u$;
the difference $\int(\varphi(u) - c/\sqrt{\Delta s})\,dW_u$ has variance $O(\Delta s^3)$ for smooth
$\varphi$, so the local error is $O(\Delta s^{3/2})$ in mean square and the strong order is 1 (as
Euler–Maruyama on additive noise), whatever the deterministic order; weak order 1. One
model evaluation per step (per grid step for 2S, whose pairs cost two).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from . import _common as c
from ._dpm_solver import D2_WEIGHT, SOLVER_TYPES, THIRD, _phi2

METHODS = ("multistep", "singlestep")


class _Config(NamedTuple):
    name: str
    order: int
    method: str
    eta: float
    s_noise: float
    solver_type: str
    third_order: str


class _Pair(NamedTuple):
    """Singlestep state: the pair's start (x, its data prediction and time), the Brownian
    increment of the pair's first step and its length, and the number of steps taken."""

    x: jax.Array
    x0: jax.Array
    t: jax.Array
    w: jax.Array
    dt: jax.Array
    count: jax.Array  # int32


def _step_size(s: c.Point, t: c.Point):
    """$h = \\lambda_t - \\lambda_s$ (1 where infinite) and whether it was infinite."""
    h = t.lam - s.lam
    infinite = ~jnp.isfinite(h)
    return jnp.where(infinite, jnp.ones_like(h), h), infinite


def _first_order(cfg: _Config, s: c.Point, t: c.Point, x, x0, z):
    h, _ = _step_size(s, t)
    big_h = (1 + cfg.eta) * h
    linear = (t.sigma / s.sigma) * jnp.exp(-cfg.eta * h) * x - t.alpha * jnp.expm1(-big_h) * x0
    noise = t.sigma * jnp.sqrt(-jnp.expm1(-2 * cfg.eta * h)) * cfg.s_noise
    return linear + noise * z, big_h


# --------------------------------------------------------------------------------------------
# Multistep (1, 2M, 3M): one evaluation per step, the data predictions in a History.
# --------------------------------------------------------------------------------------------
def _multistep_init(cfg, problem, t0, y0, args):
    c.check_state(y0, cfg.name)
    return c.History.empty(max(cfg.order - 1, 1), y0)


def _multistep_step(cfg: _Config, problem, tau0, tau1, x, args, inc, hist: c.History):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, cfg.name)
    s, t = c.point(model, t0, x.dtype), c.point(model, t1, x.dtype)
    x0 = model.x0(x, s.t, args)
    x1, big_h = _first_order(cfg, s, t, x, x0, c.standard_noise(inc, x.dtype))
    if cfg.order >= 2:
        h, infinite = _step_size(s, t)
        p = jnp.where(infinite, 1, jnp.minimum(cfg.order, hist.count + 1))
        one = jnp.ones_like(h)
        h0 = jnp.where(p >= 2, s.lam - hist.lams[0], one)  # may be inf after alpha = 0: then D = 0
        d10 = (h / h0) * (x0 - hist.values[0])
        phi2 = _phi2(-big_h)
        # The order-2 update of the warm-up (3M) or of 2M; 3M's warm-up is "heun" (k-diffusion).
        second = -0.5 * jnp.expm1(-big_h) if cfg.solver_type == "midpoint" else phi2
        update = jnp.where(p == 2, second, jnp.where(p == 3, phi2, 0)) * d10
        if cfg.order >= 3:
            h1 = jnp.where(p >= 3, hist.lams[0] - hist.lams[1], one)
            d11 = (h / h1) * (hist.values[0] - hist.values[1])
            h0 = jnp.where(p >= 3, h0, one)
            d2 = (h / (h0 + h1)) * (d10 - d11)
            phi3 = phi2 / big_h - 0.5
            # d1 = d10 + r0 d2, with r0 d2 = (h0 / (h0 + h1)) (d10 - d11).
            update = update + jnp.where(p == 3, phi2 * (h0 / (h0 + h1)), 0) * (d10 - d11)
            update = update - jnp.where(p == 3, D2_WEIGHT[cfg.third_order] * phi3, 0) * d2
        x1 = x1 + t.alpha * update
    x1 = c.at_data_end(t, x0, x1)
    return x1, None, sk.solvers.LinearDense(x, x1), hist.push(x0, s.lam)


# --------------------------------------------------------------------------------------------
# Singlestep (2S): grid steps in pairs, the intermediate time on the grid.
# --------------------------------------------------------------------------------------------
def _ancestral(cfg: _Config, s: c.Point, t: c.Point, x, d, z):
    r"""k-diffusion's ancestral step from $s$ to $t$ towards the data prediction `d`, in $\rho$."""
    h, _ = _step_size(s, t)
    up = jnp.minimum(1.0, cfg.eta * jnp.sqrt(-jnp.expm1(-2 * h)))  # rho_up / rho_t
    q = jnp.exp(-h) * jnp.sqrt(1 - up**2)  # rho_down / rho_s
    return t.alpha * (q * (x / s.alpha) + (1 - q) * d + (t.sigma / t.alpha) * up * cfg.s_noise * z)


def _singlestep_init(cfg, problem, tau0, y0, args):
    c.check_state(y0, cfg.name)
    _, t0, _ = c.model_and_times(problem, tau0, tau0, cfg.name)
    zero = jnp.zeros_like(y0)
    # The start time is the grid's first (finite, so the unused branch of step 0 stays finite).
    return _Pair(zero, zero, jnp.asarray(t0, y0.dtype), zero, jnp.ones((), y0.dtype), jnp.zeros((), jnp.int32))


def _singlestep_step(cfg: _Config, problem, tau0, tau1, x, args, inc, pair: _Pair):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, cfg.name)
    dtype = x.dtype
    s, t = c.point(model, t0, dtype), c.point(model, t1, dtype)
    d = model.x0(x, s.t, args)
    dt = jnp.asarray(inc.dt, dtype)
    first = pair.count % 2 == 0
    # Step 2k: to the intermediate point, from (x, d).
    to_middle = _ancestral(cfg, s, t, x, d, c.standard_noise(inc, dtype))
    # Step 2k + 1: the whole step from the pair's start, with the increment over both steps.
    start = c.point(model, pair.t, dtype)
    span, infinite = _step_size(start, t)
    r = jnp.where(infinite, 1.0, (s.lam - start.lam) / span)
    fac = 1 / (2 * r)
    z = (pair.w + inc.W) / jnp.sqrt(jnp.where(first, 1.0, pair.dt + dt))
    whole = _ancestral(cfg, start, t, pair.x, (1 - fac) * pair.x0 + fac * d, z)
    x1 = c.at_data_end(t, d, jnp.where(first, to_middle, whole))
    new = _Pair(x, d, s.t, inc.W.astype(dtype), dt, pair.count + 1)
    return x1, None, sk.solvers.LinearDense(x, x1), new


def midpoint_grid(schedule, ts: Float[ArrayLike, " n"], r: float = 0.5, zero_end: bool | None = None
                  ) -> Float[Array, " m"]:
    r"""The grid `ts` with the intermediate time of a singlestep SDE sampler inserted in each step:
    $t(\lambda_i + r(\lambda_{i+1} - \lambda_i))$ between `ts[i]` and `ts[i + 1]`, except on a last
    step to $\sigma = 0$, which stays whole (it returns $\hat x_0$ with one evaluation). As
    diffusers' `DPMSolverSDEScheduler` interleaves its $\sigma$ table.

    Args:
        schedule: the model's schedule.
        ts: the grid (`skd.time_grid`), `n` points.
        r: where the intermediate point lies in $\lambda$, in $(0, 1)$ (k-diffusion's `r`).
        zero_end: whether `ts` ends at $\sigma = 0$; read from `ts` when it is concrete.

    Returns:
        `2n - 1` times, or `2n - 2` when the grid ends at $\sigma = 0$.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> ts = skd.time_grid(skd.EDM(), 4, "karras", zero_end=True)
        >>> skd.samplers.midpoint_grid(skd.EDM(), ts).shape
        (8,)
    """
    if not 0 < r < 1:
        raise ValueError(f"midpoint_grid: r must lie in (0, 1); got {r}.")
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"midpoint_grid: a grid is 1-D with at least two times; got shape {ts.shape}.")
    if zero_end is None:
        if isinstance(ts, jax.core.Tracer):
            raise ValueError("midpoint_grid: with a traced grid, say whether it ends at sigma = 0 (zero_end=...).")
        zero_end = bool(schedule.sigma(ts[-1]) == 0)
    split = ts[:-1] if not zero_end else ts[:-2]
    after = ts[1 : split.shape[0] + 1]
    lam0, lam1 = schedule.log_snr(split), schedule.log_snr(after)
    middle = schedule.t_of_log_snr(lam0 + r * (lam1 - lam0)).astype(ts.dtype)
    pairs = jnp.stack([split, middle], axis=1).reshape(-1)
    return jnp.concatenate([pairs, ts[split.shape[0]:]])


# --------------------------------------------------------------------------------------------
# Factory.
# --------------------------------------------------------------------------------------------
@functools.cache
def _build(cfg: _Config) -> sk.solvers.Solver:
    init, step = (_multistep_init, _multistep_step) if cfg.method == "multistep" else (_singlestep_init, _singlestep_step)
    return c.stochastic(cfg.name, functools.partial(init, cfg), functools.partial(step, cfg), weak_order=1.0,
                        fevals_per_step=1, strong_order=1.0)


def dpm_solver_pp_sde(order: int = 2, eta: float = 1.0, solver_type: str | None = None, method: str = "multistep",
                      s_noise: float = 1.0, third_order: str = "exact") -> sk.solvers.Solver:
    r"""SDE-DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095): 1, 2M, 3M and the singlestep 2S; a
    solver of `skd.reverse_sde(model)` using the data prediction `model.x0`, its noise from the
    step's Brownian increment. See this module's docstring for the updates.

    Args:
        order: 1, 2 or 3 (multistep), 2 (singlestep).
        eta: the noise scale $\eta \ge 0$ (1: the reverse SDE; 0: DPM-Solver++'s ODE update).
        solver_type: order 2's multistep update, `"midpoint"` (default for order 2, k-diffusion's
            `sample_dpmpp_2m_sde` default) or `"heun"` (default for order 3's warm-up, as
            k-diffusion's `sample_dpmpp_3m_sde`).
        method: `"multistep"` (one evaluation per step) or `"singlestep"` (order 2 only:
            k-diffusion's `sample_dpmpp_sde`, diffusers' `DPMSolverSDEScheduler`), whose grid
            steps pair up: run it on `skd.samplers.midpoint_grid(schedule, ts)`.
        s_noise: a factor on the injected noise (k-diffusion's `s_noise`; 1 is exact).
        third_order: 3M's $d_2$ term: `"exact"` (default, the integral of the quadratic) or
            `"reference"` (half of it, k-diffusion's `sample_dpmpp_3m_sde`).

    Strong order 1 and weak order 1 on the reverse SDE's additive noise (the deterministic
    part has order `order`); one model evaluation per grid step.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.EDM()
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> x_T = sched.prior(jax.random.key(0), (2048, 2))
        >>> ts = skd.time_grid(sched, 20, "karras", zero_end=True)
        >>> x0 = skd.sample(gm.model(sched), skd.samplers.dpm_solver_pp_sde(2), x_T, ts, key=jax.random.key(1))
        >>> bool(abs(float(jnp.std(x0)) - 0.5) < 0.1)   # the data's std 0.5, after 20 steps from sigma = 80
        True
    """
    if method not in METHODS:
        raise ValueError(f"dpm_solver_pp_sde: method must be one of {METHODS}; got {method!r}.")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= 3:
        raise ValueError(f"dpm_solver_pp_sde: order must be 1, 2 or 3; got {order!r}.")
    if method == "singlestep" and order != 2:
        raise ValueError(f"dpm_solver_pp_sde: method='singlestep' is order 2 (k-diffusion's sample_dpmpp_sde); got {order}.")
    if solver_type is not None and solver_type not in SOLVER_TYPES:
        raise ValueError(f"dpm_solver_pp_sde: solver_type must be one of {SOLVER_TYPES} (or None); got {solver_type!r}.")
    if third_order not in THIRD:
        raise ValueError(f"dpm_solver_pp_sde: third_order must be one of {THIRD}; got {third_order!r}.")
    if not (isinstance(eta, (int, float)) and eta >= 0):
        raise ValueError(f"dpm_solver_pp_sde: eta must be a number >= 0; got {eta!r}.")
    if not (isinstance(s_noise, (int, float)) and s_noise >= 0):
        raise ValueError(f"dpm_solver_pp_sde: s_noise must be a number >= 0; got {s_noise!r}.")
    if solver_type is None:
        solver_type = "heun" if order == 3 else "midpoint"
    name = "dpm_solver_pp_sde" if method == "multistep" else "dpm_solver_pp_sde_2s"
    return _build(_Config(name, order, method, float(eta), float(s_noise), solver_type, third_order))
