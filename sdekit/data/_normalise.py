"""`normalise`: per-channel standardisation with statistics from the training part only."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._dataset import Dataset


class Normalisation(NamedTuple):
    """Per-channel statistics: `(values - mean) / std` standardises a channel.

    Attributes:
        mean: the observed values' mean per channel, shape (C,).
        std: their standard deviation per channel (population, ddof 0; 1 for a constant
            channel), shape (C,).
    """

    mean: Float[Array, " C"]
    std: Float[Array, " C"]

    def apply(self, ds: Dataset) -> Dataset:
        """`ds` with its values standardised by these statistics (NaNs stay NaN)."""
        if ds.num_channels != self.mean.shape[0]:
            raise ValueError(f"statistics for {self.mean.shape[0]} channels, data with "
                             f"{ds.num_channels}")
        return eqx.tree_at(lambda d: d.values, ds, _standardise(ds.values, self.mean, self.std))

    def invert(self, values: Float[Array, "... C"]) -> Float[Array, "... C"]:
        """Standardised values back in the data's units."""
        mean, std = (_lift(x, values) for x in self)
        return values * std + mean


@jax.jit
def _standardise(values, mean, std):
    return (values - _lift(mean, values)) / _lift(std, values)


@jax.jit
def _statistics(values: Float[Array, "N L C"]) -> tuple[Float[Array, " C"], Float[Array, " C"]]:
    mean = jnp.nanmean(values, axis=(0, 1), keepdims=True)
    std = jnp.sqrt(jnp.nanmean((values - mean) ** 2, axis=(0, 1)))
    return mean[0, 0], jnp.where(std > 0, std, jnp.ones_like(std))


def _lift(x: Float[Array, " C"], like: Float[Array, "... C"]) -> Float[Array, "... C"]:
    """Per-channel statistics shaped to broadcast over `like` (rank promotion is explicit)."""
    return x.astype(like.dtype).reshape((1,) * (like.ndim - 1) + x.shape)


def normalise(train: Dataset, *others: Dataset) -> tuple[tuple[Dataset, ...], Normalisation]:
    """Standardise every channel with the mean and standard deviation of the TRAIN part's
    observed values (NaNs and padding ignored), applied to `train` and to every other part, so
    nothing about validation or test data leaks into training.

    Args:
        train: the part the statistics come from.
        *others: further parts (validation, test) to standardise the same way.

    Returns:
        `((train, *others), stats)`: the standardised datasets and the
        [`Normalisation`][sdekit.data.Normalisation] (`stats.invert` maps back).

    Raises:
        ValueError: a channel with no observed value in `train`, or parts with different
            channel counts.

    Examples:
        >>> import jax
        >>> from sdekit import data as skdata
        >>> train, test = skdata.split(skdata.load("BasicMotions"), (0.5, 0.5), key=jax.random.key(0))
        >>> (train, test), stats = skdata.normalise(train, test)
        >>> import jax.numpy as jnp
        >>> abs(float(jnp.nanmean(train.values[..., 0]))) < 1e-5, stats.mean.shape
        (True, (6,))
    """
    if not isinstance(train.mask, jax.core.Tracer):
        count = np.asarray(train.mask).sum(axis=(0, 1))
        if np.any(count == 0):
            raise ValueError(f"channels {np.flatnonzero(count == 0).tolist()} have no observed "
                             f"value in the training data")
    stats = Normalisation(*_statistics(train.values))
    return tuple(stats.apply(ds) for ds in (train, *others)), stats
