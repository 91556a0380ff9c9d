"""Strong orders of SDE solvers: errors on the *same* Brownian paths across resolutions
(one virtual Brownian tree per path, queried on every grid), with a bootstrap interval."""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._solve import solve
from ..brownian import BrownianTree
from ..brownian._validate import tree_options
from ..controllers import StepTo
from ..solvers import Solver, milstein, milstein_general
from ..terms import SDE
from ._experiment import OrderFit, SolverResult

#: Reference resolution for problems without a closed form: this many steps of the reference
#: solver on the same paths (a multiple of every default step count).
SDE_REFERENCE_STEPS = 4096


class SDETestProblem(NamedTuple):
    """An SDE for strong-order experiments.

    Attributes:
        name: registry key.
        problem: the SDE.
        y0: initial state (a function returning it).
        t1: final time (t0 = 0).
        brownian_shape: the Brownian motion's shape.
        exact: `tree -> y(t1)` on that tree's path, or `None` to use `reference` on a fine grid.
        reference: the solver for the fine-grid reference when `exact` is None.
        description: one line for tables.
    """

    name: str
    problem: SDE
    y0: Callable[[], object]
    t1: float
    brownian_shape: tuple
    exact: Callable | None
    reference: Callable[[], Solver] | None
    description: str


def _gbm() -> SDETestProblem:
    mu, sigma = 0.5, 0.8
    return SDETestProblem(
        "gbm", SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal", calculus="ito"),
        lambda: jnp.ones(()), 1.0, (),
        lambda tree: jnp.exp((mu - sigma**2 / 2) * 1.0 + sigma * tree.evaluate(1.0)), None,
        "geometric Brownian motion dy = 0.5 y dt + 0.8 y dW (Itô), exact solution",
    )


def _ou() -> SDETestProblem:
    return SDETestProblem(
        "ou", SDE(lambda t, y, a: -jnp.sin(y) - y, lambda t, y, a: 0.6 * jnp.ones_like(y), noise="additive"),
        lambda: jnp.ones(()), 1.0, (), None, lambda: milstein("ito"),
        "additive noise dy = -(y + sin y) dt + 0.6 dW, reference: 4096 steps on the same path",
    )


def _commutative() -> SDETestProblem:
    def diffusion(t, y, a):
        return jnp.stack([jnp.array([0.3, 0.5], y.dtype) * y, jnp.array([0.2, -0.4], y.dtype) * y], axis=-1)

    def exact(tree):
        w = tree.evaluate(1.0)
        drift = jnp.array([0.1, -0.2], w.dtype) - 0.5 * jnp.array([0.13, 0.41], w.dtype)
        return jnp.exp(drift + jnp.array([0.3, 0.5], w.dtype) * w[0] + jnp.array([0.2, -0.4], w.dtype) * w[1])

    return SDETestProblem(
        "commutative", SDE(lambda t, y, a: jnp.array([0.1, -0.2], y.dtype) * y, diffusion, noise="commutative"),
        lambda: jnp.ones(2), 1.0, (2,), exact, None,
        "2-D linear SDE with two commuting noises (Itô), exact solution",
    )


def _cir() -> SDETestProblem:
    kappa, theta, sigma = 2.0, 1.0, 0.5  # Feller condition 2 kappa theta > sigma^2 holds
    return SDETestProblem(
        "cir", SDE(lambda t, y, a: kappa * (theta - y), lambda t, y, a: sigma * jnp.sqrt(jnp.maximum(y, 0.0)),
                   noise="diagonal", calculus="ito"),
        lambda: jnp.ones(()), 1.0, (), None, lambda: milstein("ito"),
        "Cox-Ingersoll-Ross dy = 2(1 - y) dt + 0.5 sqrt(y) dW, reference: 4096 steps on the same path",
    )


def _noncommutative() -> SDETestProblem:
    a0 = ((-0.5, 0.2), (0.1, -0.3))
    b1, b2 = ((0.2, 0.6), (0.0, 0.1)), ((0.1, 0.0), (0.6, -0.2))  # b1 b2 != b2 b1

    def diffusion(t, y, a):
        return jnp.stack([jnp.asarray(b1, y.dtype) @ y, jnp.asarray(b2, y.dtype) @ y], axis=-1)

    return SDETestProblem(
        "noncommutative", SDE(lambda t, y, a: jnp.asarray(a0, y.dtype) @ y, diffusion, noise="general"),
        lambda: jnp.ones(2), 1.0, (2,), None, lambda: milstein_general("ito"),
        "2-D linear SDE dy = A y dt + B1 y dW1 + B2 y dW2 with non-commuting B1, B2 (Itô), reference: "
        "4096 Milstein steps with the tree's Lévy area on the same path",
    )


SDE_PROBLEMS = {p.name: p for p in (_gbm(), _ou(), _commutative(), _cir(), _noncommutative())}


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


def sde_strong_order_experiment(
    test: SDETestProblem,
    solvers: dict[str, Solver],
    step_counts: list[int],
    n_paths: int = 500,
    key=None,
) -> list[SolverResult]:
    """Strong error $E|y_N - y(T)|$ of each solver at each resolution, on the same `n_paths`
    Brownian paths (one tree per path, queried on every grid), and the fitted strong order with a
    bootstrap interval. Runs in float64.

    Examples:
        >>> import jax, sdekit as sk
        >>> from sdekit.convergence import SDE_PROBLEMS, sde_strong_order_experiment
        >>> [r] = sde_strong_order_experiment(SDE_PROBLEMS["gbm"], {"milstein": sk.solvers.milstein()},
        ...                                   [8, 16, 32, 64], n_paths=200, key=jax.random.key(0))
        >>> bool(0.8 < r.fit.order < 1.2)
        True
    """
    key = jax.random.key(0) if key is None else key
    with jax.enable_x64(True):
        finest = max(step_counts) if test.exact is not None else SDE_REFERENCE_STEPS
        tol = 2.0 ** -(int(np.ceil(np.log2(finest))) + 1)
        keys = jax.random.split(key, n_paths)
        needs = [s.sde.levy_area for s in solvers.values()]
        if test.exact is None:
            needs.append(test.reference().sde.levy_area)
        options = [tree_options(n) for n in needs]
        area = any(a for _, a in options)
        levy = max((lv for lv, _ in options), key=["increment", "space-time", "space-time-time"].index)
        trees = jax.vmap(lambda k: BrownianTree(k, 0.0, test.t1, shape=test.brownian_shape, tol=tol, levy=levy,
                                                area=area))(keys)

        def final(solver, n):
            grid = jnp.linspace(0.0, test.t1, n + 1)
            run = lambda tree: solve(test.problem, solver, 0.0, test.t1, test.y0(), controller=StepTo(grid), brownian=tree).ys[-1]
            return jax.jit(jax.vmap(run))(trees)

        if test.exact is not None:
            truth = jax.jit(jax.vmap(test.exact))(trees)
        else:
            truth = final(test.reference(), SDE_REFERENCE_STEPS)
        results = []
        for name, solver in solvers.items():
            errors = np.stack([
                np.asarray(jnp.max(jnp.abs(final(solver, n) - truth).reshape(n_paths, -1), axis=1)) for n in step_counts
            ])
            step_sizes = test.t1 / np.asarray(step_counts, dtype=np.float64)
            fit = bootstrap_order(step_sizes, errors, key)
            theory = solver.sde.strong(test.problem.noise)
            results.append(SolverResult(name, float(theory), step_sizes, errors.mean(axis=1), fit))
    return results
