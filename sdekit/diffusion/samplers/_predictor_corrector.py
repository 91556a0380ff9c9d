r"""Song et al.'s predictor-corrector sampler (ICLR 2021, arXiv 2011.13456, Algorithms 2-3 and
App. G): a reverse-diffusion predictor and a Langevin corrector, with every normal drawn from
the Brownian tree.

A step from $s$ (noisier) to $t$, with the forward transition $x_s = a\,x_t + G\epsilon$,
$a = \alpha_s/\alpha_t$, $G^2 = \sigma_s^2 - a^2\sigma_t^2$ (Song's DDPM discretisation for VP,
$a = \sqrt{1 - \beta_i}$, $G^2 = \beta_i$; SMLD's for VE, $a = 1$, $G^2 = \sigma_s^2 - \sigma_t^2$):

1. `corrector_steps` Langevin steps at $s$, each
   $x \leftarrow x + \epsilon\,s_\theta(x, s) + \sqrt{2\epsilon}\,z_j$ with
   $\epsilon = 2a^2(r\,\lVert z_j\rVert/\lVert s_\theta\rVert)^2$, $r$ the signal-to-noise ratio `snr`
   (Song's $\alpha_i = a^2$: $1 - \beta_i$ for VP, 1 for VE), the norms as `step_size` says;
2. the reverse-diffusion predictor $x \leftarrow (2 - a)x + G^2 s_\theta(x, s) + G z$ (Song's
   $x - f + G^2 s_\theta$ with the forward drift $f = (a - 1)x$).

The predictor's $z$ is the step's Brownian increment $\Delta W/\sqrt{\Delta s}$; the correctors'
$z_1 = H\sqrt{12/\Delta s}$ and $z_2 = K\sqrt{720/\Delta s}$ are the step's space-time and space-time-time
Lévy areas, standard normals independent of $\Delta W$ and of each other, so every normal
comes from the one Brownian path (the tree is built with `levy="space-time"` or
`"space-time-time"`; at most two corrector steps).

The step size (`step_size`): `"batch"` is Song's, each norm taken per sample over all axes but
the first (`x.reshape(B, -1)`) and averaged over the batch, so a sample depends on its batch
through $\epsilon$; `"sample"` takes the ratio per sample (batch-invariant; sound in high
dimension, where a sample's norms concentrate, but in a few dimensions a sample near a mode
has $\lVert s_\theta\rVert \approx 0$ and a huge step); `"fixed"` replaces the ratio by its
noise-dominated value $\lVert z\rVert/\lVert s_\theta\rVert \approx \sigma_s$, $\epsilon = 2a^2r^2\sigma_s^2$
(batch-invariant, deterministic). A 1-D array is one sample.

The predictor is Euler–Maruyama-like (weak order 1); the corrector is an MCMC move at fixed
noise level whose step does not shrink with the grid, so the sampler does not converge
pathwise as the steps are refined: it samples the right law up to the predictor's and the
corrector's biases. `corrector_steps + 1` model evaluations per step. A step to $\sigma_t = 0$
returns $\hat x_0$ after its correctors.
"""

import functools
import math
from typing import NamedTuple

import jax.numpy as jnp

import sdekit as sk

from . import _common as c

LEVY = ("increment", "space-time", "space-time-time")


STEP_SIZES = ("batch", "sample", "fixed")


class _Config(NamedTuple):
    corrector_steps: int
    snr: float
    step_size: str


def _init(cfg, problem, t0, y0, args):
    c.check_state(y0, "predictor_corrector")
    return sk.solvers.EmptyState()


def _sample_norm(v):
    """Per-sample Euclidean norm, broadcastable against `v`."""
    axes = tuple(range(1, v.ndim)) if v.ndim >= 2 else tuple(range(v.ndim))
    return jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))


def _ratio(cfg: _Config, z, score, s: c.Point):
    r"""$\lVert z\rVert/\lVert s_\theta\rVert$ as `step_size` says."""
    if cfg.step_size == "fixed":
        return s.sigma
    nz, ns = _sample_norm(z), _sample_norm(score)
    if cfg.step_size == "batch":
        nz, ns = jnp.mean(nz), jnp.mean(ns)
    return nz / jnp.maximum(ns, jnp.finfo(z.dtype).tiny)


