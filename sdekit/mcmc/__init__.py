"""Underdamped Langevin MCMC (`import sdekit.mcmc as skm`): blackjax's shape (`init`,
`build_kernel`, the constructor `uld`), many chains with `sample`, and diagnostics from numpyro
(the extra `sdekit[mcmc]`).

Examples:
    >>> import jax, jax.numpy as jnp, sdekit.mcmc as skm
    >>> sampler = skm.uld(lambda x: -0.5 * jnp.sum(x**2), step_size=0.5, sample_time=1.0)
    >>> states = jax.vmap(sampler.init)(jnp.zeros((8, 2)), jax.random.split(jax.random.key(0), 8))
    >>> out = skm.sample(jax.random.key(1), sampler.step, states, 50)
    >>> out.positions.shape
    (8, 50, 2)
"""

from ._diagnostics import effective_sample_size as effective_sample_size, rhat as rhat
from ._sample import Samples as Samples, sample as sample
from ._uld import (
    ULDInfo as ULDInfo,
    ULDSampler as ULDSampler,
    ULDState as ULDState,
    build_kernel as build_kernel,
    init as init,
    uld as uld,
)

__all__ = ["Samples", "ULDInfo", "ULDSampler", "ULDState", "build_kernel", "effective_sample_size", "init", "rhat",
           "sample", "uld"]
