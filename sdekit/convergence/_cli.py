"""`sdekit convergence`: run an order experiment from the command line."""

import argparse
import pathlib

from .. import solvers as solver_module
from ._experiment import default_step_counts, ode_order_experiment
from ._problems import PROBLEMS
from ._report import order_table, save_order_plot
from ._sde import SDE_PROBLEMS, sde_strong_order_experiment

ODE_SOLVERS = ["euler", "heun", "midpoint", "ralston", "bosh3", "rk4", "tsit5", "dopri5", "dopri8"]


def add_convergence_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convergence",
        help="measure orders of convergence: prints a table and saves a log-log plot",
        description="Measure each solver's order of convergence on a built-in problem.",
    )
    parser.add_argument(
        "--problem", default="exp-sin", choices=sorted(PROBLEMS) + sorted(SDE_PROBLEMS),
        help="built-in problem: ODEs (orders against exact/reference solutions) or SDEs (strong orders on the "
        "same Brownian paths across resolutions)",
    )
    parser.add_argument(
        "--solvers", default="euler,heun,bosh3,rk4,tsit5,dopri8",
        help=f"comma-separated solver names (from: {', '.join(ODE_SOLVERS)})",
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=None,
        help="step counts to use for every solver (default: chosen per solver order)",
    )
    parser.add_argument("--paths", type=int, default=500, help="SDE problems: number of Brownian paths")
    parser.add_argument("--seed", type=int, default=0, help="SDE problems: PRNG seed of the paths")
    parser.add_argument("--out", default="out", help="directory for the plot (PNG) and table (markdown)")
    parser.set_defaults(run=run_convergence)


def _solver(name: str):
    base, _, arg = name.partition(":")  # e.g. milstein:stratonovich
    factory = getattr(solver_module, base, None)
    if factory is None or not callable(factory) or base[0].isupper():
        raise SystemExit(f"sdekit convergence: unknown solver {name!r}.")
    return factory(arg) if arg else factory()


def run_convergence(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.solvers.split(",") if n.strip()]
    is_sde = args.problem in SDE_PROBLEMS
    if not is_sde:
        unknown = [n for n in names if n not in ODE_SOLVERS]
        if unknown:
            raise SystemExit(f"sdekit convergence: unknown solver(s) {unknown}; choose from {ODE_SOLVERS}.")
    if args.levels is not None and (len(args.levels) < 3 or sorted(args.levels) != args.levels):
        raise SystemExit("sdekit convergence: --levels needs at least three increasing step counts.")
    solvers = {name: _solver(name) for name in names}
    if is_sde:
        import jax

        test = SDE_PROBLEMS[args.problem]
        for name, solver in solvers.items():
            if solver.sde is None or solver.sde.strong(test.problem.noise) is None:
                raise SystemExit(f"sdekit convergence: {name} does not solve {test.problem.noise!r}-noise SDEs.")
        levels = args.levels or [16, 32, 64, 128, 256]
        results = sde_strong_order_experiment(test, solvers, levels, args.paths, jax.random.key(args.seed))
        title = f"{test.name} ({test.problem.noise} noise, {args.paths} paths): {test.description}"
        ylabel = "mean strong error at T"
    else:
        counts = {name: args.levels or default_step_counts(solver) for name, solver in solvers.items()}
        test = PROBLEMS[args.problem]
        results = ode_order_experiment(test, solvers, counts)
        title = f"{test.name}: {test.description}"
        ylabel = "max error over the grid"
    table = order_table(results, title)
    print(table)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"convergence_{test.name}.md").write_text(table + "\n")
    plot = save_order_plot(results, f"Convergence on {test.name}", out / f"convergence_{test.name}.png", ylabel=ylabel)
    print(f"\nSaved {plot} and {out / f'convergence_{test.name}.md'}")
    return 0
