"""ODE benchmarks, sdekit beside diffrax in one run (CPU unless a GPU is visible).

(a) Tsit5 + PID on Lotka--Volterra, 1000 initial conditions under vmap (float64, rtol 1e-6).
(b) Fixed-step classical RK4, 10,000 steps (sdekit's ConstantStep loop and its StepTo scan).

Prints run time and compile time (trace + lower + XLA compile) and their ratios
sdekit / diffrax; writes the table to benchmarks/results/ode.md.

    python benchmarks/bench_ode.py
"""

import pathlib
import sys

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sdekit as sk  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import compile_seconds, first_compile_seconds, markdown_table, run_seconds, warm_up_xla  # noqa: E402


def lotka_volterra(t, y, args):
    prey, predator = y[0], y[1]
    return jnp.stack([1.5 * prey - prey * predator, -3.0 * predator + prey * predator])


class DiffraxRK4(diffrax.AbstractERK):
    """Classical RK4 for diffrax, from its public ButcherTableau API."""

    tableau = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def adaptive_case():
    y0s = jnp.stack([jnp.linspace(5.0, 15.0, 1000), jnp.linspace(0.5, 2.0, 1000)], axis=1)
    ts = jnp.linspace(0.0, 10.0, 11)

    def ours(y0s):
        one = lambda y0: sk.solve(
            sk.ODE(lotka_volterra), sk.solvers.tsit5(), 0.0, 10.0, y0,
            controller=sk.PID(rtol=1e-6, atol=1e-8), saveat=sk.SaveAt(ts=ts), max_steps=4096,
        ).ys
        return jax.vmap(one)(y0s)

    def theirs(y0s):
        one = lambda y0: diffrax.diffeqsolve(
            diffrax.ODETerm(lotka_volterra), diffrax.Tsit5(), 0.0, 10.0, None, y0,
            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
            saveat=diffrax.SaveAt(ts=ts), max_steps=4096,
        ).ys
        return jax.vmap(one)(y0s)

    return [("sdekit", ours), ("diffrax", theirs)], (y0s,)


def fixed_case():
    y0 = jnp.array([10.0, 1.0])
    num_steps, t1 = 10_000, 10.0

    def ours_constant(y0):
        return sk.solve(sk.ODE(lotka_volterra), sk.solvers.rk4(), 0.0, t1, y0, dt0=t1 / num_steps, max_steps=num_steps).ys

    def ours_grid(y0):
        grid = jnp.linspace(0.0, t1, num_steps + 1)
        return sk.solve(sk.ODE(lotka_volterra), sk.solvers.rk4(), 0.0, t1, y0, controller=sk.StepTo(grid)).ys

    def theirs(y0):
        return diffrax.diffeqsolve(
            diffrax.ODETerm(lotka_volterra), DiffraxRK4(), 0.0, t1, t1 / num_steps, y0, max_steps=num_steps
        ).ys

    return [("sdekit ConstantStep", ours_constant), ("sdekit StepTo (scan)", ours_grid), ("diffrax", theirs)], (y0,)


CASES = {
    "adaptive": ("Tsit5 + PID, Lotka-Volterra, 1000 ICs (vmap)", adaptive_case),
    "fixed": ("RK4, 10,000 fixed steps", fixed_case),
}


def compile_only(case: str, name: str) -> None:
    """Print the first compile time of one entry (run in a fresh process by main)."""
    warm_up_xla()
    entries, args = CASES[case][1]()
    print(compile_seconds(dict(entries)[name], *args)[0])


def main():
    warm_up_xla()
    rows = []
    for case, (case_name, make) in CASES.items():
        entries, args = make()
        measured = {}
        for name, fn in entries:
            _, compiled = compile_seconds(fn, *args)
            run_s = run_seconds(compiled, *args)
            compile_s = first_compile_seconds(__file__, case, name)
            measured[name] = (compile_s, run_s, compiled(*args))
        ref_compile, ref_run, ref_out = measured["diffrax"]
        for name, (compile_s, run_s, out) in measured.items():
            diff = float(jnp.max(jnp.abs(out - ref_out)))
            rows.append([
                case_name, name, f"{run_s * 1e3:.2f}", f"{run_s / ref_run:.2f}x",
                f"{compile_s:.2f}", f"{compile_s / ref_compile:.2f}x", f"{diff:.1e}",
            ])
    device = jax.devices()[0].device_kind
    table = markdown_table(
        ["case", "library", "run (ms)", "run / diffrax", "first compile (s)", "compile / diffrax", "max abs diff to diffrax"],
        rows,
    )
    text = (
        f"Device: {device} ({jax.device_count()} device(s)); jax {jax.__version__}, diffrax {diffrax.__version__}; "
        "float64. Run time: median of 5 after warm-up. First compile: median over 3 fresh processes of "
        "trace + lower + compile.\n\n" + table + "\n"
    )
    print(text)
    out = pathlib.Path(__file__).parent / "results" / "ode.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compile-only":
        compile_only(sys.argv[2], sys.argv[3])
    else:
        main()
