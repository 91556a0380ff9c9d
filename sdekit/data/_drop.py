"""`drop`: remove a seeded fraction of each sample's observations (the neural CDE protocol)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._dataset import Dataset


def drop(ds: Dataset, rate: float, *, key, per_channel: bool = False) -> Dataset:
    """Remove `round(rate * n)` of each sample's `n` observed time points, chosen uniformly
    without replacement from the key.

    The neural CDE protocol (Kidger et al. 2020, section 4.1): the same random time indices are
    removed across all channels of a sample. A time point counts as observed when any channel
    is; a removed one has NaN values and a False mask in every channel; times, lengths and
    labels are unchanged. With `per_channel=True`, each channel of each sample loses
    `round(rate * n_c)` of its own `n_c` observed points independently. Rounding is half up.
    At least one observation is kept (a sample or channel with one observed point keeps it), so
    no series becomes empty. The same key gives the same result; works under `jit`.

    Args:
        ds: the data.
        rate: the fraction to remove, in [0, 1) (0.3, 0.5 and 0.7 in the neural CDE paper).
        key: a JAX PRNG key.
        per_channel: drop each channel independently.

    Returns:
        The `Dataset` with the dropped observations set to NaN.

    Raises:
        ValueError: `rate` outside [0, 1).

    References:
        Kidger, Morrill, Foster & Lyons, "Neural Controlled Differential Equations for Irregular
        Time Series", NeurIPS 2020, arXiv:2005.08926.

    Examples:
        >>> import jax, numpy as np
        >>> from sdekit import data as skdata
        >>> ds = skdata.Dataset.from_arrays(np.ones((2, 10, 3)))
        >>> thin = skdata.drop(ds, 0.3, key=jax.random.key(0))
        >>> thin.mask.any(axis=2).sum(axis=1).tolist()  # 10 - round(3.0) observed times each
        [7, 7]
        >>> bool((thin.mask.all(axis=2) == thin.mask.any(axis=2)).all())  # same across channels
        True
    """
    if not isinstance(rate, jax.core.Tracer) and not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate must lie in [0, 1); got {rate}")
    values, mask = _drop(ds.values, ds.mask, jnp.asarray(rate, ds.values.dtype), key, per_channel)
    return eqx.tree_at(lambda d: (d.values, d.mask), ds, (values, mask))


@functools.partial(jax.jit, static_argnums=4)
def _drop(values: Float[Array, "N L C"], mask: Bool[Array, "N L C"], rate: Float[Array, ""], key,
          per_channel: bool) -> tuple[Float[Array, "N L C"], Bool[Array, "N L C"]]:
    """In each (sample, column: all channels together, or each channel) the `count` observed
    points with the smallest uniform scores are removed: a uniformly random subset of that size."""
    observed = mask if per_channel else mask.any(axis=2, keepdims=True)
    n: Int[Array, "N 1 K"] = observed.sum(axis=1, keepdims=True)  # K: 1 or C columns
    exact = rate * n.astype(rate.dtype)
    # Halves round up; the nudge (a few ulps of rate * n) keeps 0.7 * 5 = 3.4999999 in float32 a half.
    nudge = 4 * jnp.finfo(rate.dtype).eps * exact
    count = jnp.minimum(jnp.floor(exact + 0.5 + nudge).astype(n.dtype), jnp.maximum(n - 1, 0))
    scores = jnp.where(observed, jax.random.uniform(key, observed.shape, rate.dtype), jnp.inf)
    rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
    keep = observed & (rank >= count)
    values = jnp.where(keep, values, jnp.nan)
    return values, ~jnp.isnan(values)
