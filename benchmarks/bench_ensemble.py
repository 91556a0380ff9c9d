"""Ensembles at scale (issue #23), one run, side by side.

1. Memory and speed: 10^6 paths x 100 Euler-Maruyama steps of GBM, saving 11 times (float32):
   sdekit `sample_paths` without and with `batch_size`, a hand-written chunked `lax.scan` with
   pre-drawn normals at the same chunk size (the limit), the same scan unchunked, and diffrax's
   `vmap` of `diffeqsolve` (VirtualBrownianTree per path). Every variant runs in a fresh process;
   peak memory is that process's `ru_maxrss` (including ~0.3 GB of JAX itself, given by the
   `baseline` row, which compiles and runs a tiny program). Time: the second call (compiled).
2. Adaptive ShARK + PID over 8 forced CPU devices (`--xla_force_host_platform_device_count=8`)
   on the same cores: sdekit sharded (`mesh=`, shard_map per device) against unsharded (one
   device), and `jit(vmap(...))` over inputs sharded on the same mesh for sdekit's `solve` and
   diffrax's `diffeqsolve`, with the count of `all-reduce`s in each compiled program.

Usage: python benchmarks/bench_ensemble.py [--paths N] [--out benchmarks/results/ensemble.md]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

PATHS, STEPS, SAVES, CHUNK = 1_000_000, 100, 11, 65_536
MU, SIGMA = 0.05, 0.2
ADAPTIVE_PATHS, DEVICES = 2048, 8
NOTES = """
Notes:

- The hand-written scan draws i.i.d. normals per chunk (`jax.random.normal`); sdekit draws each
  path's increments from its own virtual Brownian tree (path-consistent noise that any other
  solve of the same key reproduces), which is most of the remaining time. `throw=True` (the
  default) adds the per-path error check.
- Without `batch_size`, every intermediate spans all 10^6 paths: both sdekit and the hand scan
  then use several GB and run slower than in chunks (memory traffic); chunks of 2^16 paths are
  the better default on CPU for large ensembles.
- diffrax's `vmap(diffeqsolve)` keeps memory low (its tree is queried step by step) but runs
  about two orders of magnitude longer on these cores (74x and 116x in two runs).
- Adaptive: the unsharded run steps its 2048 paths in lock-step on one device until the slowest
  is done; each of the 8 devices stops when its own 256 paths are done and the 8 run in
  parallel on the 2 cores, so sharding is faster here, not just "no slower". `jit(vmap(...))`
  over sharded inputs compiles the loop's stopping test into all-reduces (every iteration waits
  for the slowest path anywhere; diffrax #407).
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _time(fn):
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return first, time.perf_counter() - start, out


def _compiled_run(fn, repeats):
    """Compile `fn` (no arguments), note the memory held then, run it `repeats` times."""
    import jax

    start = time.perf_counter()
    compiled = jax.jit(fn).lower().compile()
    compile_s = time.perf_counter() - start
    rss_compiled = _current_rss_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled())
        times.append(time.perf_counter() - start)
    return compile_s, min(times), rss_compiled, out


