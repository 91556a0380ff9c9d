r"""Superposition of diffusion models with automatic weights (SuperDiff; Skreta et al. 2025).

Models $s^1..s^K$ of one schedule are combined into the score $\sum_k\kappa_k s^k$, with weights
chosen at every step from the log-densities $\ell^k = \log q^k_t(x_t)$ that each model assigns
to the shared path, tracked by the Itô density estimator (only the scores are needed):

- `"or"` (mixture): $\kappa = \mathrm{softmax}(\ell / T)$. At $T = 1$ the combined score is the
  score of $\frac1K\sum_k q^k_t$, so the samples follow the mixture of the models' laws.
- `"and"` (equal density): $\kappa$ (with $\sum_k\kappa_k = 1$) makes the step change every
  $\ell^k$ by the same amount, so the path stays where the models' densities agree and are
  high together.

Per step, on the step's actual increment $\Delta x$ (left-point, from $(x_n, t_n)$):

- SDE samplers, $h = t_n - t_{n+1}$: $\Delta\ell^k = \langle s^k, \Delta x\rangle + [Df + f\langle x, s^k\rangle - \tfrac12 g^2|s^k|^2]h$;
- ODE samplers, $\Delta t = t_{n+1} - t_n$: $\Delta\ell^k = \langle s^k, \Delta x\rangle - [\nabla\cdot v^k + \langle v^k, s^k\rangle]\Delta t$,
  $v^k = f x - \tfrac12 g^2 s^k$, with the exact divergence (small data).

A sampler's step is affine in the model's output at $x_n$ (one evaluation there, history
fixed), so the step is affine in $\kappa$: `"and"` takes the step once per model
($\kappa = e_k$: the same $K$ score evaluations), solves the $K\times K$ linear system for
$\kappa$ per sample and then takes the step with it. For $K = 2$ and Euler-Maruyama this is the
paper's closed form. (Multi-stage samplers evaluate again inside the step; for them the
weights come from the same secant, which is exact only to first order in $h$.)
"""

from typing import Any, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from ._divergence import gaussian_prior_log_prob, value_and_divergence
from ._model import Model
from ._problems import probability_flow, reverse_sde
from ._sampling_grid import TREE_DEPTH, check_grid, samples_first

MODES = ("or", "and")


class Superposition(eqx.Module):
    """Models of one schedule, superposed: build with `skd.superpose`, sample with `skd.sample`
    (or `skd.sample_superposed` for the log-densities and weights too)."""

    models: tuple
    mode: str = eqx.field(static=True, default="or")
    temperature: Any = 1.0

    @property
    def schedule(self):
        return self.models[0].schedule


def superpose(models: Sequence[Model], mode: str = "or", temperature: float = 1.0) -> Superposition:
    r"""Superpose diffusion models: `"or"` samples the mixture of their laws, `"and"` the region
    where their densities are high together, with SuperDiff's automatic weights (see this
    module's docstring). Sample with `skd.sample(superposition, sampler, x_T, ts, key=...)`:
    any `skd.samplers` sampler or `sk.solvers` solver of the reverse SDE or probability-flow ODE.

    Args:
        models: two or more `skd.Model`s of the same schedule.
        mode: `"or"` or `"and"`.
        temperature: `"or"` only: $\kappa = \mathrm{softmax}(\ell/T)$ ($T = 1$: the mixture).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> a = skd.GaussianMixture(jnp.ones(1), jnp.array([[-2.0]]), 0.1 * jnp.ones((1, 1, 1)))
        >>> b = skd.GaussianMixture(jnp.ones(1), jnp.array([[2.0]]), 0.1 * jnp.ones((1, 1, 1)))
        >>> both = skd.superpose([a.model(sched), b.model(sched)], mode="or")
        >>> x0 = skd.sample(both, skd.samplers.ddim(eta=1.0), sched.prior(jax.random.key(0), (1000, 1)),
        ...                 skd.time_grid(sched, 50), key=jax.random.key(1))
        >>> round(float(jnp.mean(x0 > 0)), 1)   # half from each model
        0.5

    References:
        M. Skreta, L. Atanackovic, A. J. Bose, A. Tong, K. Neklyudov, "The Superposition of
        Diffusion Models Using the Itô Density Estimator", ICLR 2025 (arXiv 2412.17762).
    """
    models = tuple(models)
    if len(models) < 2 or not all(isinstance(m, Model) for m in models):
        raise TypeError("superpose needs two or more skd.Model's.")
    if mode not in MODES:
        raise ValueError(f"superpose: mode must be one of {MODES}; got {mode!r}.")
    for m in models[1:]:
        same = eqx.tree_equal(m.schedule, models[0].schedule)
        if not isinstance(same, jax.core.Tracer) and not bool(same):
            raise ValueError("superpose: the models must share one schedule.")
    return Superposition(models, mode, temperature)


