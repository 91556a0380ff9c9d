"""Brownian-increment throughput: sdekit vs diffrax vs torchsde, and the grid path.

Run: `python benchmarks/bench_brownian.py [--quick]`. Prints one markdown table and writes
it to `benchmarks/results/brownian.md`.

Workload (float32, with space-time Lévy area H): 1000 independent paths (one key each,
`jax.vmap` over keys) x 1000 sequential unit steps of 1e-3 on [0, 1], inside `lax.scan`;
ns per increment = wall time / (1000 * 1000). Compile time is excluded (warm-up run), every
timing is the median of several repeats after `block_until_ready`.

- sdekit cursor: `tree.increment(s, t, cursor=cur)` with the cursor in the scan carry;
- sdekit plain: `tree.increment(s, t)`;
- diffrax: `VirtualBrownianTree(..., levy_area=SpaceTimeLevyArea).evaluate(s, t,
  use_levy=True)`;
- torchsde: `BrownianInterval(size=(1000, 1), levy_area_approximation="space-time")`
  queried step by step from Python (its intended use inside `sdeint`), on CPU;
- grid: `tree.grid_increments(ts)` for the same 1000 x 1000 increments (W and H) against
  `jax.random.normal` drawing the same count of numbers (2 x 1000 x 1000), both for
  1000 trees under `vmap` and for one tree of shape (1000,).
"""

import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import jax.random as jr

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import sdekit.brownian as skb  # noqa: E402

PATHS, STEPS = 1000, 1000
DT = 1.0 / STEPS
QUICK = "--quick" in sys.argv
REPEATS = 2 if QUICK else 5


def timed(f, *args, repeats=REPEATS):
    jax.block_until_ready(f(*args))  # compile + warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sdekit_sequential(tol, cursor):
    @jax.jit
    def run(keys):
        def one(key):
            tree = skb.BrownianTree(key, 0.0, 1.0, shape=(), tol=tol, levy="space-time")

            def body(carry, i):
                acc, cur = carry
                s, t = i * DT, jnp.minimum((i + 1) * DT, 1.0)
                if cursor:
                    inc, cur = tree.increment(s, t, cursor=cur)
                else:
                    inc = tree.increment(s, t)
                return (acc + inc.W * inc.H, cur), None

            init = (jnp.zeros(()), tree.cursor())
            return jax.lax.scan(body, init, jnp.arange(STEPS))[0][0]

        return jax.vmap(one)(keys)

    return timed(run, jr.split(jr.key(0), PATHS))


def diffrax_sequential(tol):
    import diffrax

    @jax.jit
    def run(keys):
        def one(key):
            vbt = diffrax.VirtualBrownianTree(
                0.0, 1.0, tol=tol, shape=(), key=key, levy_area=diffrax.SpaceTimeLevyArea
            )

            def body(acc, i):
                s, t = i * DT, jnp.minimum((i + 1) * DT, 1.0)
                inc = vbt.evaluate(s, t, use_levy=True)
                return acc + inc.W * inc.H, None

            return jax.lax.scan(body, jnp.zeros(()), jnp.arange(STEPS))[0]

        return jax.vmap(one)(keys)

    return timed(run, jr.split(jr.key(0), PATHS), repeats=min(REPEATS, 3))


def torchsde_sequential(tol):
    try:
        import torch
        import torchsde
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)

    def run():
        bm = torchsde.BrownianInterval(
            t0=0.0, t1=1.0, size=(PATHS, 1), dtype=torch.float32, entropy=0, tol=tol,
            levy_area_approximation="space-time",
        )
        acc = torch.zeros(PATHS, 1)
        for i in range(STEPS):
            s, t = i * DT, min((i + 1) * DT, 1.0)
            w, u = bm(s, t, return_U=True)
            acc += w * u
        return acc

    run()
    times = []
    for _ in range(min(REPEATS, 3)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grid(tol):
    ts = jnp.linspace(0.0, 1.0, STEPS + 1)

    @jax.jit
    def vmapped(keys):
        def one(key):
            tree = skb.BrownianTree(key, 0.0, 1.0, shape=(), tol=tol, levy="space-time")
            inc = tree.grid_increments(ts)
            return inc.W, inc.H

        return jax.vmap(one)(keys)

    @jax.jit
    def shaped(key):
        tree = skb.BrownianTree(key, 0.0, 1.0, shape=(PATHS,), tol=tol, levy="space-time")
        inc = tree.grid_increments(ts)
        return inc.W, inc.H

    return timed(vmapped, jr.split(jr.key(0), PATHS)), timed(shaped, jr.key(0))


def normal_limit():
    f = jax.jit(lambda k: jr.normal(k, (2, STEPS, PATHS)))
    return timed(f, jr.key(0))


def main():
    ns = lambda sec: sec / (PATHS * STEPS) * 1e9  # noqa: E731
    rows = []
    limit = normal_limit()
    for tol in (1e-3, 1e-6):
        dfx = diffrax_sequential(tol)
        cur = sdekit_sequential(tol, cursor=True)
        plain = sdekit_sequential(tol, cursor=False)
        tsde = torchsde_sequential(tol)
        g_vmap, g_shape = grid(tol)
        rows.append((tol, cur, plain, dfx, tsde, g_vmap, g_shape))
        print(f"tol={tol:g} done", file=sys.stderr)

    lines = [
        f"Device: {jax.devices()[0].device_kind} ({os.cpu_count()} CPU cores visible), "
        f"jax {jax.__version__}. {PATHS} paths x {STEPS} steps, float32, with H.",
        "",
        "Sequential increments (ns per increment; ratio = diffrax time / this time):",
        "",
        "| tol | sdekit cursor | sdekit plain | diffrax VBT | torchsde BrownianInterval |",
        "|---|---|---|---|---|",
    ]
    for tol, cur, plain, dfx, tsde, *_ in rows:
        t = "n/a" if tsde is None else f"{ns(tsde):.0f} ({dfx / tsde:.2f}x)"
        lines.append(
            f"| {tol:g} | {ns(cur):.0f} ({dfx / cur:.1f}x) | {ns(plain):.0f} "
            f"({dfx / plain:.1f}x) | {ns(dfx):.0f} (1x) | {t} |"
        )
    lines += [
        "",
        f"Grid path: all {STEPS} x {PATHS} increments (W and H) in one call, against "
        f"`jax.random.normal` for the same {2 * STEPS * PATHS} numbers "
        f"({limit * 1e3:.1f} ms):",
        "",
        "| tol | grid, vmap over 1000 keys | grid, one tree of shape (1000,) |",
        "|---|---|---|",
    ]
    for tol, *_, g_vmap, g_shape in rows:
        lines.append(
            f"| {tol:g} | {g_vmap * 1e3:.1f} ms ({g_vmap / limit:.1f}x normal) | "
            f"{g_shape * 1e3:.1f} ms ({g_shape / limit:.1f}x normal) |"
        )
    table = "\n".join(lines)
    print(table)
    out = os.path.join(os.path.dirname(__file__), "results", "brownian.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        fh.write("# Brownian benchmark (`python benchmarks/bench_brownian.py`)\n\n" + table + "\n")


if __name__ == "__main__":
    main()
