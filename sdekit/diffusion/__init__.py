"""Diffusion-model sampling: noise schedules, model parameterisations, time grids and samplers.

Examples:
    >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
    >>> sched = skd.VP.linear()
    >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None] * 0.25)
    >>> x_T = sched.prior(jax.random.key(0), (4096, 2))
    >>> x0 = skd.sample(gm.model(sched), skd.samplers.ddim(), x_T, skd.time_grid(sched, 50))
    >>> round(float(jnp.std(x0)), 1)
    0.5
"""

from . import samplers as samplers
from ._density import LogDensitySample as LogDensitySample, ito_density_sde as ito_density_sde
from ._density import sample_with_log_density as sample_with_log_density
from ._likelihood import Likelihood as Likelihood, log_likelihood as log_likelihood
from ._gap import Gap as Gap, ode_sde_gap as ode_sde_gap, sliced_wasserstein as sliced_wasserstein
from ._grid import SPACINGS as SPACINGS, time_grid as time_grid
from ._mixture import GaussianMixture as GaussianMixture
from ._model import PREDICTIONS as PREDICTIONS, Model as Model, Threshold as Threshold, edm_denoiser as edm_denoiser
from ._model import guided as guided
from ._problems import probability_flow as probability_flow, reverse_sde as reverse_sde
from ._sample import sample as sample
from ._superpose import SuperposedSample as SuperposedSample, Superposition as Superposition
from ._superpose import sample_superposed as sample_superposed, superpose as superpose
from ._schedules import EDM as EDM, VE as VE, VP as VP, Flow as Flow, Schedule as Schedule

__all__ = [
    "EDM", "Flow", "Gap", "GaussianMixture", "Likelihood", "LogDensitySample", "Model", "PREDICTIONS",
    "SPACINGS", "Schedule", "SuperposedSample", "Superposition", "Threshold", "VE", "VP", "edm_denoiser",
    "guided", "ito_density_sde", "log_likelihood", "ode_sde_gap", "probability_flow", "reverse_sde", "sample",
    "sample_superposed", "sample_with_log_density", "samplers", "sliced_wasserstein", "superpose",
    "time_grid",
]
