"""Stiff ODE benchmarks: work-precision of sdekit's implicit solvers beside diffrax and scipy.

Problems (float64): Robertson (t to 1e5), Van der Pol with mu = 1000 (t to 3000), HIRES (t to
321.8122), and a split reaction-diffusion problem. Solvers: sdekit `kvaerno5()` and `radau5()`, and diffrax `Kvaerno5()` (diffrax has no Radau method); on a split problem, logistic reaction
(explicit) plus diffusion (implicit) on 64 points (t to 2), also sdekit `kencarp4()` and
diffrax `KenCarp4()`. (Robertson split into its slow reaction (explicit) and fast ones
(implicit) is a poor IMEX problem: the explicit production balances the implicit destruction
on the slow manifold, and sdekit's `kencarp4()` needed steps of ~3e-3 there, 20,000 steps by
t = 53; Van der Pol's oscillator term is itself fast in the relaxation jumps.) scipy `solve_ivp` with `Radau`
and `LSODA` (given the exact Jacobian, compiled with JAX). Three tolerances (rtol 1e-4, 1e-6,
1e-8; atol = rtol times a per-problem scale), all with the same PID settings (an integral
controller; `radau5` adds `predictive=True`, Gustafsson's bound that scipy's Radau also uses).

Reported per case: the error against a tight reference (scipy Radau, rtol 1e-12), as the RMS
over components of |y - ref| / (|ref| + floor); steps taken (accepted + rejected); vector-field
and Jacobian evaluations (sdekit and diffrax counted in a separate run by a counting wrapper
on the vector field; scipy's own counts); run time (median of RUN_REPEATS after warm-up); and first
compile time (trace + lower + compile, in one fresh process per entry: tolerances are traced,
so one compilation serves all three). The compile time is measured twice: with XLA's default
CPU code generation, and with its older IR emitters (`XLA_FLAGS=--xla_cpu_use_fusion_emitters=false`,
which compiles about twice as fast); with the latter also the run time at rtol 1e-6, since the
emitters generate different code. Writes benchmarks/results/stiff.md.

    python benchmarks/bench_stiff.py            # everything (several minutes)
    python benchmarks/bench_stiff.py --compile-only PROBLEM SOLVER      # or --compile-and-run
"""

import os
import pathlib
import subprocess
import sys
import time
from typing import Callable, NamedTuple

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.integrate  # noqa: E402

import sdekit as sk  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import markdown_table, run_seconds, warm_up_xla  # noqa: E402

RTOLS = (1e-4, 1e-6, 1e-8)
#: Runs per timing (median): a few milliseconds on a shared 2-core host vary by up to 2x between
#: single runs, and a median of 3 carried that into the ratios (HIRES `radau5`: 7.5 ms, later 2 ms).
RUN_REPEATS = 15
#: XLA:CPU's older IR emitters: the second code generation the compile times are measured with.
IR_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


# ------------------------------------------------------------------------------------ problems


def robertson(t, y, args):
    a, b, c = y[0], y[1], y[2]
    return jnp.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b**2, 3e7 * b**2])


MU = 1000.0


def van_der_pol(t, y, args):
    # MATLAB's vdp1000: y1'' - mu (1 - y1^2) y1' + y1 = 0.
    return jnp.stack([y[1], MU * (1 - y[0] ** 2) * y[1] - y[0]])


N_GRID = 64


def diffusion(t, u, args):
    """0.1 u_xx on (0, 1), Dirichlet ends, N_GRID points: eigenvalues down to about -1700."""
    padded = jnp.concatenate([jnp.zeros(1, u.dtype), u, jnp.zeros(1, u.dtype)])
    return 0.1 * (padded[2:] - 2 * u + padded[:-2]) * (N_GRID + 1) ** 2


def reaction(t, u, args):
    return 5.0 * u * (1 - u)


def reaction_diffusion(t, u, args):
    return reaction(t, u, args) + diffusion(t, u, args)


def hires(t, y, args):
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    return jnp.stack([
        -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
        1.71 * y1 - 8.75 * y2,
        -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
        8.32 * y2 + 1.71 * y3 - 1.12 * y4,
        -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
        -280.0 * y6 * y8 + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
        280.0 * y6 * y8 - 1.81 * y7,
        -280.0 * y6 * y8 + 1.81 * y7,
    ])


class Problem(NamedTuple):
    field: Callable
    t1: float
    y0: tuple
    atol_scale: float  # atol = rtol * atol_scale
    error_floor: float  # in the relative error's denominator
    split: tuple | None  # (explicit, implicit)


