"""Run by test_devices.py in a fresh process with 8 forced CPU devices; prints one JSON line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import sdekit as sk

COLLECTIVES = ("all-reduce(", "all-gather(", "collective-permute(", "all-to-all(", "reduce-scatter(")
TS = jnp.linspace(0.0, 1.0, 5)
N = 64
GBM = sk.SDE(lambda t, y, a: a * y, lambda t, y, a: 0.3 * y, noise="diagonal")
OU = sk.SDE(lambda t, y, a: -a * y, lambda t, y, a: 0.5 * jnp.ones_like(y), noise="additive", calculus="stratonovich")
PID = sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3)
Y0 = sk.PerPath(jnp.linspace(1.0, 2.0, N))
RATES = jnp.linspace(0.5, 8.0, N)


def fixed(**kw):
    return sk.sample_paths(GBM, sk.solvers.euler_maruyama(), Y0, TS, jax.random.key(3), N, args=0.1, substeps=4, **kw)


def adaptive(rates=RATES, **kw):
    return sk.sample_paths(OU, sk.solvers.shark(), jnp.ones(()), TS, jax.random.key(1), N, args=sk.PerPath(rates),
                           controller=PID, dt0=0.05, **kw)


def collectives(text):
    return sum(text.count(c) for c in COLLECTIVES)


def main():
    out = {"devices": len(jax.devices())}
    ref = np.asarray(fixed().ys)
    for d in (1, 2, 4, 8):  # jax.make_mesh's default axis types (Explicit in jax 0.10)
        sol = fixed(mesh=jax.make_mesh((d,), ("paths",), devices=jax.devices()[:d]))
        out[f"fixed_{d}_equal"] = bool((np.asarray(sol.ys) == ref).all())
        out[f"fixed_{d}_spec"] = str(sol.ys.sharding.spec)
    out["fixed_2x4_equal"] = bool((np.asarray(fixed(mesh=jax.make_mesh((2, 4), ("a", "b"))).ys) == ref).all())
    mesh = sk.ensemble.path_mesh()
    ref_a = adaptive()
    # One compile gives both the program's text and its results (in chunks of 16 of a device's 8
    # paths: one padded chunk).
    compiled = jax.jit(lambda r: adaptive(r, mesh=mesh, batch_size=16)).lower(RATES).compile()
    text, sol_a = compiled.as_text(), compiled(RATES)
    out["adaptive_equal"] = bool((np.asarray(sol_a.ys) == np.asarray(ref_a.ys)).all())
    out["adaptive_steps_equal"] = bool((np.asarray(sol_a.stats["num_steps"]) == np.asarray(ref_a.stats["num_steps"])).all())
    out["adaptive_steps_spread"] = int(np.ptp(np.asarray(ref_a.stats["num_steps"])))
    out["adaptive_spec"] = str(sol_a.ys.sharding.spec)
    out["adaptive_collectives"] = collectives(text)
    out["adaptive_has_while"] = text.count(" while(")
    # Control: a vmapped while loop with per-lane trip counts over inputs sharded with jit gets a
    # global stopping test (an all-reduce), the collective shard_map avoids.
    sharded = jax.device_put(jnp.arange(N, dtype=jnp.float32), NamedSharding(mesh, PartitionSpec("paths")))
    control = jax.jit(jax.vmap(lambda x: jax.lax.while_loop(lambda c: c < x, lambda c: c + 1.0, 0.0)))
    out["control_all_reduce"] = control.lower(sharded).compile().as_text().count("all-reduce(")
    # Statistics of the sharded paths, without gathering them.
    ys = sol_a.ys
    q = jnp.array([0.1, 0.5, 0.9])
    host = np.asarray(ys)
    out["mean_ok"] = bool(np.allclose(sk.ensemble.mean(ys), host.mean(0), rtol=1e-5, atol=1e-6))
    out["variance_ok"] = bool(np.allclose(sk.ensemble.variance(ys), host.var(0), rtol=1e-4, atol=1e-6))
    out["quantile_ok"] = bool(np.allclose(sk.ensemble.quantile(ys, q), np.quantile(host, np.asarray(q), axis=0),
                                          rtol=1e-6, atol=1e-6))
    from sdekit.ensemble import _reduce

    out["quantile_gathers"] = sum(t.count("all-gather(") for t in [jax.jit(lambda y: _reduce.quantile(y, q)).lower(ys)
                                                                   .compile().as_text()])
    try:
        sk.sample_paths(GBM, sk.solvers.euler_maruyama(), jnp.ones(()), TS, jax.random.key(0), 12, args=0.1, mesh=mesh)
        out["indivisible_error"] = None
    except ValueError as e:
        out["indivisible_error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
