"""Ensembles over 1, 2, 4 and 8 (forced CPU) devices in a fresh process: bitwise the same paths,
no collective in the sharded adaptive program, statistics of sharded paths without gathering.
One test, one subprocess (`_devices_script.py` prints its findings as JSON)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("_devices_script.py")


def _with_devices(n):
    """The run's XLA flags (code generation included: results are compared bitwise with this
    process's) plus `n` forced CPU devices."""
    return (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()


@pytest.mark.slow
def test_ensembles_over_8_devices():
    env = {**os.environ, "XLA_FLAGS": _with_devices(8), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices"] == 8
    # The same paths, bitwise, on 1, 2, 4 and 8 devices (jax.make_mesh's default Explicit axes)
    # and on a 2 x 4 mesh; the output stays sharded along the paths.
    for d in (1, 2, 4, 8):
        assert report[f"fixed_{d}_equal"], d
    assert report["fixed_8_spec"] == "P('paths',)" and report["fixed_2x4_equal"]
    # Adaptive PID steps: sharded (in chunks) = unsharded, step counts included; the compiled
    # program has while loops and no collective at all, while a jit(vmap(while_loop)) over
    # sharded inputs (the control) has an all-reduce: the check can see one.
    assert report["adaptive_equal"] and report["adaptive_steps_equal"] and report["adaptive_steps_spread"] > 3
    assert report["adaptive_spec"] == "P('paths',)"
    assert report["adaptive_has_while"] > 0 and report["adaptive_collectives"] == 0
    assert report["control_all_reduce"] > 0
    # Statistics of the sharded paths against NumPy; quantiles without an all-gather.
    assert report["mean_ok"] and report["variance_ok"] and report["quantile_ok"]
    assert report["quantile_gathers"] == 0
    assert "must be a multiple of the mesh's 8 devices" in report["indivisible_error"]