PROBLEMS = {
    "Robertson": Problem(robertson, 1e5, (1.0, 0.0, 0.0), 1e-6, 1e-12, None),
    "Van der Pol (mu=1000)": Problem(van_der_pol, 3000.0, (2.0, 0.0), 1e-2, 1e-3, None),
    "HIRES": Problem(hires, 321.8122, (1.0, 0, 0, 0, 0, 0, 0, 0.0057), 1e-3, 1e-8, None),
    "Reaction-diffusion (64 points, split)": Problem(
        reaction_diffusion, 2.0, tuple(0.5 * np.sin(np.pi * np.linspace(0, 1, N_GRID + 2)[1:-1])), 1e-2, 1e-6,
        (reaction, diffusion)),
}
SOLVERS = ("sdekit kvaerno5", "sdekit radau5", "diffrax Kvaerno5", "sdekit kencarp4 (split)", "diffrax KenCarp4 (split)",
           "scipy Radau", "scipy LSODA")
MAX_STEPS = 20_000


# ------------------------------------------------------------------------------------ solvers


class Counter:
    """Counts vector-field and Jacobian evaluations of a field (a counting run only): primal
    calls are evaluations; a Jacobian (forward mode: jvp) counts once per Jacobian, however many
    directions it pushes at once."""

    def __init__(self):
        self.f = 0
        self.jac = 0

    def wrap(self, field):
        @jax.custom_jvp
        def counted(t, y, args):
            # With y as the callback's argument, a call vmapped over stages counts once per stage.
            jax.debug.callback(self._add_f, y)
            return field(t, y, args)

        @counted.defjvp
        def counted_jvp(primals, tangents):
            jax.debug.callback(self._add_jac)
            return jax.jvp(field, primals, tangents)

        return counted

    def _add_f(self, _):
        self.f += 1

    def _add_jac(self):
        self.jac += 1


def _sdekit_fn(problem: Problem, name: str, wrap=lambda f: f):
    split = "kencarp" in name
    if split:
        explicit, implicit = problem.split
        ode, solver = sk.ODE(sk.Split(wrap(explicit), wrap(implicit))), sk.solvers.kencarp4()
    else:
        ode, solver = sk.ODE(wrap(problem.field)), getattr(sk.solvers, name.split()[1])()
    y0 = jnp.asarray(problem.y0)

    # Radau IIA with the step-size strategy of scipy's Radau and Hairer's RADAU5 (predictive);
    # the ESDIRKs with diffrax's (the same plain controller on both sides).
    predictive = "radau5" in name

    def run(rtol, atol):
        sol = sk.solve(ode, solver, 0.0, problem.t1, y0, controller=sk.PID(rtol=rtol, atol=atol, predictive=predictive),
                       max_steps=MAX_STEPS, throw=False)
        return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_fevals"], sol.result == 0

    return run


def _diffrax_fn(problem: Problem, name: str, wrap=lambda f: f):
    if "KenCarp" in name:
        explicit, implicit = problem.split
        terms = diffrax.MultiTerm(diffrax.ODETerm(wrap(explicit)), diffrax.ODETerm(wrap(implicit)))
        solver = diffrax.KenCarp4()
    else:
        terms, solver = diffrax.ODETerm(wrap(problem.field)), diffrax.Kvaerno5()
    y0 = jnp.asarray(problem.y0)

    def run(rtol, atol):
        sol = diffrax.diffeqsolve(terms, solver, 0.0, problem.t1, None, y0,
                                  stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                                  max_steps=MAX_STEPS, throw=False)
        return sol.ys[-1], sol.stats["num_steps"], jnp.asarray(-1), sol.result == diffrax.RESULTS.successful

    return run


def jax_fn(problem: Problem, name: str, wrap=lambda f: f):
    return (_sdekit_fn if name.startswith("sdekit") else _diffrax_fn)(problem, name, wrap)


def applies(problem: Problem, name: str) -> bool:
    return problem.split is not None or "split" not in name


