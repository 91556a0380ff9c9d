"""`read_ts`: the sktime/aeon `.ts` time-series format.

A header of `@tag value` lines, then `@data` and one sample per line: channels separated by `:`,
values by `,`, the class label or regression target last. `?` or `NaN` marks a missing value.
With `@timestamps true` each value is a `(time, value)` tuple; a time is a number or an ISO date
(`2007-01-01 00:01:00`). Lines starting with `#` or `%` are comments.
"""

import os
import re
from typing import NamedTuple

import numpy as np

from ._dataset import Dataset, _check_sample

_TUPLE = re.compile(r"\(([^(),]*),([^(),]*)\)")
_BOOL = {"true": True, "false": False}


class Parsed(NamedTuple):
    """A file's samples before padding: what `load` pools across TRAIN and TEST files."""

    series: list          # (L_i, C) float64 arrays
    times: list | None    # (L_i,) float64 arrays, or None (0, 1, ...)
    labels: list | None   # class names (str) or float targets; None without targets
    classes: tuple        # declared class names, () for regression or no targets
    name: str
    dates: bool           # times are seconds since 1970 (ISO dates in the file)


class _Header:
    def __init__(self):
        self.name, self.timestamps, self.univariate, self.dimensions = "", False, None, None
        self.equal_length, self.series_length = None, None
        self.classes, self.class_label, self.target = (), False, False


def read_ts(path: str | os.PathLike) -> Dataset:
    """Read a `.ts` file (the sktime/aeon format) into a [`Dataset`][sdekit.data.Dataset].

    Understands `@problemName`, `@timestamps`, `@missing`, `@univariate`, `@dimensions`,
    `@equalLength`, `@seriesLength`, `@classLabel true <labels>` / `false`, `@targetLabel`
    (regression) and `@data`; other tags are ignored. Variable lengths are padded (see
    `Dataset`); within a sample, a channel with fewer values than the others is NaN after its
    end. Times are the file's timestamps (the union over a sample's channels; ISO dates become
    seconds since the file's earliest one), else $0, 1, \\dots$.

    Args:
        path: the `.ts` file.

    Returns:
        The samples, with class labels (classes in the header's order), regression targets, or
        no targets (labels of shape (N, 0)).

    Raises:
        ValueError: a malformed header or data line (the message gives the line number), a
            label not declared in `@classLabel`, a sample with no observed value, timestamps that
            do not increase.

    Examples:
        >>> import pathlib, tempfile
        >>> from sdekit import data as skdata
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.ts"
        >>> _ = path.write_text("@problemName tiny\\n@univariate false\\n@dimensions 2\\n"
        ...     "@equalLength false\\n@classLabel true up down\\n@data\\n"
        ...     "1,2,3:4,?,6:up\\n7,8:9,10:down\\n")
        >>> ds = skdata.read_ts(path)
        >>> ds.values.shape, ds.lengths.tolist(), ds.classes, ds.labels.tolist()
        ((2, 3, 2), [3, 2], ('up', 'down'), [0, 1])
        >>> bool(ds.mask[0, 1, 1])  # the '?'
        False
    """
    return build([parse_ts(path)])


def build(parts: list[Parsed], official_test=None, name: str | None = None) -> Dataset:
    """One `Dataset` from parsed files (pooled in order); dates relative to the earliest time."""
    first = parts[0]
    series = [s for p in parts for s in p.series]
    times = None
    if any(p.times is not None for p in parts):
        times = [t for p in parts for t in (p.times or [np.arange(len(s), dtype=float) for s in p.series])]
        if first.dates and times:
            origin = min(t[0] for t in times)
            times = [t - origin for t in times]
    classes, labels = first.classes, None
    if first.labels is not None:
        labels = [y for p in parts for y in p.labels]
        for p in parts[1:]:
            classes = classes + tuple(c for c in p.classes if c not in classes)
        if not classes:
            labels = np.asarray(labels, np.float64)
    return Dataset.from_arrays(series, labels, times=times, classes=classes,
                               name=first.name if name is None else name, official_test=official_test)


def parse_ts(path) -> Parsed:
    """The samples of a `.ts` file, unpadded."""
    header, data_started = _Header(), False
    series, times, labels = [], [], []
    kinds = set()  # "number" / "date": the timestamps' kind, one per file
    with open(path, encoding="utf-8") as file:
        for lineno, raw in enumerate(file, 1):
            line = raw.strip()
            if not line or line[0] in "#%":
                continue
            where = f"{os.fspath(path)}, line {lineno}"
            if not data_started:
                data_started = _header_line(header, line, where)
                continue
            fields = _split_fields(line, where) if header.timestamps else line.split(":")
            labelled = header.class_label or header.target
            channels = fields[:-1] if labelled else fields
            expected = header.dimensions or (1 if header.univariate else None)
            if expected is None:
                header.dimensions = expected = len(channels)
            if not expected:
                raise ValueError(f"{where}: no values before the label")
            if len(channels) != expected:
                raise ValueError(f"{where}: {len(channels)} channels (':'-separated) where "
                                 f"{expected} are expected{' plus a label' if labelled else ''}")
            if header.timestamps:
                sample, stamps = _timed_sample(channels, where, kinds)
                times.append(stamps)
            else:
                sample = _plain_sample(channels, where, header)
            if labelled:
                labels.append(_label(fields[-1].strip(), header, where))
            _check_sample(len(series), sample, times[-1] if header.timestamps else
                          np.arange(len(sample), dtype=float), f"{os.fspath(path)} (line {lineno})")
            series.append(sample)
    if not data_started:
        raise ValueError(f"{os.fspath(path)}: no @data line")
    if not series:
        raise ValueError(f"{os.fspath(path)}: no samples after @data")
    return Parsed(series, times if header.timestamps else None,
                  labels if (header.class_label or header.target) else None,
                  header.classes, header.name or os.path.basename(os.fspath(path)).split(".")[0],
                  kinds == {"date"})


