"""`sdekit convergence`: run an order experiment from the command line."""

import argparse
import pathlib

from .. import solvers as solver_module
from ._experiment import default_step_counts, ode_order_experiment
from ._problems import PROBLEMS
from ._report import order_table, save_order_plot

ODE_SOLVERS = ["euler", "heun", "midpoint", "ralston", "bosh3", "rk4", "tsit5", "dopri5", "dopri8"]


def add_convergence_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convergence",
        help="measure orders of convergence: prints a table and saves a log-log plot",
        description="Measure each solver's order of convergence on a built-in problem.",
    )
    parser.add_argument("--problem", default="exp-sin", choices=sorted(PROBLEMS), help="built-in problem")
    parser.add_argument(
        "--solvers", default="euler,heun,bosh3,rk4,tsit5,dopri8",
        help=f"comma-separated solver names (from: {', '.join(ODE_SOLVERS)})",
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=None,
        help="step counts to use for every solver (default: chosen per solver order)",
    )
    parser.add_argument("--out", default="out", help="directory for the plot (PNG) and table (markdown)")
    parser.set_defaults(run=run_convergence)


def run_convergence(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.solvers.split(",") if n.strip()]
    unknown = [n for n in names if n not in ODE_SOLVERS]
    if unknown:
        raise SystemExit(f"sdekit convergence: unknown solver(s) {unknown}; choose from {ODE_SOLVERS}.")
    if args.levels is not None and (len(args.levels) < 3 or sorted(args.levels) != args.levels):
        raise SystemExit("sdekit convergence: --levels needs at least three increasing step counts.")
    solvers = {name: getattr(solver_module, name)() for name in names}
    counts = {name: args.levels or default_step_counts(solver) for name, solver in solvers.items()}
    test = PROBLEMS[args.problem]
    results = ode_order_experiment(test, solvers, counts)
    table = order_table(results, f"{test.name}: {test.description}")
    print(table)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"convergence_{test.name}.md").write_text(table + "\n")
    plot = save_order_plot(results, f"Convergence on {test.name}", out / f"convergence_{test.name}.png")
    print(f"\nSaved {plot} and {out / f'convergence_{test.name}.md'}")
    return 0
