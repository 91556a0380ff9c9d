"""Neural SDEs, neural CDEs and latent SDEs for irregularly sampled time series.

Control paths (`interpolate`) and models (`LSDE`, `LNSDE`, `GSDE`, `NeuralSDE`, `NeuralCDE`,
`LatentSDE`), built on `sk.solve` and its adjoints. Every model is an equinox module called on
one series, `model(times, values, *, key)`; `jax.vmap` it over a batch.
"""

from ._interpolate import ControlPath as ControlPath, interpolate as interpolate
from ._gsde import GSDE as GSDE
from ._latent_sde import LatentSDE as LatentSDE
from ._lnsde import LNSDE as LNSDE
from ._lsde import LSDE as LSDE
from ._neural_cde import NeuralCDE as NeuralCDE
from ._neural_sde import NeuralSDE as NeuralSDE
from ._fit import History as History, evaluate as evaluate, fit as fit, predict as predict
from ._metrics import (
    accuracy as accuracy,
    confusion_matrix as confusion_matrix,
    f1_weighted as f1_weighted,
    mean_squared_error as mean_squared_error,
)
from ._cli import add_fit_parser as add_fit_parser

__all__ = ["ControlPath", "GSDE", "LNSDE", "LatentSDE", "LSDE", "NeuralCDE", "NeuralSDE", "interpolate",
           "History", "accuracy", "add_fit_parser", "confusion_matrix", "evaluate", "f1_weighted", "fit",
           "mean_squared_error", "predict"]
