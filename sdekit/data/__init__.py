"""Irregularly sampled time series for neural differential equations: the `Dataset` pytree, the
UEA/UCR files that ship inside the aeon wheel (`pip install "sdekit[data]"`), `.ts`/`.tsv`
parsers, seeded observation dropping, stratified splits and train-only normalisation.

numpy, jax and equinox only: never imports aeon, sktime, pandas or torch.

Examples:
    >>> import jax
    >>> from sdekit import data as skdata
    >>> ds = skdata.drop(skdata.load("ItalyPowerDemand"), 0.5, key=jax.random.key(0))
    >>> train, val, test = skdata.split(ds, key=jax.random.key(1))
    >>> (train, val, test), stats = skdata.normalise(train, val, test)
    >>> len(train) + len(val) + len(test), train.num_channels, train.classes
    (1096, 1, ('1', '2'))
"""

from ._archive import available as available, load as load
from ._dataset import Dataset as Dataset
from ._drop import drop as drop
from ._normalise import Normalisation as Normalisation, normalise as normalise
from ._split import split as split
from ._ts import read_ts as read_ts
from ._tsv import read_tsv as read_tsv

__all__ = [
    "Dataset",
    "Normalisation",
    "available",
    "drop",
    "load",
    "normalise",
    "read_ts",
    "read_tsv",
    "split",
]


def __dir__():
    return __all__