def _corrector_noise(inc, j, dtype):
    dt = jnp.asarray(inc.dt, dtype)
    dt = jnp.where(dt > 0, dt, 1)
    area, scale = (inc.H, 12.0) if j == 0 else (inc.K, 720.0)
    return area.astype(dtype) * jnp.sqrt(scale / dt)


def _step(cfg: _Config, problem, tau0, tau1, x, args, inc, state):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, "predictor_corrector")
    dtype = x.dtype
    s, t = c.point(model, t0, dtype), c.point(model, t1, dtype)
    a = s.alpha / t.alpha
    g2 = s.sigma**2 - (a * t.sigma) ** 2
    y = x
    for j in range(cfg.corrector_steps):
        score = model.score(y, s.t, args)
        z = _corrector_noise(inc, j, dtype)
        eps = 2 * a**2 * (cfg.snr * _ratio(cfg, z, score, s)) ** 2
        y = y + eps * score + jnp.sqrt(2 * eps) * z
    x0, eps_hat = model.x0_and_eps(y, s.t, args)
    score = -eps_hat / s.sigma
    x1 = (2 - a) * y + g2 * score + jnp.sqrt(g2) * c.standard_noise(inc, dtype)
    x1 = c.at_data_end(t, x0, x1)
    return x1, None, sk.solvers.LinearDense(x, x1), state


@functools.cache
def _build(cfg: _Config) -> sk.solvers.Solver:
    facts = sk.solvers.SDEFacts(calculus="ito", strong_order=(("additive", 0.5),), weak_order=(("additive", 1.0),),
                                levy_area=LEVY[cfg.corrector_steps])
    return sk.solvers.Solver(
        name="predictor_corrector", init=functools.partial(_init, cfg), step=functools.partial(_step, cfg),
        interpolate=sk.solvers.linear_interpolate, order=None, embedded_order=None, interpolation_order=1,
        fevals_per_step=cfg.corrector_steps + 1, sde=facts)


def predictor_corrector(corrector_steps: int = 1, snr: float = 0.16, step_size: str = "batch") -> sk.solvers.Solver:
    r"""Song et al.'s predictor-corrector sampler (ICLR 2021): reverse-diffusion predictor and
    Langevin corrector, a solver of `skd.reverse_sde(model)`; see this module's docstring.

    Args:
        corrector_steps: Langevin steps before each predictor step: 0, 1 (Song's CIFAR-10
            setting) or 2; their normals are the step's Lévy areas, so the Brownian tree must
            provide them (`skd.sample` builds it so; with `sk.solve`, use
            `levy=solver.sde.levy_area`).
        snr: the corrector's signal-to-noise ratio $r$ (0.16 for VE CIFAR-10, 0.01 for VP).
        step_size: how the corrector's $\epsilon$ uses the norms: `"batch"` (Song's; the first
            axis is the batch), `"sample"` or `"fixed"` (both batch-invariant); see above.

    `corrector_steps + 1` model evaluations per step; weak order 1 (the predictor), no pathwise
    convergence (the corrector's step does not shrink with the grid).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VE()
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> x_T = sched.prior(jax.random.key(0), (1024, 2))
        >>> ts = skd.time_grid(sched, 40, "log_snr")
        >>> x0 = skd.sample(gm.model(sched), skd.samplers.predictor_corrector(), x_T, ts, key=jax.random.key(1))
        >>> round(float(jnp.std(x0)), 1)
        0.5
    """
    if not isinstance(corrector_steps, int) or isinstance(corrector_steps, bool) or not 0 <= corrector_steps <= 2:
        raise ValueError("predictor_corrector: corrector_steps must be 0, 1 or 2 (its normals are the step's Lévy "
                         f"areas H and K); got {corrector_steps!r}.")
    if not (isinstance(snr, (int, float)) and snr > 0 and math.isfinite(snr)):
        raise ValueError(f"predictor_corrector: snr must be a positive number; got {snr!r}.")
    if step_size not in STEP_SIZES:
        raise ValueError(f"predictor_corrector: step_size must be one of {STEP_SIZES}; got {step_size!r}.")
    return _build(_Config(corrector_steps, float(snr), step_size))
