"""`sdekit convergence`: run an order experiment from the command line.

Every argument is checked before any computation (solver names and their `:calculus` suffix,
solver/problem fit, levels, paths, the output directory, matplotlib when a plot is wanted), so a
mistake costs a one-line message and exit status 2, not minutes of work and a traceback.
"""

import argparse
import inspect
import pathlib
import sys
from typing import NamedTuple, NoReturn

import jax

import sdekit as sk

from ._experiment import REFERENCE_STEPS, default_step_counts, ode_order_experiment
from ._problems import PROBLEMS
from ._report import order_table, save_order_plot
from ._sde import SDE_PROBLEMS, SDETestProblem, problem_for, sde_solver_mismatch, sde_strong_order_experiment

PROG = "sdekit convergence"
ODE_SOLVERS = ("euler", "heun", "midpoint", "ralston", "bosh3", "rk4", "tsit5", "dopri5", "dopri8")
SDE_SOLVERS = (
    "euler_maruyama", "milstein", "milstein_general", "euler_heun", "heun_sde", "midpoint_sde",
    "reversible_heun", "sea", "shark", "sra1", "spark", "general_shark", "slow_rk",
)
CALCULI = ("ito", "stratonovich")
DEFAULT_ODE_SOLVERS = ("euler", "heun", "bosh3", "rk4", "tsit5", "dopri8")
DEFAULT_SDE_LEVELS = (16, 32, 64, 128, 256)


class SolverSpec(NamedTuple):
    """A parsed `--solvers` entry: `name` or `name:calculus`."""

    text: str
    name: str
    calculus: str | None


def default_solvers(problem: str) -> tuple[str, ...]:
    """Solvers run when `--solvers` is not given: ODE methods of orders 1 to 8 for ODE problems;
    for SDE problems a first-order baseline and the higher-order methods for its noise type.
    Methods with a calculus option get the problem's; the others are the problem's calculus
    where one exists (Euler-Maruyama for Itô, Euler-Heun for Stratonovich)."""
    if problem in PROBLEMS:
        return DEFAULT_ODE_SOLVERS
    sde = SDE_PROBLEMS[problem].problem
    if sde.noise == "additive":
        return ("euler_maruyama", "shark", "sra1")
    baseline = "euler_maruyama" if sde.calculus == "ito" else "euler_heun"
    return (baseline, "milstein_general") if sde.noise == "general" else (baseline, "milstein")


def _problem_line(name: str) -> str:
    if name in PROBLEMS:
        kind = "ODE"
    else:
        sde = SDE_PROBLEMS[name].problem
        calculus = "" if sde.noise == "additive" else ", Itô" if sde.calculus == "ito" else ", Stratonovich"
        kind = f"SDE, {sde.noise} noise{calculus}"
    return f"  {name:<16}{kind}: {','.join(default_solvers(name))}"


def _epilog() -> str:
    problems = "\n".join(_problem_line(n) for n in [*PROBLEMS, *SDE_PROBLEMS])
    return (
        "problems (kind: default solvers):\n" + problems + "\n\n"
        "ODE solvers: " + ", ".join(ODE_SOLVERS) + "\n"
        "SDE solvers: " + ", ".join(SDE_SOLVERS) + "\n\n"
        "NAME:CALCULUS (calculus 'ito' or 'stratonovich') sets the calculus of the SDE solvers that have\n"
        "both (" + ", ".join(_calculus_solvers()) + "), e.g. milstein:stratonovich; without it they use\n"
        "the problem's. A solver of the other calculus than the problem's (e.g. heun_sde, a Stratonovich\n"
        "method, on the Itô gbm) solves the same SDE rewritten in its calculus with\n"
        "sk.terms.stratonovich_drift: the same solution, so the errors are comparable.\n\n"
        "examples:\n"
        "  sdekit convergence --problem exp-sin --solvers euler,rk4,dopri8\n"
        "  sdekit convergence --problem ou --solvers shark,sra1\n"
        "  sdekit convergence --problem gbm --solvers euler_maruyama,milstein,heun_sde --paths 300"
    )


