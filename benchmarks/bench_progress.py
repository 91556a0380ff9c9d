"""What `progress=True` costs: a 64-dimensional tanh network field, RK4, 1e5 and 1e6 steps, on a
fixed grid (`StepTo`, a scan) and on constant steps (`dt0`, the while loop), with and without a
tqdm meter, in one process.

    python benchmarks/bench_progress.py            # prints a markdown table

The variants run in alternating blocks of repeated calls (as a user calls one compiled solve
again and again; switching executables on every call costs cache misses of its own); medians
over all calls. The meter's output goes to a discarded stream.
"""

import contextlib
import io
import statistics
import time

import jax
import jax.numpy as jnp

import sdekit as sk

W = jax.random.normal(jax.random.key(0), (64, 64)) / 8
FIELD = sk.ODE(lambda t, y, a: jnp.tanh(W @ y))


def solvers(n):
    grid = jnp.linspace(0.0, 1.0, n + 1)

    def scan(progress):
        return jax.jit(lambda y: sk.solve(FIELD, sk.solvers.rk4(), 0.0, 1.0, y, controller=sk.StepTo(grid),
                                          progress=progress).ys), ()

    def while_(progress):
        return jax.jit(lambda y, dt: sk.solve(FIELD, sk.solvers.rk4(), 0.0, 1.0, y, dt0=dt, max_steps=n + 10,
                                              progress=progress).ys), (1.0 / n,)

    return {"scan (StepTo)": scan, "while loop (dt0)": while_}


def measure(n: int, reps: int):
    rows = []
    y0 = jnp.ones(64)
    for name, make in solvers(n).items():
        (off, extra), (on, _) = make(False), make(True)
        args = (y0, *extra)
        times = {False: [], True: []}
        with contextlib.redirect_stderr(io.StringIO()):
            off(*args).block_until_ready()
            on(*args).block_until_ready()
            block = max(1, reps // 6)
            for r in range(6):
                for progress in ((False, True) if r % 2 == 0 else (True, False)):
                    fn = on if progress else off
                    for _ in range(block):
                        start = time.perf_counter()
                        fn(*args).block_until_ready()
                        times[progress].append(time.perf_counter() - start)
        m_off, m_on = statistics.median(times[False]), statistics.median(times[True])
        rows.append((n, name, m_off * 1e3, m_on * 1e3, 100 * (m_on / m_off - 1)))
    return rows


def main():
    rows = measure(100_000, 60) + measure(1_000_000, 12)
    print("| steps | loop | without (ms) | with progress (ms) | cost |")
    print("|---|---|---|---|---|")
    for n, name, a, b, pct in rows:
        print(f"| {n:,} | {name} | {a:.1f} | {b:.1f} | {pct:+.1f}% |")


if __name__ == "__main__":
    main()
