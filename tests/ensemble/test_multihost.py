"""Two processes on 127.0.0.1 with 4 forced CPU devices each (one JAX runtime of 8 devices after
`jax.distributed.initialize`) compute their shards of an ensemble; together they are, bitwise,
the single-process result, and the statistics reduced across both processes agree. (Adaptive
steps over a mesh, the same shard_map program: tests/ensemble/test_devices.py.)"""

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import sdekit as sk

HERE = pathlib.Path(__file__).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _combine(files, name, n):
    out = np.full((n, 5), np.nan, np.float32)
    for f in files:
        j = 0
        while f"{name}_{j}" in f:
            start = int(f[f"{name}_{j}_start"])
            out[start:start + len(f[f"{name}_{j}"])] = f[f"{name}_{j}"]
            j += 1
    return out


def _with_devices(n):
    """The run's XLA flags (code generation included: results are compared bitwise with this
    process's) plus `n` forced CPU devices."""
    return (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    sys.path.insert(0, str(HERE))
    from _devices_script import GBM, N, TS

    env = {**os.environ, "XLA_FLAGS": _with_devices(4), "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(HERE / "_multihost_script.py"), str(rank), port, str(tmp_path)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    files = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    fixed = sk.sample_paths(GBM, sk.solvers.euler_maruyama(), sk.PerPath(np.linspace(1.0, 2.0, N, dtype=np.float32)), TS,
                            jax.random.key(3), N, args=0.1, substeps=4)
    assert (_combine(files, "fixed", N) == np.asarray(fixed.ys)).all()
    for f in files:  # the replicated statistics, on both processes
        np.testing.assert_allclose(f["mean"], np.asarray(fixed.ys).mean(0), rtol=1e-6)
        np.testing.assert_array_equal(f["median"], np.quantile(np.asarray(fixed.ys), 0.5, axis=0).astype(np.float32))
