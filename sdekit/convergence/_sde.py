"""Strong orders of SDE solvers: errors on the *same* Brownian paths across resolutions
(one virtual Brownian tree per path, queried on every grid), with a bootstrap interval."""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk

from ._experiment import OrderFit, SolverResult


class Reference(NamedTuple):
    """A fine-grid reference solution on the same Brownian paths as the solvers under test.

    Attributes:
        problem: the test problem, possibly rewritten in an equivalent form the reference solver
            handles better (another calculus, or `"scalar"` noise for a one-dimensional one): the
            same solution process.
        solver: a solver of at least the order of those it judges.
        steps: its number of steps.
        max_level: the finest step count the reference is accurate enough to judge: its error is
            at least 100 times below every default solver's at this level
            (`tests/convergence/test_references.py` checks it); finer levels are refused.
    """

    problem: sk.SDE
    solver: sk.solvers.Solver
    steps: int
    max_level: int


class SDETestProblem(NamedTuple):
    """An SDE for strong-order experiments.

    Attributes:
        name: registry key.
        problem: the SDE.
        y0: initial state (a function returning it).
        t1: final time (t0 = 0).
        brownian_shape: the Brownian motion's shape.
        exact: `tree -> y(t1)` on that tree's path, or `None` to use `reference`.
        reference: the `Reference` used when `exact` is None.
        description: one line for tables.
    """

    name: str
    problem: sk.SDE
    y0: Callable[[], object]
    t1: float
    brownian_shape: tuple
    exact: Callable | None
    reference: Reference | None
    description: str


def _gbm() -> SDETestProblem:
    mu, sigma = 0.5, 0.8
    return SDETestProblem(
        "gbm", sk.SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal", calculus="ito"),
        lambda: jnp.ones(()), 1.0, (),
        lambda tree: jnp.exp((mu - sigma**2 / 2) * 1.0 + sigma * tree.evaluate(1.0)), None,
        "geometric Brownian motion dy = 0.5 y dt + 0.8 y dW (Itô), exact solution",
    )


def _ou() -> SDETestProblem:
    # An Ornstein-Uhlenbeck-like process with a nonlinear restoring force. The curvature of the
    # drift (f'' = 9 sin 3y) against unit noise makes the h^1.5 error term of order-1.5 methods
    # dominate from 16 steps on. (With the former drift -(y + sin y) and noise 0.6, f'' sigma^2 was so
    # small that ShARK and SRA1 showed their h^2 drift error, slope 2.0, on 16..256 steps.)
    sde = sk.SDE(lambda t, y, a: -jnp.sin(3 * y), lambda t, y, a: jnp.ones_like(y), noise="additive")
    # ShARK (strong order 1.5) 64 times finer than the finest level judged: its error is ~500 times
    # below ShARK's and SRA1's there. (Milstein, order 1 for additive noise, on 4096 steps was coarser
    # than order-1.5 solvers on 256 steps and bent their fitted slopes down to ~0.85.)
    return SDETestProblem(
        "ou", sde, lambda: jnp.zeros(()), 1.0, (), None, Reference(sde, sk.solvers.shark(), 16384, 256),
        "additive noise dy = -sin(3y) dt + dW, reference: ShARK on 16384 steps of the same path",
    )


def _commutative() -> SDETestProblem:
    def diffusion(t, y, a):
        return jnp.stack([jnp.array([0.3, 0.5], y.dtype) * y, jnp.array([0.2, -0.4], y.dtype) * y], axis=-1)

    def exact(tree):
        w = tree.evaluate(1.0)
        drift = jnp.array([0.1, -0.2], w.dtype) - 0.5 * jnp.array([0.13, 0.41], w.dtype)
        return jnp.exp(drift + jnp.array([0.3, 0.5], w.dtype) * w[0] + jnp.array([0.2, -0.4], w.dtype) * w[1])

    return SDETestProblem(
        "commutative", sk.SDE(lambda t, y, a: jnp.array([0.1, -0.2], y.dtype) * y, diffusion, noise="commutative"),
        lambda: jnp.ones(2), 1.0, (2,), exact, None,
        "2-D linear SDE with two commuting noises (Itô), exact solution",
    )


