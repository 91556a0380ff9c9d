"""`Dataset`: construction from arrays, padding, indexing, pytree behaviour, and its checks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdekit import data as skdata


def ragged():
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(k, 2)) for k in (3, 5, 4)]
    series[2][1, 0] = np.nan
    return series


def test_padding_and_fields(dtype):
    series = ragged()
    times = [np.cumsum(np.full(len(s), 0.5)) for s in series]
    ds = skdata.Dataset.from_arrays(series, ["b", "a", "b"], times=times, name="r")
    assert ds.values.shape == (3, 5, 2) and ds.values.dtype == ds.times.dtype == dtype
    assert ds.classes == ("a", "b") and ds.labels.tolist() == [1, 0, 1]  # sorted class names
    assert ds.lengths.tolist() == [3, 5, 4] and len(ds) == 3 and ds.num_channels == 2
    np.testing.assert_array_equal(np.asarray(ds.times[0]), [0.5, 1.0, 1.5, 1.5, 1.5])
    np.testing.assert_array_equal(np.asarray(ds.mask), ~np.isnan(np.asarray(ds.values)))
    for s, v in zip(series, np.asarray(ds.values)):
        np.testing.assert_allclose(v[: len(s)], s, rtol=1e-6)
        assert np.isnan(v[len(s):]).all()


def test_padded_array_with_lengths_and_integer_labels():
    values = np.arange(24.0).reshape(2, 4, 3)
    ds = skdata.Dataset.from_arrays(values, [5, 7], lengths=[2, 4])
    assert ds.classes == ("5", "7") and ds.labels.tolist() == [0, 1]
    assert np.isnan(np.asarray(ds.values[0, 2:])).all() and ds.times[0].tolist() == [0, 1, 1, 1]
    indexed = skdata.Dataset.from_arrays(values, [1, 0], classes=("no", "yes"))
    assert indexed.labels.tolist() == [1, 0] and indexed.classes == ("no", "yes")
    regression = skdata.Dataset.from_arrays(values, np.ones((2, 3)))
    assert regression.labels.shape == (2, 3) and not regression.is_classification


@pytest.mark.parametrize("index, expected", [
    (np.array([2, 0]), [2, 0]), (slice(1, None), [1, 2]), (np.array([True, False, True]), [0, 2]),
    (1, [1]), (-1, [2]), (jnp.array([1]), [1]), (np.int64(2), [2]), (jnp.array(0), [0]),
])
def test_indexing_selects_samples(index, expected):
    ds = skdata.Dataset.from_arrays(ragged(), [0, 1, 2], classes=("x", "y", "z"))
    sub = ds[index]
    assert isinstance(sub, skdata.Dataset) and sub.labels.tolist() == expected
    assert sub.lengths.tolist() == [ds.lengths.tolist()[i] for i in expected]
    assert sub.classes == ds.classes
    np.testing.assert_array_equal(np.asarray(sub.values), np.asarray(ds.values)[expected])


def test_a_pytree_through_jit_and_vmap():
    ds = skdata.Dataset.from_arrays(ragged(), [0, 1, 0])

    @eqx.filter_jit
    def observed_per_sample(d):
        return jax.vmap(lambda one: one.mask.sum())(d)

    assert observed_per_sample(ds).tolist() == [6, 10, 7]
    assert jax.jit(lambda d, i: d[i].labels)(ds, jnp.array([2, 1])).tolist() == [0, 1]
    trimmed = ds[np.array([0, 2])].trim()
    assert trimmed.values.shape == (2, 4, 2) and trimmed.times.shape == (2, 4)


def test_all_nan_sample_is_named():
    series = ragged()
    series[1][:] = np.nan
    with pytest.raises(ValueError, match="sample 1 of demo has no observed value"):
        skdata.Dataset.from_arrays(series, name="demo")


def test_times_must_increase_within_the_length():
    values = np.ones((2, 4, 1))
    ds = skdata.Dataset.from_arrays(values, times=[[0, 1, 2, 3], [0, 1, 1, 9]], lengths=[4, 2])
    assert ds.times[1].tolist() == [0, 1, 1, 1]  # equal times past the length are padding
    with pytest.raises(ValueError, match=r"times of sample 1 do not increase: t\[2\] = 1.0 after t\[1\] = 1.0"):
        skdata.Dataset.from_arrays(values, times=[[0, 1, 2, 3], [0, 1, 1, 9]])
    with pytest.raises(ValueError, match="sample 0 has a time that is NaN"):
        skdata.Dataset.from_arrays(values, times=[[0, np.nan, 2, 3], [0, 1, 2, 3]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(values=np.ones((2, 3))), r"values must be an \(N, L, C\) array"),
    (dict(values=[np.ones((2, 1)), np.ones((2, 2))]), "sample 1 has 2 channels, sample 0 has 1"),
    (dict(values=np.ones((2, 3, 1)), labels=["a", "c"], classes=("a", "b")), r"labels \['c'\] are not among"),
    (dict(values=np.ones((2, 3, 1)), labels=[0, 2], classes=("a", "b")), r"class indices must lie in \[0, 2\)"),
    (dict(values=np.ones((2, 3, 1)), labels=[0.5, 1.5], classes=("a", "b")), "regression targets have no classes"),
    (dict(values=np.ones((2, 3, 1)), labels=[1]), "labels must have N=2 rows"),
    (dict(values=np.ones((2, 3, 1)), lengths=[0, 3]), r"lengths must be N=2 integers in \[1, 3\]"),
    (dict(values=np.ones((2, 3, 1)), times=np.ones((2, 2))), r"sample 0 has 3 time points but times of shape \(2,\)"),
])
def test_bad_arrays(kwargs, message):
    with pytest.raises(ValueError, match=message):
        skdata.Dataset.from_arrays(**kwargs)


def test_inconsistent_fields_are_refused():
    ds = skdata.Dataset.from_arrays(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="mask has shape"):
        skdata.Dataset(ds.times, ds.values, ds.mask[:, :2], ds.lengths, ds.labels, ds.official_test)
    with pytest.raises(ValueError, match="lengths must have N=2 rows"):
        skdata.Dataset(ds.times, ds.values, ds.mask, ds.lengths[:1], ds.labels, ds.official_test)
    with pytest.raises(TypeError, match="indexed along its samples only"):
        ds[0, 1]
