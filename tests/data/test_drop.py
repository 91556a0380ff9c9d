"""`drop`: seeded, exact per sample, the same time indices across channels (or independent per
channel), uniform over the observed points, padding untouched."""

import jax
import numpy as np
import pytest
from scipy import stats

from sdekit import data as skdata


def variable_length(n=60, channels=3, seed=0):
    """Variable lengths 5-40, a few points missing in the 'file' already."""
    rng = np.random.default_rng(seed)
    series = [rng.normal(size=(rng.integers(5, 41), channels)) for _ in range(n)]
    for s in series[::4]:
        s[1] = np.nan  # a time point with no channel observed
        s[2, 0] = np.nan  # a time point with one channel missing: still observed
    return skdata.Dataset.from_arrays(series, rng.integers(0, 2, n))


def expected_count(n, rate):
    return np.minimum(np.floor(rate * n + 0.5), np.maximum(n - 1, 0))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.7])
def test_exact_count_same_indices_across_channels(rate):
    ds = variable_length()
    out = skdata.drop(ds, rate, key=jax.random.key(1))
    before = np.asarray(ds.mask).any(axis=2)
    after = np.asarray(out.mask).any(axis=2)
    removed = before.sum(1) - after.sum(1)
    np.testing.assert_array_equal(removed, expected_count(before.sum(1), rate))
    assert (np.abs(removed - rate * before.sum(1)) <= 0.5).all()  # the rate within 1/(2 n) per sample
    # Same indices across channels: a removed time point is gone from every channel...
    dropped_points = before & ~after
    assert not np.asarray(out.mask)[dropped_points].any()
    # ...and the others are untouched (a channel missing in the file stays missing, no more).
    kept = ~dropped_points[..., None]
    np.testing.assert_array_equal(np.asarray(out.mask) | ~kept, np.asarray(ds.mask) | ~kept)
    np.testing.assert_array_equal(np.asarray(out.values)[np.asarray(out.mask)], np.asarray(ds.values)[np.asarray(out.mask)])
    for field in ("times", "lengths", "labels"):
        np.testing.assert_array_equal(np.asarray(getattr(out, field)), np.asarray(getattr(ds, field)))
    padding = np.arange(ds.values.shape[1])[None] >= np.asarray(ds.lengths)[:, None]
    assert not np.asarray(out.mask)[padding].any()


def test_seeded():
    ds = variable_length()
    first = skdata.drop(ds, 0.5, key=jax.random.key(7))
    again = skdata.drop(ds, 0.5, key=jax.random.key(7))
    other = skdata.drop(ds, 0.5, key=jax.random.key(8))
    np.testing.assert_array_equal(np.asarray(first.mask), np.asarray(again.mask))
    assert (np.asarray(first.mask) != np.asarray(other.mask)).any()
    jitted = jax.jit(lambda d, r, k: skdata.drop(d, r, key=k))(ds, 0.5, jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(jitted.mask), np.asarray(first.mask))


WIDE = np.zeros((2000, 10, 2))  # one shape for the statistical tests: fewer compiles


def test_removed_indices_are_uniform():
    """Each position is removed with probability `rate`, and each pair of positions equally
    often (chi-square over the 10 positions and the 45 pairs)."""
    removed = ~np.asarray(skdata.drop(skdata.Dataset.from_arrays(WIDE), 0.3, key=jax.random.key(3)).mask[..., 0])
    per_position = removed.sum(0)
    assert per_position.sum() == len(WIDE) * 3
    assert stats.chisquare(per_position).pvalue > 1e-3
    i, j = np.triu_indices(10, 1)
    per_pair = (removed[:, i] & removed[:, j]).sum(0)
    assert per_pair.sum() == len(WIDE) * 3 and stats.chisquare(per_pair).pvalue > 1e-3


def test_per_channel_is_independent_across_channels():
    ds = skdata.Dataset.from_arrays(WIDE)
    mask = np.asarray(skdata.drop(ds, 0.5, key=jax.random.key(4), per_channel=True).mask)
    np.testing.assert_array_equal(mask.sum(1), np.full((len(WIDE), 2), 5))  # exact per channel
    both = (~mask[..., 0] & ~mask[..., 1]).mean()  # 0.25 if independent, 0.5 if shared
    assert abs(both - 0.25) < 0.015  # 5 standard errors
    identical = (mask[..., 0] == mask[..., 1]).all(axis=1).sum()  # 2000 / C(10, 5) = 8 expected
    assert identical < 25
    shared = np.asarray(skdata.drop(ds, 0.5, key=jax.random.key(4)).mask)
    assert (shared[..., 0] == shared[..., 1]).all()


@pytest.mark.parametrize("rate, n, removed", [(0.7, 5, 4), (0.3, 5, 2), (0.5, 7, 4), (0.7, 15, 11), (0.1, 4, 0)])
def test_halves_round_up(rate, n, removed, dtype):
    ds = skdata.Dataset.from_arrays(np.ones((2, 16, 1)), lengths=[n, 16])  # one shape: one compile
    mask = np.asarray(skdata.drop(ds, rate, key=jax.random.key(0)).mask)
    assert n - mask[0].sum() == removed


def test_keeps_one_observation():
    ds = skdata.Dataset.from_arrays(np.ones((2, 16, 1)), lengths=[1, 2])
    out = skdata.drop(ds, 0.9, key=jax.random.key(0))
    assert np.asarray(out.mask).sum(axis=(1, 2)).tolist() == [1, 1]


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_outside_unit_interval(rate):
    ds = skdata.Dataset.from_arrays(np.ones((1, 3, 1)))
    with pytest.raises(ValueError, match=r"rate must lie in \[0, 1\)"):
        skdata.drop(ds, rate, key=jax.random.key(0))