class SuperposedSample(NamedTuple):
    """What `sample_superposed` returns."""

    x: Array  # the samples, (n, *event)
    log_densities: Array  # each model's log q^k_t(x) estimated along the path, (K, n)
    weights: Array  # the last step's weights kappa, (K, n)


class _Weighted(eqx.Module):
    models: tuple
    weights: Array  # (K, n)

    def __call__(self, x, t, args):
        w = self.weights.reshape(self.weights.shape + (1,) * (x.ndim - 1)).astype(x.dtype)
        return sum(w[k] * m.score(x, t, args) for k, m in enumerate(self.models))


def _inner(a, b):
    return jnp.sum((a * b).reshape(a.shape[0], -1), axis=1)


def sample_superposed(
    superposition: Superposition,
    sampler: sk.solvers.Solver,
    x_T: Float[Array, "n *event"],
    ts: Float[ArrayLike, " steps_plus_one"],
    *,
    key: jax.Array | None = None,
    args: Any = None,
    prior_log_prob=None,
) -> SuperposedSample:
    r"""Sample a `Superposition` with `sampler` through the grid `ts`; also return each model's
    log-density along the path and the last weights. One `lax.scan` over the grid calling the
    sampler's pure `init`/`step`; stochastic samplers take their increments from one
    `sk.BrownianTree` made from `key` (as `skd.sample` does).

    Args:
        superposition: from `skd.superpose`.
        sampler: any `skd.samplers` sampler, or an `sk.solvers` solver of the reverse SDE
            (e.g. `euler_maruyama()`) or of the probability-flow ODE.
        x_T: starting samples `(n, *event)`; ts: the grid (`skd.time_grid`).
        key: PRNG key for stochastic samplers.
        args: passed to every network.
        prior_log_prob: `x_T -> log q_T(x_T)` (default $\log N(0, \sigma_{ts[0]}^2 I)$; the same
            for every model, so the first weights are uniform).

    Returns:
        `SuperposedSample(x, log_densities, weights)`.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> a = skd.GaussianMixture(jnp.ones(1), jnp.array([[-1.0]]), 0.5 * jnp.ones((1, 1, 1)))
        >>> b = skd.GaussianMixture(jnp.ones(1), jnp.array([[1.0]]), 0.5 * jnp.ones((1, 1, 1)))
        >>> both = skd.superpose([a.model(sched), b.model(sched)], mode="and")
        >>> out = skd.sample_superposed(both, sk.solvers.euler_maruyama(), sched.prior(jax.random.key(0), (1000, 1)),
        ...                             skd.time_grid(sched, 100), key=jax.random.key(1))
        >>> abs(round(float(jnp.mean(out.x)), 1)), out.log_densities.shape   # where both are high: around 0
        (0.0, (2, 1000))
    """
    if not isinstance(superposition, Superposition):
        raise TypeError(f"sample_superposed needs an skd.superpose(...) result; got {type(superposition).__name__}.")
    if not isinstance(sampler, sk.solvers.Solver):
        raise TypeError(f"sampler must be one of skd.samplers or an sk.solvers solver; got {type(sampler).__name__}.")
    x_T = samples_first(x_T, "sample_superposed", "x_T")
    models = superposition.models
    ts = jnp.asarray(ts, x_T.dtype)
    check_grid(models[0], ts)
    stochastic = sampler.sde is not None
    prior = gaussian_prior_log_prob(models[0], ts[0], x_T) if prior_log_prob is None else prior_log_prob(x_T)
    log_q = jnp.broadcast_to(jnp.asarray(prior, x_T.dtype), (len(models), x_T.shape[0]))
    if stochastic:
        if key is None:
            raise ValueError(f"the sampler {sampler.name} draws noise: pass key=jax.random.key(...).")
        taus = -ts
        if not isinstance(taus, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(taus))):
            raise ValueError("superposition with a stochastic sampler needs finite times; end the grid at a small t.")
        span = abs(float(taus[-1] - taus[0])) if not isinstance(taus, jax.core.Tracer) else 1.0
        tree = sk.BrownianTree(key, taus[0], taus[-1], shape=x_T.shape, dtype=x_T.dtype, tol=span * 2.0**-TREE_DEPTH,
                               depth=TREE_DEPTH, levy=sampler.sde.levy_area)
        incs = tree.grid_increments(taus)
    else:
        taus, incs = ts, None
    x, log_q, weights = _run(_Step(superposition, sampler, stochastic), x_T, log_q, ts, taus, incs, args)
    return SuperposedSample(x, log_q, weights)