def _cir() -> SDETestProblem:
    kappa, theta, sigma = 2.0, 1.0, 0.5  # Feller condition 2 kappa theta > sigma^2 holds
    sde = sk.SDE(lambda t, y, a: kappa * (theta - y), lambda t, y, a: sigma * jnp.sqrt(jnp.maximum(y, 0.0)),
                 noise="diagonal", calculus="ito")
    # No closed form on a path. The reference is SLOW-RK, strong order 1.5 for scalar noise, on the
    # Stratonovich form (same solution; one Brownian motion, so "diagonal" is "scalar" noise here).
    strat = sk.terms.stratonovich_drift(sde)
    reference = sk.SDE(strat.drift, strat.diffusion, noise="scalar", calculus="stratonovich")
    return SDETestProblem(
        "cir", sde, lambda: jnp.ones(()), 1.0, (), None, Reference(reference, sk.solvers.slow_rk(), 16384, 256),
        "Cox-Ingersoll-Ross dy = 2(1 - y) dt + 0.5 sqrt(y) dW (Itô), reference: SLOW-RK (order 1.5) on 16384 "
        "steps of the same path",
    )


def _noncommutative() -> SDETestProblem:
    r"""$y = (W_1, W_2, e^{c t + A_{12}})$, with $A_{12}$ the Lévy area: a non-commutative SDE whose
    solution on the tree's own (W, A) path is known, since its vector fields generate a nilpotent
    (Heisenberg) Lie algebra. Milstein's method with the area still has strong order 1 on it (it
    truncates the exponential's Taylor series); without the area, order 1/2."""
    c = 0.25

    def drift(t, y, a):
        # Itô form: the Stratonovich drift c y3 plus 1/2 sum_j (dg_j) g_j = (y1^2 + y2^2) y3 / 8.
        zero = jnp.zeros_like(y[0])
        return jnp.stack([zero, zero, (c + (y[0] ** 2 + y[1] ** 2) / 8) * y[2]])

    def diffusion(t, y, a):
        # dy3 = y3 dA12 with dA12 = (y1 dW2 - y2 dW1) / 2 (Stratonovich); [g_1, g_2] = (0, 0, y3) != 0.
        one, zero = jnp.ones_like(y[0]), jnp.zeros_like(y[0])
        return jnp.stack([jnp.stack([one, zero]), jnp.stack([zero, one]), jnp.stack([-y[1] * y[2], y[0] * y[2]]) / 2])

    def exact(tree):
        inc = tree.increment(0.0, 1.0)
        return jnp.stack([inc.W[0], inc.W[1], jnp.exp(c + inc.A[0, 1])])

    return SDETestProblem(
        "noncommutative", sk.SDE(drift, diffusion, noise="general", calculus="ito"),
        lambda: jnp.array([0.0, 0.0, 1.0]), 1.0, (2,), exact, None,
        "3-D SDE y = (W1, W2, exp(t/4 + A12)) with non-commuting noises (Itô), exact solution on the tree's "
        "path and Lévy area",
    )


SDE_PROBLEMS = {p.name: p for p in (_gbm(), _ou(), _commutative(), _cir(), _noncommutative())}


def sde_solver_mismatch(test: SDETestProblem, solver: sk.solvers.Solver, name: str | None = None) -> str | None:
    """Why `solver` (called `name` in the message; default: its own name) cannot be measured on
    `test`, in one line, or `None` if it can.

    A difference of calculus is no obstacle: `sde_strong_order_experiment` then solves the same
    SDE rewritten in the solver's calculus (see `problem_for`).
    """
    noise, name = test.problem.noise, name or solver.name
    if solver.sde is None:
        return f"{name} is an ODE method and {test.name} an SDE problem"
    if solver.sde.strong(noise) is None:
        supported = ", ".join(n for n, _ in solver.sde.strong_order)
        return f"{name} does not solve {noise}-noise SDEs like {test.name} (it supports: {supported} noise)"
    return None


def problem_for(test: SDETestProblem, solver: sk.solvers.Solver) -> sk.SDE:
    """The test's SDE in the calculus `solver` converges in: itself, or its drift-corrected form
    (`sk.terms.stratonovich_drift`), which has the same solution, so the exact solution or the
    reference still applies. Additive noise needs no conversion (the two calculi coincide)."""
    problem = test.problem
    if problem.noise == "additive" or solver.sde.calculus == problem.calculus:
        return problem
    return sk.terms.stratonovich_drift(problem)


def bootstrap_order(step_sizes, path_errors, key, n_boot: int = 400) -> OrderFit:
    """Slope of log(mean error) on log(h), with a 95% percentile bootstrap interval over paths.

    Args:
        step_sizes: (levels,) step sizes.
        path_errors: (levels, paths) errors of each path at each level.
    """
    x = np.log(np.asarray(step_sizes))
    errors = np.asarray(path_errors)
    slope = np.polyfit(x, np.log(errors.mean(axis=1)), 1)[0]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1].item())
    picks = rng.integers(0, errors.shape[1], size=(n_boot, errors.shape[1]))
    slopes = [np.polyfit(x, np.log(errors[:, p].mean(axis=1)), 1)[0] for p in picks]
    low, high = np.percentile(slopes, [2.5, 97.5])
    return OrderFit(float(slope), float(low), float(high))


