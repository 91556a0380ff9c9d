"""Order-of-convergence experiments: errors against an exact or reference solution on a
sequence of step sizes, and a fitted order with a confidence interval."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk

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


def _grid_errors(test: TestProblem, solver: sk.solvers.Solver, num_steps: int, reference, pad_to: int) -> float:
    """Largest error over the grid points of a fixed-step solve with `num_steps` steps (its grid
    padded to `pad_to` steps: one compilation for every step count of a solver)."""
    grid = jnp.linspace(test.t0, test.t1, num_steps + 1)
    sol = sk.solve(test.problem, solver, test.t0, test.t1, test.y0(), controller=sk.StepTo.pad(grid, pad_to),
                   saveat=sk.SaveAt(steps=True))
    approx = np.asarray(sol.ys, dtype=np.float64)[:num_steps].reshape(num_steps, -1)
    exact = np.asarray(reference(np.asarray(grid[1:], dtype=np.float64)), dtype=np.float64).reshape(num_steps, -1)
    return float(np.max(np.abs(approx - exact)))


#: Reference resolution: Dopri8 on this many fixed steps, a multiple of every default step count
#: (3 * 2**12), so that reference values sit exactly on each test grid (no interpolation error).
REFERENCE_STEPS = 12288


def _two_sum(a, b):
    """`a + b` as `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def compensated_solve(problem: sk.ODE, solver: sk.solvers.Solver, t0: float, t1: float, y0, num_steps: int):
    """A fixed-step solve whose state is carried as an unevaluated sum `hi + lo`, returning the
    `(num_steps, ...)` values at the grid points after `t0`.

    Why: with a plain float64 state, each of the N steps rounds `y + dy` by about eps |y|, and these
    add up to ~sqrt(N) eps |y| (5e-14 for 12288 steps of Van der Pol), only ~20 times below what
    Tsit5 and Dopri8 reach on their finest default grids. Here each step computes only the
    increment (the solver steps `z' = f(t, hi + z)` from `z = 0`, so the increment carries full
    relative precision) and TwoSum keeps the rounding of `hi + increment` in `lo`. What remains is
    eps |y| in the vector field's argument, a perturbation that does not accumulate with N.
    """
    shifted = sk.ODE(lambda t, z, base: problem.vector_field(t, base + z, None))
    grid = jnp.linspace(t0, t1, num_steps + 1)

    def step(carry, ends):
        hi, lo = carry
        zero = jax.tree.map(jnp.zeros_like, hi)
        state = solver.init(shifted, ends[0], zero, hi)
        increment, _, _, _ = solver.step(shifted, ends[0], ends[1], zero, hi, None, state)
        new_hi, err = _two_sum(hi, increment + lo)
        return (new_hi, err), new_hi + err

    y0 = jnp.asarray(y0)
    _, values = jax.lax.scan(step, (y0, jnp.zeros_like(y0)), jnp.stack([grid[:-1], grid[1:]], axis=1))
    return values


def _reference(test: TestProblem, step_counts):
    if test.exact is not None:
        return lambda ts: np.stack([np.asarray(test.exact(t)) for t in ts])
    if any(REFERENCE_STEPS % n for n in step_counts):
        raise ValueError(f"Step counts for reference problems must divide {REFERENCE_STEPS}, got {step_counts}.")
    solve = jax.jit(lambda y0: compensated_solve(test.problem, sk.solvers.dopri8(), test.t0, test.t1, y0,
                                                 REFERENCE_STEPS))
    values = np.asarray(solve(test.y0()), dtype=np.float64)

    def reference(ts):
        index = np.rint((np.asarray(ts) - test.t0) / (test.t1 - test.t0) * REFERENCE_STEPS).astype(int)
        return values[index - 1]

    return reference


def ode_order_experiment(test: TestProblem, solvers: dict[str, sk.solvers.Solver], step_counts: dict[str, list[int]]) -> list[SolverResult]:
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
            errors = np.array([_grid_errors(test, solver, n, reference, max(counts)) for n in counts])
            step_sizes = (test.t1 - test.t0) / np.asarray(counts, dtype=np.float64)
            results.append(SolverResult(name, float(solver.order), step_sizes, errors, fit_order(step_sizes, errors)))
    return results


def default_step_counts(solver: sk.solvers.Solver) -> list[int]:
    """Step counts in the asymptotic range and above float64 rounding, by order."""
    if solver.order >= 8:
        return [16, 24, 32, 48, 64]
    if solver.order >= 5:
        return [128, 192, 256, 384, 512]
    return [32, 64, 128, 256, 512] if solver.order > 1 else [64, 128, 256, 512, 1024]