@eqx.filter_jit
def _run(step, x_T, log_q, ts, taus, incs, args):
    # Compiled once per sampler, shapes and number of steps (numbers and models are traced).
    uniform = jnp.full(log_q.shape, 1.0 / log_q.shape[0], x_T.dtype)
    state = step.sampler.init(step.problem(uniform), taus[0], x_T, args)
    xs = (ts[:-1], ts[1:], taus[:-1], taus[1:], incs)
    (x, log_q, weights, _), _ = lax.scan(lambda c, xs: step(c, xs, args), (x_T, log_q, uniform, state), xs)
    return x, log_q, weights


class _Step(eqx.Module):
    superposition: Superposition
    sampler: sk.solvers.Solver = eqx.field(static=True)
    stochastic: bool = eqx.field(static=True)

    def problem(self, weights):
        sup = self.superposition
        model = Model(_Weighted(sup.models, weights), sup.schedule, prediction="score")
        return reverse_sde(model) if self.stochastic else probability_flow(model)

    def rates(self, x, t, scores, args):
        r"""Each model's $\Delta\ell^k - \langle s^k, \Delta x\rangle$ per unit of $h$ (SDE, $h = t_n - t_{n+1}$)
        or of $\Delta t$ (ODE), at $(x_n, t_n)$."""
        sched = self.superposition.schedule
        f, g2 = sched.drift_coefficient(t).astype(x.dtype), sched.diffusion_squared(t).astype(x.dtype)
        d = x[0].size
        if self.stochastic:
            return jnp.stack([d * f + f * _inner(x, s) - 0.5 * g2 * _inner(s, s) for s in scores])
        out = []
        for m, s in zip(self.superposition.models, scores):
            _, div_s = value_and_divergence(lambda z: m.score(z, t, args), x)
            v = f * x - 0.5 * g2 * s
            out.append(-(d * f - 0.5 * g2 * div_s) - _inner(v, s))
        return jnp.stack(out)

    def __call__(self, carry, xs, args):
        x, log_q, _, state = carry
        t0, t1, tau0, tau1, inc = xs
        models = self.superposition.models
        scores = [m.score(x, t0, args) for m in models]
        rates = self.rates(x, t0, scores, args) * (t0 - t1 if self.stochastic else t1 - t0).astype(x.dtype)
        weights = self.weights(x, log_q, scores, rates, tau0, tau1, inc, state, args)
        x1, _, _, state = self.sampler.step(self.problem(weights), tau0, tau1, x, args, inc, state)
        log_q = log_q + jnp.stack([_inner(s, x1 - x) for s in scores]) + rates
        return (x1, log_q, weights, state), None

    def weights(self, x, log_q, scores, rates, tau0, tau1, inc, state, args):
        k = len(scores)
        if self.superposition.mode == "or":
            return jax.nn.softmax(log_q / jnp.asarray(self.superposition.temperature, x.dtype), axis=0)
        # The step with kappa = e_j, for each j: the step is affine in kappa.
        basis = jnp.eye(k, dtype=x.dtype)[:, :, None] * jnp.ones((1, 1, x.shape[0]), x.dtype)
        dx = [self.sampler.step(self.problem(basis[j]), tau0, tau1, x, args, inc, state)[0] - x for j in range(k)]
        a = jnp.stack([jnp.stack([_inner(s, d) for d in dx], axis=-1) for s in scores], axis=1)  # (n, K_eq, K_kappa)
        # Rows 1..K-1: (Delta l^j - Delta l^0)(kappa) = 0; last row: sum kappa = 1.
        m = jnp.concatenate([a[:, 1:] - a[:, :1], jnp.ones_like(a[:, :1])], axis=1)
        rhs = jnp.concatenate([-(rates[1:] - rates[:1]).T, jnp.ones_like(rates[:1]).T], axis=1)
        kappa = jnp.linalg.solve(m, rhs[..., None])[..., 0].T  # (K, n)
        ok = jnp.all(jnp.isfinite(kappa), axis=0, keepdims=True)
        return jnp.where(ok, kappa, 1.0 / k)