def path_trees(test: SDETestProblem, solvers: list[sk.solvers.Solver], finest: int, n_paths: int, key):
    """One Brownian tree per path (vmapped), fine enough for `finest` steps and with the Lévy areas
    that `solvers` need; the step grids are then exact queries of the same paths."""
    levy, area = sk.brownian.tree_options(*[s.sde.levy_area for s in solvers])
    tol = 2.0 ** -(int(np.ceil(np.log2(finest))) + 1)
    keys = jax.random.split(key, n_paths)
    return jax.vmap(lambda k: sk.BrownianTree(k, 0.0, test.t1, shape=test.brownian_shape, tol=tol, levy=levy,
                                              area=area))(keys)


def final_values(test: SDETestProblem, problem: sk.SDE, solver: sk.solvers.Solver, num_steps: int, trees,
                 pad_to: int | None = None):
    """y(t1) of a `num_steps`-step solve on each path (vmapped over `trees`). With `pad_to`, the
    grid is padded to `pad_to` steps (`sk.StepTo.pad`): every step count up to it then reuses one
    compiled solve (for the same `problem` and `solver` objects)."""
    grid = jnp.linspace(0.0, test.t1, num_steps + 1)
    controller = sk.StepTo(grid) if pad_to is None else sk.StepTo.pad(grid, pad_to)
    return _final_values(problem, solver, test.y0(), test.t1, controller, trees)


@eqx.filter_jit
def _final_values(problem, solver, y0, t1, controller, trees):
    def run(tree):
        return sk.solve(problem, solver, 0.0, t1, y0, controller=controller, brownian=tree).ys[-1]

    return jax.vmap(run)(trees)


def path_errors(approx, truth) -> np.ndarray:
    """Per-path error: the largest component of |approx - truth|."""
    n_paths = approx.shape[0]
    return np.asarray(jnp.max(jnp.abs(approx - truth).reshape(n_paths, -1), axis=1))


def sde_strong_order_experiment(
    test: SDETestProblem,
    solvers: dict[str, sk.solvers.Solver],
    step_counts: list[int],
    n_paths: int = 500,
    key=None,
) -> list[SolverResult]:
    """Strong error $E|y_N - y(T)|$ of each solver at each resolution, on the same `n_paths`
    Brownian paths (one tree per path, queried on every grid), and the fitted strong order with a
    bootstrap interval. Runs in float64.

    A solver of the other calculus than the problem's solves the same SDE rewritten in its own
    calculus (`problem_for`): the same solution, so the comparison is unchanged.

    Raises:
        ValueError: before any computation, if a solver does not solve the problem's noise type,
            or (for a problem with a reference) a step count is finer than the reference can judge.

    Examples:
        >>> import jax, sdekit as sk
        >>> from sdekit.convergence import SDE_PROBLEMS, sde_strong_order_experiment
        >>> [r] = sde_strong_order_experiment(SDE_PROBLEMS["gbm"], {"milstein": sk.solvers.milstein()},
        ...                                   [8, 16, 32, 64], n_paths=200, key=jax.random.key(0))
        >>> bool(0.8 < r.fit.order < 1.2)
        True
    """
    problems = []
    for name, solver in solvers.items():
        mismatch = sde_solver_mismatch(test, solver, name)
        if mismatch is not None:
            raise ValueError(f"{mismatch}.")
        problems.append(problem_for(test, solver))
    if test.exact is None and max(step_counts) > test.reference.max_level:
        raise ValueError(f"The {test.name} reference judges step counts up to {test.reference.max_level}, "
                         f"got {max(step_counts)}.")
    key = jax.random.key(0) if key is None else key
    with jax.enable_x64(True):
        needs = list(solvers.values()) + ([] if test.exact is not None else [test.reference.solver])
        finest = max(step_counts) if test.exact is not None else test.reference.steps
        trees = path_trees(test, needs, finest, n_paths, key)
        if test.exact is not None:
            truth = jax.jit(jax.vmap(test.exact))(trees)
        else:
            ref = test.reference
            truth = final_values(test, ref.problem, ref.solver, ref.steps, trees)
        pad_to = max(step_counts)
        step_sizes = test.t1 / np.asarray(step_counts, dtype=np.float64)
        results = []
        for (name, solver), problem in zip(solvers.items(), problems):
            errors = np.stack([path_errors(final_values(test, problem, solver, n, trees, pad_to), truth) for n in step_counts])
            fit = bootstrap_order(step_sizes, errors, key)
            theory = solver.sde.strong(test.problem.noise)
            results.append(SolverResult(name, float(theory), step_sizes, errors.mean(axis=1), fit))
    return results