def memory_variant(name: str, paths: int) -> dict:
    import jax
    import jax.numpy as jnp

    ts = jnp.linspace(0.0, 1.0, SAVES)
    key = jax.random.key(0)
    dt = 1.0 / STEPS

    def hand_chunk(chunk_key, n):
        normals = jax.random.normal(chunk_key, (STEPS, n)) * jnp.sqrt(dt)

        def step(y, dw):
            y = y + MU * y * dt + SIGMA * y * dw
            return y, y

        _, ys = jax.lax.scan(step, jnp.ones(n), normals)
        return jnp.concatenate([jnp.ones((1, n)), ys[STEPS // (SAVES - 1) - 1:: STEPS // (SAVES - 1)]]).T

    if name == "baseline":
        run = lambda: jnp.ones(8) * 2  # noqa: E731
    elif name.startswith("sdekit"):
        import sdekit as sk

        gbm = sk.SDE(lambda t, y, a: MU * y, lambda t, y, a: SIGMA * y, noise="diagonal")
        batch = CHUNK if name == "sdekit_batch" else None
        run = lambda: sk.sample_paths(gbm, sk.solvers.euler_maruyama(), jnp.ones(()), ts, key, paths,  # noqa: E731
                                      substeps=STEPS // (SAVES - 1), batch_size=batch).ys
    elif name == "hand_scan_chunked":
        chunks = paths // CHUNK + (paths % CHUNK > 0)

        def run():
            out = jax.lax.map(lambda c: hand_chunk(jax.random.fold_in(key, c), CHUNK), jnp.arange(chunks))
            return out.reshape(chunks * CHUNK, SAVES)[:paths]
    elif name == "hand_scan":
        run = lambda: hand_chunk(key, paths)  # noqa: E731
    elif name == "diffrax_vmap":
        import diffrax

        def one(k):
            bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=dt / 2, shape=(), key=k)
            terms = diffrax.MultiTerm(diffrax.ODETerm(lambda t, y, a: MU * y),
                                      diffrax.ControlTerm(lambda t, y, a: SIGMA * y, bm))
            return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 1.0, dt, jnp.ones(()),
                                       saveat=diffrax.SaveAt(ts=ts), max_steps=STEPS).ys

        run = lambda: jax.vmap(one)(jax.random.split(key, paths))  # noqa: E731
    else:
        raise ValueError(name)
    compile_s, run_s, rss_compiled, out = _compiled_run(run, 1 if name == "diffrax_vmap" else 3)
    peak = _rss_mb()
    return {"compile_s": compile_s, "run_s": run_s, "maxrss_mb": peak, "run_mb": peak - rss_compiled,
            "checksum": float(jnp.mean(out[..., -1]))}


def adaptive_variants() -> dict:
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    import diffrax
    import sdekit as sk

    n, ts, key = ADAPTIVE_PATHS, jnp.linspace(0.0, 1.0, SAVES), jax.random.key(1)
    drift, diffusion = (lambda t, y, a: -a * y), (lambda t, y, a: 0.5 * jnp.ones_like(y))
    ou = sk.SDE(drift, diffusion, noise="additive", calculus="stratonovich")
    pid = sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3)
    mesh = sk.ensemble.path_mesh()
    rates = jnp.linspace(0.5, 4.0, n)  # per-path args: per-path step counts differ
    out = {}

    def timed(name, fn, lowered=None):
        first, second, res = _time(fn)
        second = min(second, _time(fn)[1])
        text = lowered().compile().as_text() if lowered else ""
        out[name] = {"first_s": first, "run_s": second, "all_reduce": text.count("all-reduce(")}
        return res

    solve_kw = dict(controller=pid, dt0=0.05, args=sk.PerPath(rates))
    ref = timed("sdekit unsharded (1 device)",
                lambda: sk.sample_paths(ou, sk.solvers.shark(), jnp.ones(()), ts, key, n, **solve_kw).ys)
    sharded = timed("sdekit sample_paths(mesh=8 devices), shard_map",
                    lambda: sk.sample_paths(ou, sk.solvers.shark(), jnp.ones(()), ts, key, n, mesh=mesh, **solve_kw).ys,
                    lambda: jax.jit(lambda r: sk.sample_paths(ou, sk.solvers.shark(), jnp.ones(()), ts, key, n, mesh=mesh,
                                                              controller=pid, dt0=0.05, args=sk.PerPath(r)).ys).lower(rates))
    out["bitwise equal"] = bool((jnp.asarray(ref) == jnp.asarray(sharded)).all())
    spec = NamedSharding(mesh, PartitionSpec("paths"))
    keys = jax.device_put(jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n)), spec)
    rates_sharded = jax.device_put(rates, spec)

    def sk_one(k, r):
        tree = sk.BrownianTree(k, 0.0, 1.0, shape=(), tol=2.0**-12, levy="space-time")
        return sk.solve(ou, sk.solvers.shark(), 0.0, 1.0, jnp.ones(()), r, controller=pid, dt0=0.05,
                        saveat=sk.SaveAt(ts=ts), brownian=tree).ys

    sk_jit = jax.jit(jax.vmap(sk_one))
    timed("sdekit jit(vmap(solve)), sharded inputs", lambda: sk_jit(keys, rates_sharded),
          lambda: sk_jit.lower(keys, rates_sharded))

    def dx_one(k, r):
        bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=2.0**-12, shape=(), key=k, levy_area=diffrax.SpaceTimeLevyArea)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, bm))
        controller = diffrax.PIDController(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3, dtmin=2.0**-12)
        return diffrax.diffeqsolve(terms, diffrax.ShARK(), 0.0, 1.0, 0.05, jnp.ones(()), args=r,
                                   stepsize_controller=controller, saveat=diffrax.SaveAt(ts=ts)).ys

    dx_jit = jax.jit(jax.vmap(dx_one))
    timed("diffrax jit(vmap(diffeqsolve)), sharded inputs", lambda: dx_jit(keys, rates_sharded),
          lambda: dx_jit.lower(keys, rates_sharded))
    return out


