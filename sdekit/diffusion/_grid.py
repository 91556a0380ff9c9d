"""Sampling time grids: where a sampler evaluates the model, from noise (start) to data (end)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._schedules import VP, Flow, Schedule

SPACINGS = ("time_uniform", "time_quadratic", "log_snr", "karras", "exponential")


def time_grid(
    schedule: Schedule,
    steps: int,
    spacing: str = "log_snr",
    *,
    t_start: float | None = None,
    t_end: float | None = None,
    rho: float = 7.0,
    zero_end: bool = False,
    pad_to: int | None = None,
) -> Float[Array, " steps_plus_1"]:
    r"""`steps + 1` decreasing times from `t_start` (noise) to `t_end` (data).

    Spacings:
        - `"time_uniform"`: uniform in $t$ (DPM-Solver, high-resolution models).
        - `"time_quadratic"`: uniform in $\sqrt t$ (DDIM on CIFAR-10).
        - `"log_snr"`: uniform in $\lambda = \log(\alpha/\sigma)$ (DPM-Solver's `logSNR`).
        - `"karras"`: uniform in $\rho_t^{1/\text{rho}}$, $\rho_t = \sigma_t/\alpha_t$ (EDM, rho = 7).
        - `"exponential"`: uniform in $\log\sigma_t$ (k-diffusion's; equals `"log_snr"` when $\alpha = 1$).

    `t_start`/`t_end` default to the schedule's `t_max`/`t_min`. With `zero_end=True` the last
    of the `steps` steps goes on to $\sigma = 0$ (the schedule's `t_zero`: EDM, VE, Flow), where
    samplers return the model's data prediction, as k-diffusion's and diffusers' grids do.

    With `pad_to`, the grid is extended to `pad_to + 1` times by repeating its last: samplers
    given `padded=True` skip the repeats, so grids of any number of steps up to `pad_to` share
    one compiled sampler (`jax.jit` of `skd.sample` does not retrace for a new step count).

    Examples:
        >>> import sdekit.diffusion as skd
        >>> ts = skd.time_grid(skd.EDM(), 4, "karras", zero_end=True)
        >>> [round(float(t), 3) for t in ts]
        [80.0, 9.723, 0.47, 0.002, 0.0]
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"time_grid needs an skd schedule; got {type(schedule).__name__}.")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}; got {spacing!r}.")
    if not isinstance(steps, int) or steps < 1 + zero_end:
        raise ValueError(f"steps must be an int >= {1 + zero_end}; got {steps!r}.")
    if pad_to is not None and (not isinstance(pad_to, int) or pad_to < steps):
        raise ValueError(f"pad_to must be an int >= steps = {steps}; got {pad_to!r}.")
    if zero_end and schedule.t_zero is None:
        raise ValueError(f"{type(schedule).__name__} never reaches sigma = 0: zero_end=True is not possible.")
    t_start = schedule.t_max if t_start is None else t_start
    t_end = schedule.t_min if t_end is None else t_end
    dtype = jnp.result_type(float)
    t_start, t_end = jnp.asarray(t_start, dtype), jnp.asarray(t_end, dtype)
    _check_order(t_start, t_end)
    n = steps - 1 if zero_end else steps
    u = jnp.linspace(0.0, 1.0, n + 1, dtype=dtype)
    if spacing == "time_uniform":
        ts = t_start + u * (t_end - t_start)
    elif spacing == "time_quadratic":
        ts = (jnp.sqrt(t_start) + u * (jnp.sqrt(t_end) - jnp.sqrt(t_start))) ** 2
    elif spacing == "log_snr":
        lam0, lam1 = schedule.log_snr(t_start), schedule.log_snr(t_end)
        ts = schedule.t_of_log_snr(lam0 + u * (lam1 - lam0))
    elif spacing == "karras":
        r0, r1 = (jnp.exp(-schedule.log_snr(t) / rho) for t in (t_start, t_end))
        ts = schedule.t_of_log_snr(-rho * jnp.log(r0 + u * (r1 - r0)))
    else:
        s0, s1 = jnp.log(schedule.sigma(t_start)), jnp.log(schedule.sigma(t_end))
        ts = _t_of_sigma(schedule, jnp.exp(s0 + u * (s1 - s0)), t_start, t_end)
    # The ends exactly as asked (inverse maps round).
    ts = ts.at[0].set(t_start).at[-1].set(t_end)
    if zero_end:
        ts = jnp.append(ts, jnp.asarray(schedule.t_zero, dtype))
    if pad_to is not None:
        ts = jnp.concatenate([ts, jnp.broadcast_to(ts[-1], (pad_to - steps,))])
    return ts


def _t_of_sigma(schedule, sigma, t_start, t_end):
    # sigma is monotone in t on every schedule here: invert via log-SNR where alpha depends on t
    # only through sigma (VP: alpha = sqrt(1 - sigma^2); alpha = 1: lambda = -log sigma; Flow: 1 - sigma).
    if isinstance(schedule, VP):
        alpha = jnp.sqrt(1 - sigma**2)
    elif isinstance(schedule, Flow):
        alpha = 1 - sigma
    else:
        alpha = jnp.ones_like(sigma)
    return schedule.t_of_log_snr(jnp.log(alpha) - jnp.log(sigma))


def _check_order(t_start, t_end):
    try:
        ok = bool(t_start > t_end)
    except jax.errors.ConcretizationTypeError:  # traced: checked by the samplers' grid check
        return
    if not ok:
        raise ValueError(
            f"a sampling grid runs from noise to data: need t_start > t_end; got {float(t_start)} and {float(t_end)}.")
