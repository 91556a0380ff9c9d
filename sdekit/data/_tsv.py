"""`read_tsv`: the UCR archive's `.tsv` files (one sample per line: the class label, then the
values, tab separated)."""

import os

import numpy as np

from ._dataset import Dataset, _check_sample, _natural
from ._ts import Parsed, build


def read_tsv(path: str | os.PathLike, *, delimiter: str = "\t") -> Dataset:
    """Read a univariate UCR `.tsv` file into a [`Dataset`][sdekit.data.Dataset].

    Column 0 is the class label; the rest are the values at times $0, 1, \\dots$. `NaN` (or
    `?`, or an empty field) marks a missing value. The UCR archive pads its variable-length sets
    with trailing NaNs, so a sample's length ends at its last observed value; NaNs before it are
    missing values. Classes are the distinct labels, numeric ones sorted by value.

    Args:
        path: the `.tsv` file.
        delimiter: the field separator (a tab in the UCR archive).

    Returns:
        A one-channel classification `Dataset`.

    Raises:
        ValueError: a line with a value that is not a number, or with no observed value (the
            message gives the line number).

    Examples:
        >>> import pathlib, tempfile
        >>> from sdekit import data as skdata
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.tsv"
        >>> _ = path.write_text("2\\t0.5\\tNaN\\t1.5\\n10\\t1.0\\t2.0\\tNaN\\n")
        >>> ds = skdata.read_tsv(path)
        >>> ds.classes, ds.labels.tolist(), ds.lengths.tolist()
        (('2', '10'), [0, 1], [3, 2])
    """
    return build([parse_tsv(path, delimiter)])


def parse_tsv(path, delimiter: str = "\t") -> Parsed:
    """The samples of a `.tsv` file, unpadded."""
    series, labels = [], []
    with open(path, encoding="utf-8") as file:
        for lineno, raw in enumerate(file, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{os.fspath(path)}, line {lineno}"
            label, *fields = line.split(delimiter)
            if not fields:
                raise ValueError(f"{where}: no {delimiter!r}-separated values after the label")
            tokens = ["nan" if f.strip() in ("", "?") else f for f in fields]
            try:
                values = np.array(tokens, np.float64)
            except ValueError:
                bad = next(f for f in tokens if not _is_number(f))
                raise ValueError(f"{where}: {bad.strip()[:40]!r} is not a number") from None
            observed = np.flatnonzero(~np.isnan(values))
            sample = values[: observed[-1] + 1 if len(observed) else 0, None]
            _check_sample(len(series), sample, np.arange(len(sample), dtype=float),
                          f"{os.fspath(path)} (line {lineno})")
            series.append(sample)
            labels.append(label.strip())
    if not series:
        raise ValueError(f"{os.fspath(path)}: no samples")
    name = os.path.basename(os.fspath(path)).rsplit(".", 1)[0]
    for suffix in ("_TRAIN", "_TEST"):
        name = name.removesuffix(suffix)
    classes = tuple(sorted(set(labels), key=_natural))
    return Parsed(series, None, labels, classes, name, False)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False