def _subprocess(args, env=None, timeout=900):
    try:
        done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout} s"}
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant")
    parser.add_argument("--adaptive", action="store_true")
    parser.add_argument("--paths", type=int, default=PATHS)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ensemble.md"))
    a = parser.parse_args()
    if a.variant:
        print(json.dumps(memory_variant(a.variant, a.paths)))
        return
    if a.adaptive:
        print(json.dumps(adaptive_variants()))
        return
    import jax

    names = {
        "baseline": "baseline (import jax, tiny jit)",
        "hand_scan_chunked": f"hand-written lax.scan, chunks of {CHUNK} (lax.map)",
        "sdekit_batch": f"sdekit sample_paths, batch_size={CHUNK}",
        "hand_scan": "hand-written lax.scan, all paths at once",
        "sdekit": "sdekit sample_paths, all paths at once",
        "diffrax_vmap": "diffrax vmap(diffeqsolve), VirtualBrownianTree",
    }
    rows = {key: _subprocess(["--variant", key, "--paths", str(a.paths)]) for key in names}
    for key, row in rows.items():
        print(key, row, flush=True)
    adaptive = _subprocess(["--adaptive"], env={"XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}"})
    print(adaptive, flush=True)
    lines = [
        "# Ensembles at scale",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared with other "
        f"jobs, XLA:CPU; jax {jax.__version__}; float32. No GPU was lent for this run. "
        "Command: `python benchmarks/bench_ensemble.py`.",
        "",
        f"## {a.paths:,} paths x {STEPS} Euler-Maruyama steps of GBM, saving {SAVES} times",
        "",
        "Each row is a fresh process. Peak: the process's `ru_maxrss` (JAX itself: the baseline row). "
        "Run memory: peak minus the memory held once the program was compiled (what running it adds). "
        "Run: best of 3 calls of the compiled program (diffrax: 1 call); compile: trace + lower + compile.",
        "",
        "| variant | peak (GB) | run memory (GB) | run (s) | compile (s) | peak / hand chunked | "
        "run memory / hand chunked | time / hand chunked |",
        "|---|---|---|---|---|---|---|---|",
    ]
    hand = rows["hand_scan_chunked"]
    for key, label in names.items():
        row = rows[key]
        if "error" in row:
            lines.append(f"| {label} | - | - | - | - | {row['error']} | | |")
            continue
        ratio_m = row["maxrss_mb"] / hand["maxrss_mb"]
        ratio_r = row["run_mb"] / hand["run_mb"]
        ratio_t = row["run_s"] / hand["run_s"]
        lines.append(f"| {label} | {row['maxrss_mb'] / 1024:.2f} | {row['run_mb'] / 1024:.2f} | {row['run_s']:.2f} | "
                     f"{row['compile_s']:.2f} | {ratio_m:.2f}x | {ratio_r:.2f}x | {ratio_t:.2f}x |")
    lines += [
        "",
        f"## Adaptive ShARK + PID, {ADAPTIVE_PATHS} OU paths with per-path rates, {DEVICES} forced CPU devices "
        "on the same cores",
        "",
        "| variant | run (s) | first call (s) | all-reduces in the compiled program |",
        "|---|---|---|---|",
    ]
    if "error" in adaptive:
        lines.append(f"| failed: {adaptive['error']} | | | |")
    else:
        for key, row in adaptive.items():
            if isinstance(row, dict):
                lines.append(f"| {key} | {row['run_s']:.3f} | {row['first_s']:.2f} | {row['all_reduce']} |")
        base = adaptive["sdekit unsharded (1 device)"]["run_s"]
        shard = adaptive["sdekit sample_paths(mesh=8 devices), shard_map"]["run_s"]
        lines += ["", f"Sharded / unsharded: {shard / base:.2f}x; sharded result bitwise equal to unsharded: "
                      f"{adaptive['bitwise equal']}."]
    lines += NOTES.splitlines()
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
