r"""Samples with their log-density: the Itô density estimator along reverse-SDE samples, and the
instantaneous change of variables along probability-flow samples.

**SDE** (Skreta et al. 2025, Prop. 1; Karczewski et al. 2024). Along the reverse-time SDE in
$\tau = -t$, $dx = [-f x + g^2 s]\,d\tau + g\,d\bar W$ with $s = \nabla\log q_t$, Itô's lemma and
the Fokker-Planck equation give (the Laplacians cancel: no divergence)

$$d\log q_t(x_\tau) = \langle s, dx\rangle + [D f + f\langle x, s\rangle - \tfrac12 g^2|s|^2]\,d\tau
 = [\tfrac12 g^2 |s|^2 + D f]\,d\tau + g\langle s, d\bar W\rangle,$$

so $\{x, \ell\}$ is an Itô SDE whose every coefficient is the one score evaluation. Its noise,
$\{g I, g s^\top\}$, is commutative because $\partial s$ (a Hessian) is symmetric: Euler-Maruyama
converges with strong order 1/2 in $\ell$ and Milstein (`sk.solvers.milstein()`, which adds
$\tfrac12 g^2(\Delta W^\top \partial s\,\Delta W - h\,\nabla\cdot s)$ by forward-mode derivatives of
the score) with order 1.

**ODE**. Along the probability-flow ODE $dx/dt = v$, $d\log q_t(x_t)/dt = -\nabla\cdot v$, solved as
an augmented ODE by any sdekit ODE solver, at the solver's order.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from ._divergence import FlowWithLogDensity, check_trace, draw_probes, event_size, gaussian_prior_log_prob
from . import samplers
from ._model import Model
from ._sampling_grid import TREE_DEPTH, check_grid, samples_first


class LogDensitySample(NamedTuple):
    """What `sample_with_log_density` returns."""

    x: Array  # the samples at ts[-1], (n, *event)
    log_density: Array  # the estimate of log p_{ts[-1]}(x), (n,)


def _score_one(model, x, t, args):
    # The network sees a batch of one (it is vmapped over samples by the caller).
    return model.score(x[None], t, args)[0]


class ItoDensityDrift(eqx.Module):
    r"""Drift of $\{x, \ell\}$ in $s = -t$: $\{g^2 s - f x,\ \tfrac12 g^2|s|^2 + D f\}$."""

    model: Model

    def __call__(self, tau, y, args):
        x = y["x"]
        t = -jnp.asarray(tau, x.dtype)
        sched = self.model.schedule
        f, g2 = sched.drift_coefficient(t).astype(x.dtype), sched.diffusion_squared(t).astype(x.dtype)
        score = _score_one(self.model, x, t, args)
        log_q = 0.5 * g2 * jnp.sum(score**2) + x.size * f
        return {"x": g2 * score - f * x, "log_q": log_q.astype(y["log_q"].dtype)}


class ItoDensityDiffusion(eqx.Module):
    r"""Diffusion of $\{x, \ell\}$ against $W \in \mathbb{R}^D$: $\{g I, g s^\top\}$ (commutative noise)."""

    model: Model

    def __call__(self, tau, y, args):
        x = y["x"]
        t = -jnp.asarray(tau, x.dtype)
        g = jnp.sqrt(self.model.schedule.diffusion_squared(t)).astype(x.dtype)
        eye = jnp.eye(x.size, dtype=x.dtype).reshape(x.shape + (x.size,))
        score = _score_one(self.model, x, t, args)
        return {"x": g * eye, "log_q": (g * score.reshape(-1)).astype(y["log_q"].dtype)}


def ito_density_sde(model: Model) -> sk.SDE:
    r"""The reverse-time SDE of `model` with the log-density as an extra state, in $s = -t$:
    state `{"x": one sample, "log_q": ()}`, commutative Itô noise against $W \in \mathbb{R}^D$
    ($D$ the size of a sample). `sample_with_log_density` solves it per sample under `vmap`.

    Examples:
        >>> import jax.numpy as jnp, sdekit.diffusion as skd
        >>> model = skd.Model(lambda x, t, a: jnp.zeros_like(x), skd.VP.linear(), prediction="x0")
        >>> sde = skd.ito_density_sde(model)
        >>> sde.noise, sde.diffusion(-0.5, {"x": jnp.ones(2), "log_q": jnp.zeros(())}, None)["x"].shape
        ('commutative', (2, 2))
    """
    if not isinstance(model, Model):
        raise TypeError(f"ito_density_sde needs an skd.Model; got {type(model).__name__}.")
    return sk.SDE(ItoDensityDrift(model), ItoDensityDiffusion(model), noise="commutative", calculus="ito")


def sample_with_log_density(
    model: Model,
    solver: sk.solvers.Solver,
    x_T: Float[Array, "n *event"],
    ts: Float[ArrayLike, " steps_plus_one"],
    *,
    key: jax.Array | None = None,
    prior_log_prob: Callable[[Array], Array] | None = None,
    trace: str = "exact",
    n_probes: int = 1,
    probe: str = "rademacher",
    args: Any = None,
    padded: bool = False,
) -> LogDensitySample:
    r"""Sample from `x_T` through the grid `ts` and estimate each sample's log-density on the way.

    - An SDE solver (`sk.solvers.euler_maruyama()`, `milstein()`, ...): the reverse-time SDE with
      the Itô density estimator as an extra state (`ito_density_sde`): no divergence, no network
      evaluation beyond the score's (Euler-Maruyama's drift and diffusion evaluate it at the
      same point, and XLA computes it once). Each sample has its own `sk.BrownianTree` from
      `fold_in(key, i)`, fixed resolution: the same key gives the same path for any batch size
      and any number of steps.
    - An ODE solver (`sk.solvers.heun()`, `tsit5()`, ...): the probability-flow ODE with
      $\dot\ell = -\nabla\cdot v$ (exact trace, or Hutchinson with `key`).

    The estimate starts from `prior_log_prob(x_T)` (default $\log N(0, \sigma_{ts[0]}^2 I)$) and
    converges to $\log p_{ts[-1]}(x)$ of the sample $x$ actually returned, with the solver's
    (strong) order in the number of steps. The network is called on batches (of one sample
    each, under `vmap`, for SDEs). The diffusion samplers of `skd.samplers` step the sample
    alone and do not apply: use an `sk.solvers` solver.

    Args:
        model: an `skd.Model`.
        solver: an `sk.solvers` SDE solver for Itô commutative noise, or an ODE solver.
        x_T: starting samples `(n, *event)` at `ts[0]`.
        ts: the grid, from noise to data (`skd.time_grid`).
        key: PRNG key of the Brownian trees (SDE) or of Hutchinson's probes (ODE).
        prior_log_prob: `x_T -> log p_{ts[0]}(x_T)` per sample.
        trace, n_probes, probe: the divergence for ODE solvers, as in `skd.log_likelihood`.
        args: passed to the network.
        padded: `ts` may repeat times, skipped (as in `skd.sample`).

    Returns:
        `LogDensitySample(x, log_density)`.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk, sdekit.diffusion as skd
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> sched = skd.VP.linear()
        >>> x_T = sched.prior(jax.random.key(0), (256, 2))
        >>> prior = lambda x: gm.log_prob(x, sched.alpha(1.0), sched.sigma(1.0))
        >>> out = skd.sample_with_log_density(gm.model(sched), sk.solvers.milstein(), x_T,
        ...                                   skd.time_grid(sched, 200), key=jax.random.key(1), prior_log_prob=prior)
        >>> err = out.log_density - gm.log_prob(out.x, sched.alpha(1e-3), sched.sigma(1e-3))
        >>> bool(jnp.mean(jnp.abs(err)) < 0.5)   # Milstein: error ~ 1/steps (Euler-Maruyama: 1/sqrt(steps))
        True

    References:
        M. Skreta, L. Atanackovic, A. J. Bose, A. Tong, K. Neklyudov, "The Superposition of
        Diffusion Models Using the Itô Density Estimator", ICLR 2025 (arXiv 2412.17762);
        B. Karczewski, T. Heikkilä, V. Garg, arXiv 2411.01293.
    """
    if not isinstance(model, Model):
        raise TypeError(f"sample_with_log_density needs an skd.Model; got {type(model).__name__}.")
    if not isinstance(solver, sk.solvers.Solver):
        raise TypeError(f"solver must be an sk.solvers solver; got {type(solver).__name__}.")
    x_T = samples_first(x_T, "sample_with_log_density", "x_T")
    ts = jnp.asarray(ts, x_T.dtype)
    check_grid(model, ts, padded)
    prior = gaussian_prior_log_prob(model, ts[0], x_T) if prior_log_prob is None else prior_log_prob(x_T)
    y0 = {"x": x_T, "log_q": jnp.asarray(prior, x_T.dtype)}
    if _is_diffusion_sampler(solver):
        raise TypeError(f"sample_with_log_density carries the log-density as an extra state, which the diffusion "
                        f"sampler {solver.name} does not step: use an sk.solvers solver (euler_maruyama, milstein, "
                        "heun, tsit5, ...).")
    if solver.sde is None:
        check_trace(trace, key, n_probes, probe, "sample_with_log_density")
        x, log_q = _ode(model, solver, y0, ts, key, trace, n_probes, probe, args, padded)
    else:
        x, log_q = _sde(model, solver, y0, ts, key, args, padded)
    return LogDensitySample(x, log_q)


def _is_diffusion_sampler(solver) -> bool:
    step = getattr(solver.step, "func", solver.step)  # (samplers are partials of module functions)
    return getattr(step, "__module__", "").startswith(samplers.__name__)


@eqx.filter_jit
def _ode(model, solver, y0, ts, key, trace, n_probes, probe, args, padded):
    probes = None if trace == "exact" else draw_probes(key, y0["x"], n_probes, probe)
    sol = sk.solve(sk.ODE(FlowWithLogDensity(model)), solver, ts[0], ts[-1], y0, args=(args, probes),
                   controller=sk.StepTo(ts, padded=padded))
    return sol.ys["x"][-1], sol.ys["log_q"][-1]


def _sde(model, solver, y0, ts, key, args, padded):
    if key is None:
        raise ValueError(f"the SDE solver {solver.name} draws noise: pass key=jax.random.key(...).")
    s = -ts
    if not isinstance(s, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(s))):
        raise ValueError("sample_with_log_density with an SDE solver needs finite times; end the grid at a small t.")
    span = abs(float(s[-1] - s[0])) if not isinstance(s, jax.core.Tracer) else 1.0
    return _sde_run(model, solver, y0, s, key, args, span, padded)


@eqx.filter_jit
def _sde_run(model, solver, y0, s, key, args, span, padded):
    # (span, a Python float, is static: the tree resolution is fixed relative to the grid span.)
    sde = ito_density_sde(model)
    x_T = y0["x"]
    levy = solver.sde.levy_area
    levy = levy if levy in ("increment", "space-time", "space-time-time") else "increment"

    def one(i, y):
        tree = sk.BrownianTree(jax.random.fold_in(key, i), s[0], s[-1], shape=(event_size(x_T),), dtype=x_T.dtype,
                               tol=span * 2.0**-TREE_DEPTH, depth=TREE_DEPTH, levy=levy)
        sol = sk.solve(sde, solver, s[0], s[-1], y, args=args, controller=sk.StepTo(s, padded=padded), brownian=tree)
        return jax.tree.map(lambda a: a[-1], sol.ys)

    out = jax.vmap(one)(jnp.arange(x_T.shape[0]), y0)
    return out["x"], out["log_q"]
