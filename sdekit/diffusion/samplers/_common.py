r"""What every sampler shares: reading the model and times from the problem a step receives,
the schedule's coefficients at a time, the history buffer of multistep methods, the rule at
$\sigma = 0$, and turning `init`/`step` into an `sk.solvers.Solver`.

A sampler is an `sk.solvers.Solver` of `skd.probability_flow(model)` (deterministic samplers) or
of `skd.reverse_sde(model)` (stochastic ones), so `sk.solve` with `controller=sk.StepTo(ts)`
runs it, with `SaveAt`, progress, `vmap` and the adjoints; `skd.sample` is that call. Its step
computes the few scalar coefficients it needs from the step's times and the log-SNRs kept in
its state: scalar work that XLA fuses into the loop, and that lets one step serve any grid.

Conventions (DPM-Solver's): a step runs from $s$ (noisier) to $t$; $\lambda = \log(\alpha/\sigma)$;
$h = \lambda_t - \lambda_s > 0$. $e^{-h}$ is computed as $\sigma_t\alpha_s/(\sigma_s\alpha_t)$, exact at
$\sigma_t = 0$, where every sampler returns the data prediction (k-diffusion's and diffusers' rule).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

import sdekit as sk

from .._model import Model
from .._problems import ProbabilityFlow, ReverseDrift


class Point(NamedTuple):
    """The schedule at one time, in the sample's dtype."""

    t: jax.Array
    alpha: jax.Array
    sigma: jax.Array
    lam: jax.Array  # log(alpha / sigma); +inf at sigma = 0


def point(model: Model, t, dtype) -> Point:
    sched = model.schedule
    t = jnp.asarray(t, dtype)
    alpha, sigma = sched.alpha(t).astype(dtype), sched.sigma(t).astype(dtype)
    lam = jnp.where(sigma == 0, jnp.inf, sched.log_snr(t).astype(dtype))
    return Point(t, alpha, sigma, lam)


def exp_neg_h(s: Point, t: Point):
    r"""$e^{-h} = e^{\lambda_s - \lambda_t} = \sigma_t\alpha_s/(\sigma_s\alpha_t)$, exact at $\sigma_t = 0$."""
    return (t.sigma * s.alpha) / (s.sigma * t.alpha)


def model_and_times(problem, tau0, tau1, name: str):
    """The model and the step's ends $(s, t)$ in the schedule's time, from what `step` receives."""
    if isinstance(problem, sk.SDE):
        if not isinstance(problem.drift, ReverseDrift):
            raise TypeError(f"the stochastic sampler {name} solves skd.reverse_sde(model); got another SDE.")
        return problem.drift.model, -tau0, -tau1
    original, t0 = sk.terms.as_written(problem, tau0)
    _, t1 = sk.terms.as_written(problem, tau1)
    field = getattr(original, "vector_field", None)
    if not isinstance(field, ProbabilityFlow):
        raise TypeError(f"the sampler {name} solves skd.probability_flow(model); got another problem.")
    return field.model, t0, t1


def standard_noise(inc, dtype):
    r"""The step's standard normal draw $z = \Delta W/\sqrt{\Delta s}$ from the Brownian increment."""
    dt = jnp.asarray(inc.dt, dtype)
    return inc.W / jnp.sqrt(jnp.where(dt > 0, dt, 1)).astype(dtype)


def at_data_end(t: Point, x0, x1):
    """The step's result, with the data prediction where the step ends at sigma = 0."""
    return jnp.where(t.sigma == 0, x0, x1)


class History(NamedTuple):
    """The last `k` data (or noise) predictions and their log-SNRs, newest first; `count` filled."""

    values: jax.Array  # (k, *shape)
    lams: jax.Array  # (k,)
    count: jax.Array  # int32

    @staticmethod
    def empty(k: int, y0) -> "History":
        return History(jnp.zeros((k,) + y0.shape, y0.dtype), jnp.zeros((k,), y0.dtype), jnp.zeros((), jnp.int32))

    def push(self, value, lam) -> "History":
        values = jnp.concatenate([value[None], self.values[:-1]], axis=0)
        lams = jnp.concatenate([jnp.reshape(lam, (1,)).astype(self.lams.dtype), self.lams[:-1]])
        return History(values, lams, self.count + 1)


def check_state(y0, name):
    if not isinstance(y0, jax.Array) or not jnp.issubdtype(y0.dtype, jnp.floating):
        raise TypeError(f"{name}: the sample must be one floating-point array; got {type(y0).__name__}.")


def deterministic(name: str, init, step, order: int, fevals_per_step: int) -> sk.solvers.Solver:
    """A sampler of the probability-flow ODE as an `sk.solvers.Solver` (fixed steps, no error estimate)."""
    return sk.solvers.Solver(
        name=name, init=init, step=step, interpolate=sk.solvers.linear_interpolate, order=order,
        embedded_order=None, interpolation_order=1, fevals_per_step=fevals_per_step)


def stochastic(name: str, init, step, weak_order: float, fevals_per_step: int,
               strong_order: float = 0.5) -> sk.solvers.Solver:
    """A sampler of the reverse-time SDE (additive noise, Itô) as an `sk.solvers.Solver`. Strong
    order 1 for the exponential integrators (SDE-DPM-Solver++, ER-SDE), whose noise is the exact
    variance times the step's normalised Brownian increment."""
    facts = sk.solvers.SDEFacts(
        calculus="ito", strong_order=(("additive", strong_order),), weak_order=(("additive", weak_order),))
    return sk.solvers.Solver(
        name=name, init=init, step=step, interpolate=sk.solvers.linear_interpolate, order=None,
        embedded_order=None, interpolation_order=1, fevals_per_step=fevals_per_step, sde=facts)
