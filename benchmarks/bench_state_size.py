"""Cost per step of the implicit solvers as the state grows, on CPU, beside diffrax.

Problem (float64): the linear stiff system y' = -M y, M = diag(logspace(0, 3, n)) + 0.1 (all
entries), y(0) = 1, t to 10, rtol = atol = 1e-8, for n from 4 to 64; sdekit `kvaerno5()` and
`radau5()` (predictive controller), diffrax `Kvaerno5()`. Reports steps and microseconds per step
(median of RUN_REPEATS runs), then (up to n = 16) the same per problem when 16 such problems (M
scaled by 1..2) are solved together under `jax.vmap`.

Why: XLA:CPU runs a compiled loop body thunk by thunk, on the calling thread, only while every
buffer the body touches is at most 512 bytes; past that it switches to its concurrent executor,
whose bookkeeping (and hand-offs to worker threads when more than 8 thunks are ready at once)
costs microseconds per step that a small problem's arithmetic does not. 512 bytes is an 8 x 8
float64 matrix (a 9-component state's Jacobian is 648 bytes) and a 5 x 5 complex128 one (Radau
IIA factorises a complex n x n matrix). The threshold is fixed inside XLA (no flag); a batch
under `vmap` shares the cost. Writes benchmarks/results/state_size.md.
"""

import pathlib

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk
from _timing import markdown_table, run_seconds, warm_up_xla

jax.config.update("jax_enable_x64", True)

SIZES = (4, 5, 6, 8, 9, 12, 16, 32, 64)
#: The batched runs stop here: past it the batch's LU factorisations, not the executor, set the time.
BATCH_UP_TO = 16
RTOL = 1e-8
T1 = 10.0
BATCH = 16
RUN_REPEATS = 15
SOLVERS = ("sdekit kvaerno5", "sdekit radau5", "diffrax Kvaerno5")


def matrix(n: int) -> jax.Array:
    return jnp.asarray(np.diag(np.logspace(0, 3, n)) + 0.1 * np.ones((n, n)))


def field(t, y, scale):
    return -scale * (matrix(y.shape[0]) @ y)


def solve_one(name: str, n: int):
    """`run(scale) -> (y(t1), steps)` for one problem of size n."""
    y0 = jnp.ones(n)
    if name.startswith("sdekit"):
        solver = getattr(sk.solvers, name.split()[1])()
        controller = sk.PID(rtol=RTOL, atol=RTOL, predictive="radau5" in name)

        def run(scale):
            sol = sk.solve(sk.ODE(field), solver, 0.0, T1, y0, args=scale, controller=controller, max_steps=20_000)
            return sol.ys[-1], sol.stats["num_steps"]
    else:
        def run(scale):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Kvaerno5(), 0.0, T1, None, y0, args=scale,
                                      stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=RTOL),
                                      max_steps=20_000)
            return sol.ys[-1], sol.stats["num_steps"]
    return run


def per_step_us(name: str, n: int, batch: int | None) -> tuple[int, float]:
    """Mean steps and microseconds per (problem-)step, one problem or a vmapped batch."""
    run = solve_one(name, n)
    if batch is None:
        scales = jnp.asarray(1.0)
    else:
        run, scales = jax.vmap(run), jnp.linspace(1.0, 2.0, batch)
    compiled = jax.jit(run).lower(scales).compile()
    y, steps = compiled(scales)
    exact = jax.vmap(lambda s: jax.scipy.linalg.expm(-s * T1 * matrix(n)) @ jnp.ones(n))(jnp.atleast_1d(scales))
    error = float(jnp.max(jnp.abs(jnp.atleast_2d(y) - exact)))
    if error > 1e-5:
        raise AssertionError(f"{name}, n = {n}: error {error:.1e} against the matrix exponential")
    seconds = run_seconds(compiled, scales, repeats=RUN_REPEATS)
    total_steps = int(jnp.sum(steps))
    return total_steps // (batch or 1), 1e6 * seconds / total_steps


def main():
    warm_up_xla()
    rows, ratios = [], []
    for n in SIZES:
        single = {name: per_step_us(name, n, None) for name in SOLVERS}
        batched = {name: per_step_us(name, n, BATCH) if n <= BATCH_UP_TO else None for name in SOLVERS}
        row = [n, f"{8 * n * n}", f"{16 * n * n}"]
        for name in SOLVERS:
            row += [single[name][0], f"{single[name][1]:.1f}", "" if batched[name] is None else f"{batched[name][1]:.2f}"]
        rows.append(row)
        base = single["diffrax Kvaerno5"][1]
        ratios.append([n, f"{single['sdekit kvaerno5'][1] / base:.2f}x", f"{single['sdekit radau5'][1] / base:.2f}x"])
        print(row, flush=True)
    header = ["n", "n x n f64 (bytes)", "n x n c128 (bytes)"]
    for name in SOLVERS:
        header += [f"{name}: steps", "us/step", f"us/step per problem (vmap {BATCH})"]
    text = (
        f"Device: {jax.devices()[0].platform}; jax {jax.__version__}, diffrax {diffrax.__version__}, float64. "
        f"y' = -M y, rtol = atol = {RTOL:g}, t to {T1:g}; median of {RUN_REPEATS} runs. XLA:CPU executes a loop body "
        "sequentially (cheaply) only while all its buffers are at most 512 bytes.\n\n"
        + markdown_table(header, rows)
        + "\n\nTime per step against diffrax Kvaerno5's (one problem):\n\n"
        + markdown_table(["n", "sdekit kvaerno5", "sdekit radau5"], ratios)
        + "\n"
    )
    out = pathlib.Path(__file__).parent / "results" / "state_size.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
