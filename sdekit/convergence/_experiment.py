"""Order-of-convergence experiments: errors against an exact or reference solution on a
sequence of step sizes, and a fitted order with a confidence interval."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._solve import SaveAt, solve
from ..controllers import StepTo
from ..solvers import Solver
from ._problems import TestProblem


class OrderFit(NamedTuple):
    """A fitted order: slope of log(error) against log(h), with a 95% confidence interval."""

    order: float
    low: float
    high: float


class SolverResult(NamedTuple):
    name: str
    theory: float
    step_sizes: np.ndarray
    errors: np.ndarray
    fit: OrderFit


def fit_order(step_sizes, errors) -> OrderFit:
    """Least-squares slope of log(error) on log(h) with a 95% t-interval from its standard error."""
    from scipy import stats

    x, y = np.log(np.asarray(step_sizes)), np.log(np.asarray(errors))
    result = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * result.stderr if len(x) > 2 else np.inf
    return OrderFit(float(result.slope), float(result.slope - half), float(result.slope + half))


def _grid_errors(test: TestProblem, solver: Solver, num_steps: int, reference) -> float:
    """Largest error over the grid points of a fixed-step solve with `num_steps` steps."""
    grid = jnp.linspace(test.t0, test.t1, num_steps + 1)
    sol = solve(test.problem, solver, test.t0, test.t1, test.y0(), controller=StepTo(grid), saveat=SaveAt(steps=True))
    approx = np.asarray(sol.ys, dtype=np.float64).reshape(num_steps, -1)
    exact = np.asarray(reference(np.asarray(grid[1:], dtype=np.float64)), dtype=np.float64).reshape(num_steps, -1)
    return float(np.max(np.abs(approx - exact)))


#: Reference resolution: Dopri8 on this many fixed steps, a multiple of every default step count
#: (3 * 2**12), so that reference values sit exactly on each test grid (no interpolation error).
REFERENCE_STEPS = 12288


def _reference(test: TestProblem, step_counts):
    if test.exact is not None:
        return lambda ts: np.stack([np.asarray(test.exact(t)) for t in ts])
    from ..solvers import dopri8

    if any(REFERENCE_STEPS % n for n in step_counts):
        raise ValueError(f"Step counts for reference problems must divide {REFERENCE_STEPS}, got {step_counts}.")
    grid = jnp.linspace(test.t0, test.t1, REFERENCE_STEPS + 1)
    sol = solve(test.problem, dopri8(), test.t0, test.t1, test.y0(), controller=StepTo(grid), saveat=SaveAt(steps=True))
    values = np.asarray(sol.ys, dtype=np.float64)

    def reference(ts):
        index = np.rint((np.asarray(ts) - test.t0) / (test.t1 - test.t0) * REFERENCE_STEPS).astype(int)
        return values[index - 1]

    return reference


def ode_order_experiment(test: TestProblem, solvers: dict[str, Solver], step_counts: dict[str, list[int]]) -> list[SolverResult]:
    """Measure each solver's order on `test` (run in float64 for a low rounding floor).

    Args:
        test: a `TestProblem`.
        solvers: name -> `Solver`.
        step_counts: name -> increasing step counts, chosen in the solver's asymptotic range.

    Returns:
        One `SolverResult` per solver.

    Examples:
        >>> import sdekit as sk
        >>> from sdekit.convergence import PROBLEMS, ode_order_experiment
        >>> [r] = ode_order_experiment(PROBLEMS["exp-sin"], {"rk4": sk.solvers.rk4()}, {"rk4": [32, 64, 128, 256]})
        >>> round(r.fit.order)
        4
    """
    with jax.enable_x64(True):
        reference = _reference(test, sorted({n for counts in step_counts.values() for n in counts}))
        results = []
        for name, solver in solvers.items():
            counts = step_counts[name]
            errors = np.array([_grid_errors(test, solver, n, reference) for n in counts])
            step_sizes = (test.t1 - test.t0) / np.asarray(counts, dtype=np.float64)
            results.append(SolverResult(name, float(solver.order), step_sizes, errors, fit_order(step_sizes, errors)))
    return results


def default_step_counts(solver: Solver) -> list[int]:
    """Step counts in the asymptotic range and above float64 rounding, by order."""
    if solver.order >= 8:
        return [16, 24, 32, 48, 64]
    if solver.order >= 5:
        return [128, 192, 256, 384, 512]
    return [32, 64, 128, 256, 512] if solver.order > 1 else [64, 128, 256, 512, 1024]
