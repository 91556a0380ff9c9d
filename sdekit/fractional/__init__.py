"""Fractional noise: SDEs driven by Markov-approximate fractional Brownian motion
(`sk.brownian.FractionalBM`), their augmentation into ordinary SDEs on one Brownian motion, and
variational inference with a control on that Brownian motion (Daems et al., ICLR 2024)."""

from ._augment import AugmentedState as AugmentedState, FractionalSDE as FractionalSDE
from ._elbo import Elbo as Elbo, elbo as elbo

__all__ = ["AugmentedState", "Elbo", "FractionalSDE", "elbo"]


def __dir__():
    return __all__
