r"""`log_likelihood`: exact log-likelihoods of data under a diffusion model, through its
probability-flow ODE (Song et al. 2021, Sec. 4.3 and App. D.2).

$$\log p_{t_0}(x_0) = \log p_{T}(x_T) + \int_{t_0}^{T} \nabla\cdot v_t(x_t)\,dt,$$

with $x_t$ the probability-flow solution from the data point $x_0$ at $t_0$ to $x_T$ at $T$. The
data and the divergence integral are one augmented state of one adaptive `sk.solve`.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from ._divergence import FlowWithLogDensity, check_trace, draw_probes, event_size, gaussian_prior_log_prob
from ._model import Model
from ._sampling_grid import samples_first


class Likelihood(NamedTuple):
    """What `log_likelihood` returns (one entry per sample)."""

    log_prob: Array  # nats per sample: log p_{t_start}(x0)
    bits_per_dim: Array  # -log_prob / (D log 2), D the size of one sample
    prior_log_prob: Array  # log p_T(x_T), the prior's share of log_prob
    num_fevals: Array  # vector-field evaluations of the solve (each one network evaluation and its trace)


def log_likelihood(
    model: Model,
    x0: Float[Array, "n *event"],
    *,
    trace: str = "exact",
    key: jax.Array | None = None,
    n_probes: int = 1,
    probe: str = "rademacher",
    solver: sk.solvers.Solver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_start: Float[ArrayLike, ""] | None = None,
    t_end: Float[ArrayLike, ""] | None = None,
    prior_log_prob: Callable[[Array], Array] | None = None,
    args: Any = None,
    max_steps: int = 4096,
) -> Likelihood:
    r"""Log-likelihood of each sample of `x0` under `model`, by the probability-flow ODE.

    One adaptive solve (`solver`, default `sk.solvers.dopri5()`, with `sk.PID(rtol, atol)`)
    carries the batch and, per sample, $\int\nabla\cdot v\,dt$ from `t_start` (default
    `schedule.t_min`, where the likelihood is that of $p_{t_{start}}$) to `t_end` (default
    `schedule.t_max`), where `prior_log_prob` is added (default: $\log N(x_T; 0,
    \sigma_{t_{end}}^2 I)$, the standard prior; pass the exact $\log p_T$ when you know it).

    The divergence is `trace="exact"` (one forward-mode derivative per data dimension: small
    data) or `trace="hutchinson"`: $\frac1P\sum_p v_p^\top(\partial_x v)v_p$ with `n_probes`
    Rademacher or Gaussian probes drawn from `key` and fixed over the solve (Grathwohl et al.
    2019), an unbiased estimate of the same integral whose cost does not grow with dimension.

    Args:
        model: an `skd.Model`; its network is called on the whole batch `(n, *event)`.
        x0: data, samples along the first axis.
        trace: `"exact"` or `"hutchinson"`.
        key: PRNG key for Hutchinson's probes.
        n_probes: probes averaged per evaluation (Hutchinson).
        probe: `"rademacher"` or `"gaussian"`.
        solver: an adaptive `sk.solvers` ODE solver (default `dopri5()`).
        rtol, atol: the PID controller's tolerances.
        t_start, t_end: the integration interval (defaults: the schedule's `t_min`, `t_max`).
        prior_log_prob: `x_T -> log p_T(x_T)` per sample.
        args: passed to the network.
        max_steps: bound on the solver's steps.

    Returns:
        `Likelihood(log_prob, bits_per_dim, prior_log_prob, num_fevals)`; `bits_per_dim` is
        $-\log p/(D\log 2)$ of the data as given (add the dequantisation offset, e.g.
        $\log_2 128$ for 8-bit images scaled to [-1, 1], yourself).

    Raises:
        ValueError: for an unknown `trace` or `probe`, Hutchinson without `key`, `x0` without a
            sample axis, or an empty interval.

    Examples:
        >>> import jax.numpy as jnp, sdekit.diffusion as skd
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> sched = skd.VP.linear()
        >>> x0 = jnp.array([[0.0, 0.0], [0.5, -0.5]])
        >>> ll = skd.log_likelihood(gm.model(sched), x0)
        >>> exact = gm.log_prob(x0, sched.alpha(1e-3), sched.sigma(1e-3))
        >>> bool(jnp.allclose(ll.log_prob, exact, atol=1e-3))
        True

    References:
        Y. Song et al., "Score-Based Generative Modeling through SDEs", ICLR 2021 (2011.13456);
        W. Grathwohl et al., "FFJORD", ICLR 2019 (1810.01367).
    """
    if not isinstance(model, Model):
        raise TypeError(f"log_likelihood needs an skd.Model; got {type(model).__name__}.")
    check_trace(trace, key, n_probes, probe, "log_likelihood")
    x0 = samples_first(x0, "log_likelihood", "x0")
    sched = model.schedule
    t_start = sched.t_min if t_start is None else t_start
    t_end = sched.t_max if t_end is None else t_end
    if _concrete(t_start) and _concrete(t_end) and not float(t_start) < float(t_end):
        raise ValueError(f"log_likelihood: t_start < t_end is needed (data to noise); got {t_start}, {t_end}.")
    probes = None if trace == "exact" else draw_probes(key, x0, n_probes, probe)
    y0 = {"x": x0, "log_q": jnp.zeros(x0.shape[:1], x0.dtype)}
    sol = sk.solve(sk.ODE(FlowWithLogDensity(model)), sk.solvers.dopri5() if solver is None else solver,
                   jnp.asarray(t_start, x0.dtype), jnp.asarray(t_end, x0.dtype), y0, args=(args, probes),
                   controller=sk.PID(rtol=rtol, atol=atol), max_steps=max_steps)
    x_T, change = sol.ys["x"][-1], sol.ys["log_q"][-1]  # change = log p_T(x_T) - log p_start(x0)
    prior = gaussian_prior_log_prob(model, t_end, x_T) if prior_log_prob is None else prior_log_prob(x_T)
    prior = jnp.asarray(prior, x0.dtype)
    log_prob = prior - change
    bpd = -log_prob / (event_size(x0) * math.log(2.0))
    return Likelihood(log_prob, bpd, prior, sol.stats["num_fevals"])


def _concrete(x):
    return not isinstance(x, jax.core.Tracer)
