"""`split`: stratified, disjoint, covering, seeded."""

import jax
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
    where = []
    for seed in range(40):
        parts = skdata.split(identified(), key=jax.random.key(seed))
        counts = [int((np.asarray(p.labels) == 4).sum()) for p in parts]
        assert counts[0] == 2 and sorted(counts[1:]) == [0, 1]
        where.append(counts[1])
    assert 8 <= sum(where) <= 32  # validation or test at random (binomial(40, 1/2): 5.5 sd)


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
