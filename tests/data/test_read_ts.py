"""`read_ts` and `read_tsv` on small hand-written files: missing values, variable lengths,
timestamps, regression targets, and the errors for malformed lines."""

import numpy as np
import pytest

from sdekit import data as skdata

NAN = np.nan


def write(tmp_path, text, name="x.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_values_and_variable_length(tmp_path):
    path = write(tmp_path, "# a comment\n@problemName toy\n@missing true\n@univariate false\n"
                           "@dimensions 2\n@equalLength false\n@classLabel true b a\n@data\n"
                           "1,?,3,4:5,6,NaN,8:a\n\n9,10:11,12:b\n13,14,15:16,17:a\n")
    ds = skdata.read_ts(path)
    assert ds.name == "toy" and ds.classes == ("b", "a") and ds.labels.tolist() == [1, 0, 1]
    assert ds.lengths.tolist() == [4, 2, 3]
    expected = np.array([[[1, 5], [NAN, 6], [3, NAN], [4, 8]],
                         [[9, 11], [10, 12], [NAN, NAN], [NAN, NAN]],
                         [[13, 16], [14, 17], [15, NAN], [NAN, NAN]]])  # sample 2's channel 1 is shorter
    np.testing.assert_array_equal(np.asarray(ds.values), expected)
    np.testing.assert_array_equal(np.asarray(ds.mask), ~np.isnan(expected))
    np.testing.assert_array_equal(np.asarray(ds.times), [[0, 1, 2, 3], [0, 1, 1, 1], [0, 1, 2, 2]])
    assert not ds.official_test.any()


def test_dtype_follows_jax(tmp_path, dtype):
    ds = skdata.read_ts(write(tmp_path, "@classLabel true 0 1\n@data\n1,2:0\n3,4:1\n"))
    assert ds.values.dtype == ds.times.dtype == dtype
    assert ds.mask.dtype == bool and ds.labels.dtype.kind == "i"


def test_numeric_timestamps_union_over_channels(tmp_path):
    ds = skdata.read_ts(write(tmp_path, "@timestamps true\n@dimensions 2\n@equalLength false\n"
                                        "@classLabel true x y\n@data\n"
                                        "(0.5,1),(1.25,2),(4,3):(1.25,10),(3,?):y\n"
                                        "(0,7):(0,8),(2.5,9):x\n"))
    np.testing.assert_array_equal(np.asarray(ds.times), [[0.5, 1.25, 3, 4], [0, 2.5, 2.5, 2.5]])
    np.testing.assert_array_equal(np.asarray(ds.values), [[[1, NAN], [2, 10], [NAN, NAN], [3, NAN]],
                                                          [[7, 8], [NAN, 9], [NAN, NAN], [NAN, NAN]]])
    assert ds.lengths.tolist() == [4, 2] and ds.labels.tolist() == [1, 0]


def test_date_timestamps_become_seconds_since_the_earliest(tmp_path):
    ds = skdata.read_ts(write(tmp_path, "@timestamps true\n@univariate true\n@classLabel true 1 2\n@data\n"
                                        "(2007-01-01 00:01:00,1.5),(2007-01-01 00:02:30,2.5):2\n"
                                        "(2007-01-01 00:00:00,3.5),(2007-01-02 00:00:00,4.5):1\n"))
    np.testing.assert_array_equal(np.asarray(ds.times), [[60, 150], [0, 86400]])
    np.testing.assert_array_equal(np.asarray(ds.values[..., 0]), [[1.5, 2.5], [3.5, 4.5]])


def test_regression_target_and_no_target(tmp_path):
    ds = skdata.read_ts(write(tmp_path, "@problemName r\n@univariate true\n@targetLabel true\n@data\n"
                                        "1,2,3:0.25\n4,5,6:-1e3\n"))
    assert not ds.is_classification and ds.classes == () and ds.num_classes == 0
    np.testing.assert_array_equal(np.asarray(ds.labels), [0.25, -1000.0])
    assert ds.labels.dtype == ds.values.dtype
    bare = skdata.read_ts(write(tmp_path, "@classLabel false\n@data\n1,2\n3,4\n", "bare.ts"))
    assert bare.labels.shape == (2, 0) and bare.values.shape == (2, 2, 1)


def test_the_aeon_timestamp_example():
    import importlib.util
    import pathlib
    spec = importlib.util.find_spec("aeon")
    if spec is None:
        pytest.skip("aeon is not installed")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "datasets/data/UnitTest/UnitTestTimeStamps_TRAIN.ts"
    ds = skdata.read_ts(path)
    lines = path.read_text().splitlines()
    cases = len([x for x in lines[lines.index("@data") + 1:] if x.strip()])
    assert ds.values.shape == (cases, 4, 1) and ds.classes == ("1", "2")
    np.testing.assert_array_equal(np.asarray(ds.times[0]), [0, 60, 120, 180])  # one-minute stamps
    assert float(ds.values[0, 1, 0]) == pytest.approx(241.75)


def test_read_tsv_with_nan_and_padding(tmp_path):
    path = write(tmp_path, "-1\t0.5\tNaN\t1.5\t2.0\n1\t1.0\t2.0\tNaN\tNaN\n-1\t?\t3.0\t\t4.0\n", "Some_TRAIN.tsv")
    ds = skdata.read_tsv(path)
    assert ds.name == "Some" and ds.classes == ("-1", "1") and ds.labels.tolist() == [0, 1, 0]
    assert ds.lengths.tolist() == [4, 2, 4]  # trailing NaNs are UCR's padding
    np.testing.assert_array_equal(np.asarray(ds.values[..., 0]),
                                  [[0.5, NAN, 1.5, 2.0], [1.0, 2.0, NAN, NAN], [NAN, 3.0, NAN, 4.0]])
    assert skdata.read_tsv(write(tmp_path, "a,1,2\n", "c.csv"), delimiter=",").values.shape == (1, 2, 1)


BAD_TS = [
    ("@classLabel true a b\n@data\n1,2:c\n", r"x\.ts, line 3: class label 'c' is not declared"),
    ("@classLabel true a b\n@data\n1,2:a\n1,x:b\n", r"line 4: 'x' is not a number"),
    ("@dimensions 2\n@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n", r"line 5: 1 channels .* where 2 are expected"),
    ("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n",
     r"line 6: channel lengths \[2\] differ from @seriesLength 3"),
    ("@timestamps maybe\n@data\n", r"line 1: @timestamps takes true or false"),
    ("@classLabel true\n@data\n", r"line 1: @classLabel true must list the class labels"),
    ("@dimensions two\n@data\n", r"line 1: @dimensions takes a positive integer"),
    ("1,2,3\n", r"line 1: expected a header line"),
    ("@classLabel false\n", r"no @data line"),
    ("@targetLabel true\n@data\n1,2:high\n", r"line 3: regression target 'high' is not a number"),
    ("@timestamps true\n@classLabel true a\n@data\n(1,2),(3:a\n", r"line 4: unbalanced parentheses"),
    ("@timestamps true\n@classLabel true a\n@data\n(1,2),x(3,4):a\n", r"line 4: channel 0 is not a list of \(time,value\)"),
    ("@classLabel true a\n@data\na\n", r"line 3: no values before the label"),
    ("@timestamps true\n@classLabel true a\n@data\n(1,2),(1,3):a\n", r"line 4: the timestamps of channel 0 do not increase"),
    ("@timestamps true\n@classLabel true a\n@data\n(1,2),(2007-01-01,3):a\n", r"line 4: timestamps mix numbers and dates"),
    ("@classLabel true a\n@data\n1,2:a\n?,NaN:a\n", r"sample 1 of .*x\.ts \(line 4\) has no observed value"),
    ("@classLabel true a\n@data\n", r"no samples after @data"),
]


@pytest.mark.parametrize("text, message", BAD_TS)
def test_malformed_ts_says_where(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        skdata.read_ts(write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("1\t1.0\t2.0\n2\t1.0\tabc\n", r"y\.tsv, line 2: 'abc' is not a number"),
    ("1\t1.0\n2\tNaN\tNaN\n", r"sample 1 of .*y\.tsv \(line 2\) has no observed value"),
    ("1,2,3\n", r"line 1: no '\\t'-separated values"),
])
def test_malformed_tsv_says_where(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        skdata.read_tsv(write(tmp_path, text, "y.tsv"))
