"""`split` (stratified, disjoint, covering, seeded) and `normalise` (training statistics only)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdekit import data as skdata

CLASS_SIZES = (100, 60, 30, 10, 3)


def identified():
    """Unbalanced classes; sample i's values are all i, so the parts can be told apart."""
    labels = np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES)
    labels = np.random.default_rng(0).permutation(labels)
    values = np.broadcast_to(np.arange(len(labels), dtype=float)[:, None, None], (len(labels), 4, 2))
    return skdata.Dataset.from_arrays(values, labels, classes=tuple("abcde"))


def ids(ds):
    return np.asarray(ds.values[:, 0, 0]).astype(int)


@pytest.mark.parametrize("fractions", [(0.7, 0.15, 0.15), (0.5, 0.5), (0.6, 0.2, 0.1, 0.1)])
def test_stratified_disjoint_covering(fractions):
    ds = identified()
    parts = skdata.split(ds, fractions, key=jax.random.key(0))
    assert len(parts) == len(fractions)
    every = np.concatenate([ids(p) for p in parts])
    assert sorted(every.tolist()) == list(range(len(ds)))  # disjoint and covering
    for part, fraction in zip(parts, fractions):
        assert (np.diff(ids(part)) > 0).all()  # original order kept
        counts = np.bincount(np.asarray(part.labels), minlength=len(CLASS_SIZES))
        assert (np.abs(counts - fraction * np.array(CLASS_SIZES)) < 1).all(), counts
        assert part.classes == ds.classes
        np.testing.assert_array_equal(np.asarray(part.labels), np.asarray(ds.labels)[ids(part)])
    # Every class in every part whenever n_c * fraction >= 1 for all parts.
    for c, size in enumerate(CLASS_SIZES):
        if size * min(fractions) >= 1:
            assert all(c in np.asarray(p.labels) for p in parts)


def test_small_class_reaches_as_many_parts_as_it_can():
    """Class 'e' has 3 samples, exactly 2.1 + 0.45 + 0.45: within one sample of each share, the
    third sample goes to validation or test (never a third one to training)."""
    parts = skdata.split(identified(), key=jax.random.key(2))
    counts = [int((np.asarray(p.labels) == 4).sum()) for p in parts]
    assert counts[0] == 2 and sorted(counts[1:]) == [0, 1]


def test_seeded_and_random():
    ds = identified()
    a = skdata.split(ds, key=jax.random.key(5))
    b = skdata.split(ds, key=jax.random.key(5))
    c = skdata.split(ds, key=jax.random.key(6))
    assert all((ids(x) == ids(y)).all() for x, y in zip(a, b))
    assert set(ids(a[1])) != set(ids(c[1]))
    # Membership is random: over 200 keys, each sample is in the first part about 70% of the time.
    hits = np.zeros(len(ds))
    for seed in range(200):
        hits[ids(skdata.split(ds, key=jax.random.key(seed))[0])] += 1
    big = np.asarray(ds.labels) == 0
    assert abs(hits[big].mean() / 200 - 0.7) < 0.01 and hits[big].min() > 100 and hits[big].max() < 180


def test_unstratified_and_regression():
    ds = identified()
    parts = skdata.split(ds, (0.7, 0.3), key=jax.random.key(0), stratify=False)
    first = round(0.7 * len(ds))
    assert [len(p) for p in parts] == [first, len(ds) - first]
    reg = skdata.Dataset.from_arrays(np.ones((10, 3, 1)), np.linspace(0, 1, 10))
    assert [len(p) for p in skdata.split(reg, (0.5, 0.5), key=jax.random.key(0))] == [5, 5]


@pytest.mark.parametrize("fractions, message", [
    ((0.7, 0.2), r"sum to 1; got \[0.7, 0.2\] \(sum 0.9\)"),
    ((1.2, -0.2), "non-negative"),
    ((), "sum to 1"),
])
def test_bad_fractions(fractions, message):
    with pytest.raises(ValueError, match=message):
        skdata.split(identified(), fractions, key=jax.random.key(0))


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
