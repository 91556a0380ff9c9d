"""Timing helpers shared by the benchmarks: compile time and median run time of a jitted call."""

import statistics
import subprocess
import sys
import time

import jax
import numpy as np


def warm_up_xla() -> None:
    """Compile something small first, so that XLA's one-time start-up cost is not charged to
    whichever library happens to be measured first."""
    x = jax.numpy.ones((8, 8))
    jax.jit(lambda a: jax.numpy.sin(a) @ a.T).lower(x).compile()


def compile_seconds(fn, *args) -> tuple[float, object]:
    """Time to trace + lower + XLA-compile `jax.jit(fn)`; returns (seconds, compiled).

    Only the first compilation in a process is a fair figure (libraries cache traced inner
    functions), so the benchmarks report `first_compile_seconds` instead; this one is for the
    run-time measurement.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - start, compiled


def first_compile_seconds(script: str, case: str, name: str, repeats: int = 3) -> float:
    """Median over fresh processes of the first compilation of one entry of a benchmark script
    (after an unrelated warm-up compile): what a user waits for before the first result."""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, script, "--compile-only", case, name], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run_seconds(compiled, *args, repeats: int = 5) -> float:
    """Median wall time of `repeats` runs of a compiled call (after one warm-up run)."""
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tolerance_sweep(label, adaptive, reference_ys, keys, tolerances, error, repeats: int) -> list[tuple]:
    """An adaptive solve `adaptive(keys, rtol) -> (ys, steps)` at each tolerance: compiled once
    per tolerance, its `error(ys, reference_ys)`, mean steps and median run time (of `repeats`
    runs), printed as it goes. Returns rows `(rtol, error, steps, seconds)` (`time_at_error`'s)."""
    rows = []
    for rtol in tolerances:
        rtol = jax.numpy.asarray(rtol)
        _, compiled = compile_seconds(adaptive, keys, rtol)
        ys, steps = compiled(keys, rtol)
        err, mean_steps = float(error(ys, reference_ys)), float(jax.numpy.mean(steps))
        seconds = run_seconds(compiled, keys, rtol, repeats=repeats)
        rows.append((float(rtol), err, mean_steps, seconds))
        print(f"{label:18s} rtol={float(rtol):.0e} error={err:.3e} steps={mean_steps:8.1f} time={seconds * 1e3:8.1f} ms",
              flush=True)
    return rows


def time_at_error(rows, error) -> float:
    """Run time at `error` along one solver's curve, by log-log interpolation; `rows` are
    `(tolerance, error, steps, seconds)`. Outside the curve's errors it returns the nearest end."""
    errors = np.log([r[1] for r in rows])
    times = np.log([r[3] for r in rows])
    order = np.argsort(errors)
    return float(np.exp(np.interp(np.log(error), errors[order], times[order])))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
