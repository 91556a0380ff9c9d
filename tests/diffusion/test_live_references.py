"""The reference comparisons again, on references generated now: when torch, diffusers and
k-diffusion import (the `reference` extra), run `benchmarks/diffusion_references/make_fixtures.py`
into a temporary folder and run the same step-by-step tests against its output."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "diffusion_references" / "make_fixtures.py"
HERE = pathlib.Path(__file__).resolve().parent
COMPARISONS = ["test_reference_basic.py", "test_dpm_solver.py", "test_unipc_deis.py", "test_grid.py",
               "test_sde_samplers_references.py"]


@pytest.mark.slow
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("torch", "diffusers", "torchsde", "k_diffusion")),
                    reason="needs the reference extra (torch, diffusers, k-diffusion)")
def test_live_references(tmp_path):
    made = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    env = {**os.environ, "SDEKIT_DIFFUSION_FIXTURES": str(tmp_path)}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-k",
         "against or reference or grid_is or log_snr_grid", *(str(HERE / f) for f in COMPARISONS)],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert " passed" in ran.stdout and "skipped" not in ran.stdout.splitlines()[-1], ran.stdout[-500:]
