r"""The divergence of the probability-flow field, per sample, and the flow augmented with it.

Along a solution of $dx/dt = v_t(x)$ the log-density of the flow's marginals changes by
$\frac{d}{dt}\log p_t(x_t) = -\nabla\cdot v_t(x_t)$ (instantaneous change of variables), so
solving $[x, \ell]$ with $\dot\ell = -\nabla\cdot v$ gives the log-density along the path. The
divergence is exact (one forward-mode derivative per data dimension, from one linearisation)
or Hutchinson's estimate $v^\top (\partial_x v)\, v$ with probes fixed over the solve.

Samples are the leading axis of `x`; the rest is one sample (`x` is `(n, *event)`), and the
network is called on the whole batch (samples must not interact inside it).
"""

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._model import Model

TRACES = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")


def event_size(x) -> int:
    return math.prod(x.shape[1:])


def _per_sample_sum(a):
    return jnp.sum(a.reshape(a.shape[0], -1), axis=1)


def value_and_divergence(fn, x, probes=None):
    r"""$f(x)$ and $\nabla\cdot f$ per sample: exact (`probes=None`) or Hutchinson's estimate
    averaged over `probes` (`(p, *x.shape)`)."""
    value, tangent_map = jax.linearize(fn, x)
    if probes is None:
        basis = jnp.eye(event_size(x), dtype=x.dtype).reshape((-1, 1) + x.shape[1:])
        jv = jax.vmap(tangent_map)(jnp.broadcast_to(basis, (basis.shape[0],) + x.shape))
        return value, _per_sample_sum(jnp.sum(basis * jv, axis=0))
    jv = jax.vmap(tangent_map)(probes)
    return value, jnp.mean(jax.vmap(_per_sample_sum)(probes * jv), axis=0)


def draw_probes(key, x, n_probes: int, probe: str):
    """Hutchinson probes `(n_probes, *x.shape)`: Rademacher signs or standard normals."""
    shape = (n_probes,) + x.shape
    if probe == "rademacher":
        return jax.random.rademacher(key, shape, x.dtype)
    return jax.random.normal(key, shape, x.dtype)


def check_trace(trace: str, key, n_probes: int, probe: str, where: str) -> None:
    if trace not in TRACES:
        raise ValueError(f"{where}: trace must be one of {TRACES}; got {trace!r}.")
    if probe not in PROBES:
        raise ValueError(f"{where}: probe must be one of {PROBES}; got {probe!r}.")
    if trace == "hutchinson":
        if key is None:
            raise ValueError(f"{where}: trace='hutchinson' draws probes: pass key=jax.random.key(...).")
        if not (isinstance(n_probes, int) and n_probes >= 1):
            raise ValueError(f"{where}: n_probes must be a positive integer; got {n_probes!r}.")


class FlowWithLogDensity(eqx.Module):
    r"""The augmented field $(t, \{x, \ell\}) \mapsto \{v_t(x), -\nabla\cdot v_t(x)\}$ of `model`'s
    probability-flow ODE; `args` is `(network_args, probes)` (`probes` is `None` for the exact trace)."""

    model: Model

    def __call__(self, t, y, args):
        network_args, probes = args
        velocity, div = value_and_divergence(lambda z: self.model.velocity(z, t, network_args), y["x"], probes)
        return {"x": velocity, "log_q": -div.astype(y["log_q"].dtype)}


def gaussian_prior_log_prob(model: Model, t: Any, x):
    r"""$\log N(x; 0, \sigma_t^2 I)$ per sample: the standard prior of a diffusion model at `t`."""
    sigma = model.schedule.sigma(jnp.asarray(t, x.dtype)).astype(x.dtype)
    d = event_size(x)
    sq = _per_sample_sum(x**2)
    return -0.5 * sq / sigma**2 - d * jnp.log(sigma) - 0.5 * d * jnp.log(2 * jnp.pi).astype(x.dtype)