def _header_line(header: _Header, line: str, where: str) -> bool:
    """Read one header line into `header`; True at `@data`."""
    if line[0] != "@":
        raise ValueError(f"{where}: expected a header line (@tag value) or @data before the "
                         f"data; got {line[:40]!r}")
    tag, *words = line.split()
    tag = tag.lower()

    def flag():
        if not words or words[0].lower() not in _BOOL:
            raise ValueError(f"{where}: {tag} takes true or false; got {' '.join(words)!r}")
        return _BOOL[words[0].lower()]

    def number():
        if len(words) != 1 or not words[0].isdigit() or int(words[0]) < 1:
            raise ValueError(f"{where}: {tag} takes a positive integer; got {' '.join(words)!r}")
        return int(words[0])

    if tag == "@data":
        if header.univariate and header.dimensions not in (None, 1):
            raise ValueError(f"{where}: @univariate true with @dimensions {header.dimensions}")
        return True
    if tag == "@problemname":
        header.name = " ".join(words)
    elif tag == "@timestamps":
        header.timestamps = flag()
    elif tag == "@univariate":
        header.univariate = flag()
    elif tag == "@dimensions":
        header.dimensions = number()
    elif tag == "@equallength":
        header.equal_length = flag()
    elif tag == "@serieslength":
        header.series_length = number()
    elif tag == "@classlabel":
        header.class_label = flag()
        header.classes = tuple(words[1:]) if header.class_label else ()
        if header.class_label and not header.classes:
            raise ValueError(f"{where}: @classLabel true must list the class labels")
    elif tag == "@targetlabel":
        header.target = flag()
    return False


def _split_fields(line: str, where: str) -> list[str]:
    """Split on ':' outside parentheses (timestamps like 00:01:00 contain ':')."""
    fields, depth, start = [], 0, 0
    for k, char in enumerate(line):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == ":" and depth == 0:
            fields.append(line[start:k])
            start = k + 1
        if depth not in (0, 1):
            break
    if depth:
        raise ValueError(f"{where}: unbalanced parentheses in a (time,value) list")
    fields.append(line[start:])
    return fields


def _numbers(text: str, where: str) -> np.ndarray:
    if not text.strip():
        return np.zeros(0)
    try:
        return np.array(text.replace("?", "nan").split(","), np.float64)
    except ValueError:
        tokens = [t.strip() for t in text.split(",")]
        bad = next(t for t in tokens if t != "?" and not _is_float(t))
        raise ValueError(f"{where}: {bad!r} is not a number (missing values are '?' or NaN)") from None


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _plain_sample(channels, where, header) -> np.ndarray:
    columns = [_numbers(c, where) for c in channels]
    sizes = [len(c) for c in columns]
    if header.equal_length and header.series_length and any(k != header.series_length for k in sizes):
        raise ValueError(f"{where}: channel lengths {sizes} differ from @seriesLength "
                         f"{header.series_length}")
    sample = np.full((max(sizes), len(columns)), np.nan)
    for c, column in enumerate(columns):
        sample[: len(column), c] = column
    return sample


def _timed_sample(channels, where, kinds) -> tuple[np.ndarray, np.ndarray]:
    """A sample on the union of its channels' timestamps; NaN where a channel has no value."""
    stamps, columns = [], []
    for c, text in enumerate(channels):
        if _TUPLE.sub("", text).replace(",", "").strip():
            raise ValueError(f"{where}: channel {c} is not a list of (time,value) tuples: "
                             f"{text[:60]!r}")
        pairs = _TUPLE.findall(text)
        t = np.array([_time(a.strip(), where, kinds) for a, _ in pairs], np.float64)
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{where}: the timestamps of channel {c} do not increase")
        stamps.append(t)
        columns.append(_numbers(",".join(v for _, v in pairs), where))
    union = np.unique(np.concatenate(stamps))
    sample = np.full((len(union), len(channels)), np.nan)
    for c, (t, column) in enumerate(zip(stamps, columns)):
        sample[np.searchsorted(union, t), c] = column
    return sample, union


def _time(token: str, where: str, kinds: set) -> float:
    try:
        value, kind = float(token), "number"
    except ValueError:
        try:
            value = (np.datetime64(token, "ns") - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
        except ValueError:
            raise ValueError(f"{where}: timestamp {token!r} is neither a number nor a date") from None
        kind = "date"
    kinds.add(kind)
    if len(kinds) > 1:
        raise ValueError(f"{where}: timestamps mix numbers and dates")
    return value


def _label(text: str, header: _Header, where: str):
    if header.class_label:
        if text not in header.classes:
            raise ValueError(f"{where}: class label {text!r} is not declared in @classLabel "
                             f"{' '.join(header.classes)}")
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: regression target {text!r} is not a number") from None