def scipy_solve(problem: Problem, method: str, rtol: float, atol: float):
    f = jax.jit(lambda t, y: problem.field(t, y, None))
    jac = jax.jit(jax.jacfwd(lambda t, y: problem.field(t, y, None), argnums=1))

    def fun(t, y):
        return np.asarray(f(t, y))

    def jacobian(t, y):
        return np.asarray(jac(t, y))

    fun(0.0, np.asarray(problem.y0)), jacobian(0.0, np.asarray(problem.y0))  # compile first
    start = time.perf_counter()
    out = scipy.integrate.solve_ivp(fun, (0.0, problem.t1), np.asarray(problem.y0), method=method, rtol=rtol,
                                    atol=atol, jac=jacobian)
    seconds = time.perf_counter() - start
    # Steps: scipy reports none; the saved times are the accepted steps.
    return out.y[:, -1], len(out.t) - 1, out.nfev, out.njev, seconds, out.status == 0


def reference(problem: Problem):
    f = jax.jit(lambda t, y: problem.field(t, y, None))
    jac = jax.jit(jax.jacfwd(lambda t, y: problem.field(t, y, None), argnums=1))
    out = scipy.integrate.solve_ivp(lambda t, y: np.asarray(f(t, y)), (0.0, problem.t1), np.asarray(problem.y0),
                                    method="Radau", rtol=1e-12, atol=1e-12 * problem.atol_scale,
                                    jac=lambda t, y: np.asarray(jac(t, y)))
    return out.y[:, -1]


def error(y, ref, floor):
    return float(np.sqrt(np.mean(((np.asarray(y) - ref) / (np.abs(ref) + floor)) ** 2)))


# ------------------------------------------------------------------------------------ timing


def compile_only(problem_name: str, solver_name: str, run: bool = False) -> list[float]:
    """The first compile's seconds in this process; with `run`, then the run's milliseconds at
    rtol 1e-6."""
    warm_up_xla()
    problem = PROBLEMS[problem_name]
    start = time.perf_counter()
    compiled = jax.jit(jax_fn(problem, solver_name)).lower(1e-6, 1e-6 * problem.atol_scale).compile()
    figures = [time.perf_counter() - start]
    if run:
        figures.append(1e3 * run_seconds(compiled, 1e-6, 1e-6 * problem.atol_scale, repeats=RUN_REPEATS))
    return figures


