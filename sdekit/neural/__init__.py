"""Neural SDEs, neural CDEs and latent SDEs for irregularly sampled time series.

Control paths (`interpolate`) and models (`LSDE`, `LNSDE`, `GSDE`, `NeuralSDE`, `NeuralCDE`,
`LatentSDE`), built on `sk.solve` and its adjoints. Every model is an equinox module called on
one series, `model(times, values, *, key)`; `jax.vmap` it over a batch.
"""

from ._interpolate import ControlPath as ControlPath, interpolate as interpolate
from ._lnsde import LNSDE as LNSDE

__all__ = ["ControlPath", "LNSDE", "interpolate"]
