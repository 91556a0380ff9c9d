"""Loader for the diffusion-sampler reference fixtures (tests/diffusion/fixtures/*.npz).

The files are data only (no pickles), written by
benchmarks/diffusion_references/make_fixtures.py from k-diffusion and diffusers;
benchmarks/diffusion_references/README.md gives every file's schema.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

# SDEKIT_DIFFUSION_FIXTURES points the same tests at freshly generated references (the live test).
FIXTURES = pathlib.Path(os.environ.get("SDEKIT_DIFFUSION_FIXTURES") or pathlib.Path(__file__).resolve().parent / "fixtures")
_JSON_KEYS = ("config", "versions")


def names() -> list[str]:
    """The fixture names, e.g. ``["edm_dpm_fast", ..., "vp_unipc_bh2_3"]``."""
    return sorted(p.stem for p in FIXTURES.glob("*.npz"))


def load(name: str) -> dict:
    """One fixture as a dict: arrays stay numpy arrays, 0-d entries become Python
    scalars (str, bool, int, float), and the JSON strings ``config``/``versions``
    become dicts."""
    path = FIXTURES / (name if name.endswith(".npz") else f"{name}.npz")
    out = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            value = data[key]
            out[key] = value.item() if value.ndim == 0 else value
    for key in _JSON_KEYS:
        if key in out:
            out[key] = json.loads(out[key])
    return out
