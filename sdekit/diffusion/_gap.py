r"""The ODE-SDE gap of a diffusion model (Deveney et al., "Closing the ODE-SDE gap in score-based
diffusion models through the Fokker-Planck equation", arXiv 2311.15996).

With the exact score, the probability-flow ODE and the reverse SDE have the same marginals;
with a learned score they need not, and how far apart their samples are measures how far the
score is from being the score of one family of marginals (a Fokker-Planck residual). Both are
sampled here from the same $x_T$ (and the SDE from one key), and the sample sets are compared
by the sliced 2-Wasserstein distance.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from . import samplers
from ._model import Model
from ._sample import sample


class Gap(NamedTuple):
    """What `ode_sde_gap` returns."""

    sliced_wasserstein: Array  # SW_2 between the ODE and the SDE sample sets
    mean_distance: Array  # mean |x_ode - x_sde| over pairs started at the same x_T
    ode: Array  # the ODE samples
    sde: Array  # the SDE samples


def sliced_wasserstein(
    a: Float[Array, "n *event"], b: Float[Array, "n *event"], key: jax.Array, n_projections: int = 256
) -> Array:
    r"""The sliced 2-Wasserstein distance $\big(E_\theta W_2^2(\theta^\top a, \theta^\top b)\big)^{1/2}$
    between two sample sets of equal size, $\theta$ uniform on the sphere (Monte Carlo over
    `n_projections` directions from `key`; each 1-D distance exact, from sorted projections).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> a = jax.random.normal(jax.random.key(0), (1000, 2))
        >>> shift = jnp.array([3.0, 4.0])        # a pure shift m: SW_2 = |m| / sqrt(d)
        >>> round(float(skd.sliced_wasserstein(a, a + shift[None], jax.random.key(1), 4096)), 1)
        3.5
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"sliced_wasserstein needs two sample sets (n, *event) of one shape; got {a.shape}, {b.shape}.")
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    theta = jax.random.normal(key, (a.shape[1], n_projections), a.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = jnp.sort(a @ theta, axis=0), jnp.sort(b @ theta, axis=0)
    return jnp.sqrt(jnp.mean((pa - pb) ** 2))


def ode_sde_gap(
    model: Model,
    x_T: Float[Array, "n *event"],
    ts: Float[ArrayLike, " steps_plus_one"],
    *,
    key: jax.Array,
    ode_sampler: sk.solvers.Solver | None = None,
    sde_sampler: sk.solvers.Solver | None = None,
    n_projections: int = 256,
    args: Any = None,
) -> Gap:
    r"""How far apart the probability-flow ODE's and the reverse SDE's samples of `model` are,
    from the same starting samples `x_T` through the grid `ts`.

    Args:
        model: an `skd.Model`.
        x_T: starting samples `(n, *event)`, shared by both.
        ts: the grid (`skd.time_grid`); use enough steps that the samplers' own errors are small.
        key: the SDE's noise (one `sk.BrownianTree`), and the projections' directions.
        ode_sampler: default `skd.samplers.dpm_solver_pp(order=2)`.
        sde_sampler: default `skd.samplers.euler_ancestral()` (DDPM's ancestral sampler).
        n_projections: directions of the sliced Wasserstein distance.
        args: passed to the network.

    Returns:
        `Gap(sliced_wasserstein, mean_distance, ode, sde)`. With the exact score the distance
        is the samplers' and the sample sets' error only; a larger one flags a score that is
        not consistent across noise levels.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> sched = skd.VP.linear()
        >>> gap = skd.ode_sde_gap(gm.model(sched), sched.prior(jax.random.key(0), (500, 2)),
        ...                       skd.time_grid(sched, 30), key=jax.random.key(1))
        >>> bool(gap.sliced_wasserstein < 0.15)   # the exact score: the samplers' errors and sampling noise only
        True
    """
    if not isinstance(model, Model):
        raise TypeError(f"ode_sde_gap needs an skd.Model; got {type(model).__name__}.")
    ode_sampler = samplers.dpm_solver_pp(order=2) if ode_sampler is None else ode_sampler
    sde_sampler = samplers.euler_ancestral() if sde_sampler is None else sde_sampler
    if ode_sampler.sde is not None or sde_sampler.sde is None:
        raise ValueError(f"ode_sde_gap: ode_sampler must be deterministic and sde_sampler stochastic; got "
                         f"{ode_sampler.name} and {sde_sampler.name}.")
    noise_key, projection_key = jax.random.split(key)
    ode = sample(model, ode_sampler, x_T, ts, args=args)
    sde = sample(model, sde_sampler, x_T, ts, key=noise_key, args=args)
    distance = jnp.mean(jnp.sqrt(jnp.sum((ode - sde).reshape(ode.shape[0], -1) ** 2, axis=1)))
    return Gap(sliced_wasserstein(ode, sde, projection_key, n_projections), distance, ode, sde)
