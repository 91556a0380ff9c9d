"""`split`: seeded, stratified train/validation/test parts."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._dataset import Dataset


def split(ds: Dataset, fractions: Sequence[float] = (0.7, 0.15, 0.15), *, key,
          stratify: bool = True) -> tuple[Dataset, ...]:
    """Split the samples into disjoint parts that cover them all, at random from the key.

    With `stratify` (classification only), each class is split on its own: part $p$ gets
    $\\lfloor n_c f_p \\rfloor$ or $\\lceil n_c f_p \\rceil$ of class $c$'s $n_c$ samples (within one
    sample of its fraction), the extra samples going to the parts with the largest remainders,
    parts that would otherwise get none of the class first. So every class reaches every part
    whenever its count allows that within one sample. Without `stratify` (or for regression)
    the whole set is split the same way. Each part keeps the samples' original order.

    Args:
        ds: the data (e.g. from [`load`][sdekit.data.load], TRAIN and TEST pooled).
        fractions: the parts' shares, summing to 1 (the Stable Neural SDE protocol: 0.7, 0.15,
            0.15).
        key: a JAX PRNG key.
        stratify: split each class separately.

    Returns:
        One `Dataset` per fraction.

    Raises:
        ValueError: fractions that are negative or do not sum to 1.

    Examples:
        >>> import jax
        >>> from sdekit import data as skdata
        >>> ds = skdata.load("BasicMotions")
        >>> train, val, test = skdata.split(ds, (0.7, 0.15, 0.15), key=jax.random.key(0))
        >>> len(train), len(val), len(test)
        (56, 12, 12)
    """
    fractions = np.asarray(fractions, np.float64)
    if fractions.ndim != 1 or len(fractions) == 0 or np.any(fractions < 0) or \
            abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be non-negative and sum to 1; got {fractions.tolist()} "
                         f"(sum {fractions.sum():.6g})")
    n = len(ds)
    groups = (np.asarray(ds.labels) if stratify and ds.is_classification else np.zeros(n, int))
    # One shuffle, then grouped stably. numpy seeded from the key: host work on concrete data,
    # with no jax program compiled for every dataset size.
    seed = np.asarray(jax.random.bits(key, (4,), jnp.uint32)).tolist()
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    parts = [[] for _ in fractions]
    for group in np.unique(groups):
        members = order[groups[order] == group]
        bounds = np.concatenate([[0], np.cumsum(_allocate(len(members), fractions, rng))])
        for p in range(len(fractions)):
            parts[p].extend(members[bounds[p]:bounds[p + 1]].tolist())
    return tuple(ds[np.sort(np.asarray(p, int))] for p in parts)


def _allocate(n: int, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Largest-remainder rounding of n * fractions: empty parts served first, ties at random
    (so no part is always the one that misses a small class)."""
    exact = n * fractions
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = exact - counts
    empty = (counts == 0) & (fractions > 0)
    tie = rng.permutation(len(fractions))
    priority = sorted(range(len(fractions)), key=lambda p: (not empty[p], -round(remainder[p], 9), tie[p]))
    counts[priority[: n - counts.sum()]] += 1
    return counts
