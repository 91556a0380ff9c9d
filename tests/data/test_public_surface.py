"""The public surface of `sdekit.data`, and what it imports: numpy, jax and equinox only (never
aeon, sktime, pandas or torch, even while loading aeon's files)."""

import subprocess
import sys

from sdekit import data as skdata


def test_dir_shows_only_public_names():
    assert sorted(dir(skdata)) == sorted(skdata.__all__)
    assert {"Dataset", "load", "available", "read_ts", "read_tsv", "drop", "split", "normalise"} <= set(dir(skdata))


def test_loading_imports_no_heavy_package():
    program = ("import sys; from sdekit import data as skdata; skdata.load('BasicMotions'); "
               "print(sorted(m for m in ('aeon', 'sktime', 'pandas', 'torch', 'sklearn', 'numba') "
               "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