def _calculus_solvers() -> list[str]:
    """SDE solvers whose factory takes a `calculus` argument."""
    return [n for n in SDE_SOLVERS if "calculus" in inspect.signature(getattr(sk.solvers, n)).parameters]


def add_convergence_parser(subparsers) -> None:
    """Register `sdekit convergence` on `subparsers`."""
    parser = subparsers.add_parser(
        "convergence",
        help="measure orders of convergence: prints a table and saves a log-log plot",
        description="Measure each solver's order of convergence on a built-in problem: ODEs against exact or "
        "reference solutions; SDEs in the strong sense, on the same Brownian paths at every resolution.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--problem", default="exp-sin", choices=[*PROBLEMS, *SDE_PROBLEMS], metavar="PROBLEM",
                        help="built-in problem (listed below; default: exp-sin)")
    parser.add_argument("--solvers", default=None, metavar="NAME[:CALCULUS],...",
                        help="comma-separated solvers (listed below; default: per problem, listed below)")
    parser.add_argument("--levels", type=int, nargs="+", default=None, metavar="N",
                        help="at least three increasing step counts for every solver (default: per solver order for "
                        f"ODEs, {' '.join(map(str, DEFAULT_SDE_LEVELS))} for SDEs)")
    parser.add_argument("--paths", type=int, default=500, help="SDE problems: number of Brownian paths (default: 500)")
    parser.add_argument("--seed", type=int, default=0, help="SDE problems: PRNG seed of the paths (default: 0)")
    parser.add_argument("--out", default="out", help="directory for the plot (PNG) and table (markdown)")
    parser.add_argument("--no-plot", action="store_true", help="write only the table (no matplotlib needed)")
    parser.set_defaults(run=run_convergence)


def fail(message: str) -> NoReturn:
    """Stop with a one-line message on stderr and exit status 2 (argparse's usage-error status)."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_solver_specs(text: str, problem: str) -> list[SolverSpec]:
    """Split `--solvers` and check each name and `:calculus` suffix against the problem's kind."""
    known = usable_solvers(problem)
    specs = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            fail(f"empty solver name in --solvers {text!r}")
        name, sep, calculus = entry.partition(":")
        if name not in known:
            fail(f"{_why_not(name, problem)}; for {problem} choose from {', '.join(known)}")
        if sep:
            if name not in _calculus_solvers():
                fail(f"{entry!r}: {_fixed_calculus(name)}; only {', '.join(_calculus_solvers())} take ':ito' or "
                     "':stratonovich'")
            if calculus not in CALCULI:
                fail(f"{entry!r}: the calculus must be 'ito' or 'stratonovich', got {calculus!r}")
        if any(s.text == entry for s in specs):
            fail(f"solver {entry!r} is listed twice")
        specs.append(SolverSpec(entry, name, calculus or None))
    return specs


def usable_solvers(problem: str) -> list[str]:
    """The solvers that can be measured on `problem`: the ODE methods for an ODE problem; the SDE
    methods that support its noise type for an SDE problem."""
    if problem in PROBLEMS:
        return list(ODE_SOLVERS)
    test = SDE_PROBLEMS[problem]
    return [n for n in SDE_SOLVERS if sde_solver_mismatch(test, getattr(sk.solvers, n)()) is None]


def _why_not(name: str, problem: str) -> str:
    if name not in ODE_SOLVERS + SDE_SOLVERS:
        return f"unknown solver {name!r}"
    if problem in PROBLEMS:
        return f"{name} is an SDE method and {problem} an ODE problem"
    return sde_solver_mismatch(SDE_PROBLEMS[problem], getattr(sk.solvers, name)(), name)


def _fixed_calculus(name: str) -> str:
    facts = getattr(sk.solvers, name)().sde
    return f"{name} is an ODE method" if facts is None else f"{name} has a fixed calculus ({facts.calculus})"


