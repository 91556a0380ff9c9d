"""One process of test_multihost.py: `python _multihost_script.py RANK PORT OUTDIR` with
XLA_FLAGS=--xla_force_host_platform_device_count=4; two of them form one 8-device runtime."""

import sys


def main(rank: int, port: str, outdir: str):
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=rank,
                               initialization_timeout=60)
    import jax.numpy as jnp
    import numpy as np

    import sdekit as sk
    from _devices_script import GBM, N, TS

    assert jax.process_count() == 2 and len(jax.devices()) == 8 and len(jax.local_devices()) == 4
    mesh = sk.ensemble.path_mesh()  # all 8 devices of both processes
    y0 = np.linspace(1.0, 2.0, N, dtype=np.float32)  # every process holds the full host array
    fixed = sk.sample_paths(GBM, sk.solvers.euler_maruyama(), sk.PerPath(y0), TS, jax.random.key(3), N, args=0.1,
                            substeps=4, mesh=mesh)
    saved = {}
    for j, shard in enumerate(fixed.ys.addressable_shards):
        saved[f"fixed_{j}_start"] = np.asarray(shard.index[0].start or 0)
        saved[f"fixed_{j}"] = np.asarray(shard.data)
    saved["mean"] = np.asarray(sk.ensemble.mean(fixed.ys).addressable_data(0))
    saved["median"] = np.asarray(sk.ensemble.quantile(fixed.ys, jnp.array(0.5)).addressable_data(0))
    np.savez(f"{outdir}/rank{rank}.npz", **saved)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