def first_compile(problem_name: str, solver_name: str, xla_flags: str = "", run: bool = False) -> list[float]:
    """`compile_only` in a fresh process, with `xla_flags` added to the environment's XLA_FLAGS."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip()
    mode = "--compile-and-run" if run else "--compile-only"
    out = subprocess.run([sys.executable, __file__, mode, problem_name, solver_name],
                         capture_output=True, text=True, check=True, env={**os.environ, "XLA_FLAGS": flags})
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def measure_jax(problem: Problem, name: str, ref):
    compiled = jax.jit(jax_fn(problem, name)).lower(1e-6, 1e-6 * problem.atol_scale).compile()
    counter = Counter()
    counting = jax.jit(jax_fn(problem, name, counter.wrap))
    rows = []
    for rtol in RTOLS:
        atol = rtol * problem.atol_scale
        y, steps, _, result = compiled(rtol, atol)
        seconds = run_seconds(compiled, rtol, atol, repeats=RUN_REPEATS)
        counter.f = counter.jac = 0
        jax.block_until_ready(counting(rtol, atol))
        fevals, jacs = counter.f, counter.jac
        if "split" in name:  # both parts are evaluated at every stage: count stage evaluations
            fevals //= 2
        rows.append(dict(rtol=rtol, error=error(y, ref, problem.error_floor), steps=int(steps), fevals=fevals,
                         jacs=jacs, ms=1e3 * seconds, ok=bool(result)))
    return rows


def measure_scipy(problem: Problem, method: str, ref):
    rows = []
    for rtol in RTOLS:
        y, steps, nfev, njev, seconds, ok = scipy_solve(problem, method, rtol, rtol * problem.atol_scale)
        rows.append(dict(rtol=rtol, error=error(y, ref, problem.error_floor), steps=steps, fevals=nfev, jacs=njev,
                         ms=1e3 * seconds, ok=ok))
    return rows


def equal_error_table(summary) -> str:
    """sdekit's run time over diffrax's, and its evaluations over scipy Radau's, at sdekit's
    error: the others' (error, run time) and (error, evaluations) curves interpolated in log-log
    between their three tolerances ("extrapolated" outside them)."""

    def at(rows, e, key):
        rows = sorted((r for r in rows if r["ok"]), key=lambda r: r["error"])
        errors = np.log([r["error"] for r in rows])
        value = float(np.exp(np.interp(np.log(e), errors, np.log([r[key] for r in rows]))))
        return value, bool(errors[0] <= np.log(e) <= errors[-1])

    lines = []
    for (problem_name, name), (rows, _, _) in summary.items():
        if not name.startswith("sdekit"):
            continue
        theirs = "diffrax KenCarp4 (split)" if "split" in name else "diffrax Kvaerno5"
        for r in rows:
            cells = [problem_name, name, f"{r['error']:.1e}"]
            for other, key in ((theirs, "ms"), ("scipy Radau", "fevals")):
                others = summary[(problem_name, other)][0]
                if not any(o["ok"] for o in others):
                    cells.append("(all failed)")
                    continue
                value, inside = at(others, r["error"], key)
                cells.append(f"{r[key] / value:.2f}x" + ("" if inside else " (extrapolated)"))
            lines.append(cells)
    return markdown_table(["problem", "sdekit solver", "its error", "run / diffrax at that error",
                           "f evals / scipy Radau at that error"], lines)


def main():
    warm_up_xla()
    header = ["problem", "solver", "rtol", "error", "steps", "f evals", "Jacobians", "run (ms)",
              "first compile (s)", "IR emitters: compile (s)", "IR emitters: run at 1e-6 (ms)"]
    table, summary = [], {}
    for problem_name, problem in PROBLEMS.items():
        ref = reference(problem)
        for name in SOLVERS:
            if not applies(problem, name):
                continue
            if name.startswith("scipy"):
                rows, compile_s, ir = measure_scipy(problem, name.split()[1], ref), None, None
            else:
                rows, (compile_s,) = measure_jax(problem, name, ref), first_compile(problem_name, name)
                ir = first_compile(problem_name, name, IR_EMITTERS, run=True)
            summary[(problem_name, name)] = (rows, compile_s, ir)
            for r in rows:
                table.append([problem_name, name, f"{r['rtol']:.0e}", f"{r['error']:.1e}" + ("" if r["ok"] else " (failed)"),
                              r["steps"], r["fevals"], r["jacs"], f"{r['ms']:.1f}",
                              "" if compile_s is None else f"{compile_s:.2f}", "" if ir is None else f"{ir[0]:.2f}",
                              "" if ir is None or r["rtol"] != 1e-6 else f"{ir[1]:.1f}"])
            print(table[-1], flush=True)
    ratios = []
    for problem_name in PROBLEMS:
        for ours, theirs in (("sdekit kvaerno5", "diffrax Kvaerno5"), ("sdekit radau5", "diffrax Kvaerno5"),
                             ("sdekit kencarp4 (split)", "diffrax KenCarp4 (split)")):
            if (problem_name, ours) not in summary:
                continue
            (a, ca, ira), (b, cb, irb) = summary[(problem_name, ours)], summary[(problem_name, theirs)]
            radau = summary[(problem_name, "scipy Radau")][0]
            for ra, rb, rr in zip(a, b, radau):
                ratios.append([problem_name, f"{ours} / {theirs.split()[0]}", f"{ra['rtol']:.0e}",
                               f"{ra['error']:.1e} / {rb['error']:.1e}", f"{ra['ms'] / rb['ms']:.2f}x",
                               f"{ca / cb:.2f}x", f"{ira[0] / irb[0]:.2f}x", f"{ra['fevals']} / {rr['fevals']}"])
    text = (
        f"Device: {jax.devices()[0].platform}; jax {jax.__version__}, diffrax {diffrax.__version__}, float64. "
        f"Run: median of {RUN_REPEATS} after warm-up. First compile: one fresh process per entry (trace + lower + compile). "
        "Error: RMS over components of |y(t1) - ref| / (|ref| + floor) against scipy Radau at rtol 1e-12. "
        "f evals: vector-field evaluations (split problems: stage evaluations, both parts counted once); "
        "Jacobians: Jacobian evaluations (scipy: njev). scipy is given the exact Jacobian (compiled with JAX).\n\n"
        + markdown_table(header, table)
        + "\n\nRatios (sdekit / diffrax at the same tolerance; f evals sdekit / scipy Radau):\n\n"
        + markdown_table(["problem", "pair", "rtol", "error (ours / theirs)", "run", "compile", "compile (IR emitters)",
                          "f evals vs Radau"], ratios)
        + "\n\nAt equal error (log-log interpolation of the other solver's three points):\n\n"
        + equal_error_table(summary)
        + "\n"
    )
    out = pathlib.Path(__file__).parent / "results" / "stiff.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--compile-only", "--compile-and-run"):
        print(*compile_only(sys.argv[2], sys.argv[3], run=sys.argv[1] == "--compile-and-run"))
    else:
        main()