def build_solver(spec: SolverSpec, problem: str) -> sk.solvers.Solver:
    """The solver for `spec`; a solver with a calculus option gets the problem's unless the spec names one."""
    factory = getattr(sk.solvers, spec.name)
    if spec.name not in _calculus_solvers():
        return factory()
    return factory(spec.calculus or SDE_PROBLEMS[problem].problem.calculus)


def check_levels(levels: list[int] | None, problem: str) -> None:
    """At least three increasing positive step counts, within what the problem's reference can judge."""
    if levels is None:
        return
    if len(levels) < 3 or any(b <= a for a, b in zip(levels, levels[1:])) or levels[0] < 1:
        fail(f"--levels needs at least three increasing positive step counts, got {' '.join(map(str, levels))}")
    if problem in PROBLEMS and PROBLEMS[problem].exact is None:
        bad = [n for n in levels if REFERENCE_STEPS % n]
        if bad:
            fail(f"{problem} is judged against a {REFERENCE_STEPS}-step reference: --levels must divide "
                 f"{REFERENCE_STEPS}, and {' '.join(map(str, bad))} do not")
    if problem in SDE_PROBLEMS:
        reference = SDE_PROBLEMS[problem].reference
        if reference is not None and levels[-1] > reference.max_level:
            fail(f"the {problem} reference ({reference.solver.name}, {reference.steps} steps) is accurate enough "
                 f"for step counts up to {reference.max_level}, got {levels[-1]}")


def check_output(out: pathlib.Path, plot: bool) -> None:
    """The output directory must be creatable, and matplotlib importable when a plot is wanted."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"cannot use --out {str(out)!r}: {err.strerror or err}")
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("the plot needs matplotlib: pip install 'sdekit[plots]', or pass --no-plot for the table alone")


def conversion_notes(test: SDETestProblem, solvers: dict) -> list[str]:
    """One line per solver that runs on the problem rewritten in its own calculus."""
    return [
        f"note: {name} ({s.sde.calculus}) solves the {test.problem.calculus} problem {test.name} in "
        f"{s.sde.calculus} form (sk.terms.stratonovich_drift): the same solution."
        for name, s in solvers.items() if problem_for(test, s) is not test.problem
    ]


def run_convergence(args: argparse.Namespace) -> int:
    """Check every argument, then run the experiment, print the table and save the table and plot."""
    is_sde = args.problem in SDE_PROBLEMS
    specs = parse_solver_specs(args.solvers or ",".join(default_solvers(args.problem)), args.problem)
    solvers = {spec.text: build_solver(spec, args.problem) for spec in specs}
    check_levels(args.levels, args.problem)
    if is_sde and args.paths < 2:
        fail(f"--paths needs at least 2 paths (for the bootstrap interval), got {args.paths}")
    out = pathlib.Path(args.out)
    check_output(out, not args.no_plot)

    if is_sde:
        test = SDE_PROBLEMS[args.problem]
        for note in conversion_notes(test, solvers):
            print(note)
        levels = args.levels or list(DEFAULT_SDE_LEVELS)
        results = sde_strong_order_experiment(test, solvers, levels, args.paths, jax.random.key(args.seed))
        title = f"{test.name} ({test.problem.noise} noise, {args.paths} paths): {test.description}"
        ylabel = "mean strong error at T"
    else:
        test = PROBLEMS[args.problem]
        counts = {name: args.levels or default_step_counts(solver) for name, solver in solvers.items()}
        results = ode_order_experiment(test, solvers, counts)
        title = f"{test.name}: {test.description}"
        ylabel = "max error over the grid"
    table = order_table(results, title)
    print(table)
    table_path = out / f"convergence_{test.name}.md"
    table_path.write_text(table + "\n")
    saved = [table_path]
    if not args.no_plot:
        saved.insert(0, save_order_plot(results, f"Convergence on {test.name}", out / f"convergence_{test.name}.png",
                                        ylabel=ylabel))
    print(f"\nSaved {' and '.join(map(str, saved))}")
    return 0
