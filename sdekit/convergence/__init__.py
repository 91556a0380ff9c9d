"""Order-of-convergence experiments, their tables and plots, and the `sdekit convergence` CLI."""

from ._experiment import (
    OrderFit as OrderFit,
    SolverResult as SolverResult,
    default_step_counts as default_step_counts,
    fit_order as fit_order,
    ode_order_experiment as ode_order_experiment,
)
from ._cli import add_convergence_parser as add_convergence_parser
from ._problems import PROBLEMS as PROBLEMS, TestProblem as TestProblem
from ._report import order_figure as order_figure, order_table as order_table, save_order_plot as save_order_plot
from ._sde import (
    SDE_PROBLEMS as SDE_PROBLEMS,
    Reference as Reference,
    SDETestProblem as SDETestProblem,
    bootstrap_order as bootstrap_order,
    problem_for as problem_for,
    sde_solver_mismatch as sde_solver_mismatch,
    sde_strong_order_experiment as sde_strong_order_experiment,
)

__all__ = [
    "add_convergence_parser",
    "PROBLEMS",
    "Reference",
    "SDE_PROBLEMS",
    "SDETestProblem",
    "bootstrap_order",
    "order_figure",
    "problem_for",
    "sde_solver_mismatch",
    "sde_strong_order_experiment",
    "OrderFit",
    "SolverResult",
    "TestProblem",
    "default_step_counts",
    "fit_order",
    "ode_order_experiment",
    "order_table",
    "save_order_plot",
]
