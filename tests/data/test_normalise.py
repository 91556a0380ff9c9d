"""`normalise`: statistics from the training part's observed values only, applied to every part."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdekit import data as skdata


def test_normalise_uses_training_statistics_only(dtype):
    rng = np.random.default_rng(1)
    values = rng.normal(loc=[3.0, -2.0], scale=[2.0, 0.5], size=(50, 8, 2))
    ds = skdata.drop(skdata.Dataset.from_arrays(values, rng.integers(0, 2, 50)), 0.5, key=jax.random.key(0))
    train, test = skdata.split(ds, (0.6, 0.4), key=jax.random.key(1))
    (train_n, test_n), stats = skdata.normalise(train, test)
    observed = np.asarray(train.values, np.float64)
    np.testing.assert_allclose(np.asarray(stats.mean), np.nanmean(observed, axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(stats.std), np.nanstd(observed, axis=(0, 1)), rtol=1e-5)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.nanmean(np.asarray(train_n.values), axis=(0, 1)), 0.0, atol=tolerance)
    np.testing.assert_allclose(np.nanstd(np.asarray(train_n.values), axis=(0, 1)), 1.0, atol=tolerance)
    assert train_n.values.dtype == dtype
    np.testing.assert_array_equal(np.asarray(train_n.mask), np.asarray(train.mask))  # NaNs stay
    # The test part changes nothing in the statistics, and is standardised with them.
    wild = test.__class__(test.times, test.values * 1000 + 7, test.mask, test.lengths, test.labels, test.official_test)
    (_, wild_n), wild_stats = skdata.normalise(train, wild)
    np.testing.assert_array_equal(np.asarray(wild_stats.mean), np.asarray(stats.mean))
    np.testing.assert_array_equal(np.asarray(wild_stats.std), np.asarray(stats.std))
    np.testing.assert_allclose(np.asarray(wild_n.values),
                               (np.asarray(wild.values) - np.asarray(stats.mean)) / np.asarray(stats.std), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(stats.invert(test_n.values)), np.asarray(test.values), rtol=1e-4, atol=1e-5)


def test_normalise_constant_and_unobserved_channels():
    constant = skdata.Dataset.from_arrays(np.stack([np.full((3, 4), 2.0), np.arange(12.0).reshape(3, 4)], -1))
    (out,), stats = skdata.normalise(constant)
    assert float(stats.std[0]) == 1.0 and float(jnp.abs(out.values[..., 0]).max()) == 0.0
    values = np.ones((2, 3, 2))
    values[..., 1] = np.nan
    with pytest.raises(ValueError, match=r"channels \[1\] have no observed value in the training data"):
        skdata.normalise(skdata.Dataset.from_arrays(values))
    with pytest.raises(ValueError, match="statistics for 2 channels, data with 1"):
        stats.apply(skdata.Dataset.from_arrays(np.ones((1, 2, 1))))
