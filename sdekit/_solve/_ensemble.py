"""Ensembles of SDE paths: one Brownian tree per path, all derived from one key."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Args, Key, Y
from ..brownian import BrownianTree, tree_options
from ..controllers import StepTo
from ..solvers import Solver
from ..terms import SDE
from ._saveat import SaveAt
from ._solution import Solution
from ._solve import solve


def sample_paths(
    problem: SDE,
    solver: Solver,
    y0: Y,
    ts,
    key: Key,
    n_paths: int,
    *,
    args: Args = None,
    substeps: int = 1,
    tol: float | None = None,
    levy: str | None = None,
    brownian_shape=None,
) -> Solution:
    """Solve `n_paths` independent paths of an SDE on a fixed grid, saving at `ts`.

    Path `i` is driven by `BrownianTree(jax.random.split(key, n_paths)[i], ...)`, so a path
    does not depend on `n_paths`'s batch layout beyond its index, nor on `substeps`' resolution:
    refining `substeps` solves the *same* Brownian paths more finely (what strong-order
    experiments need). The steps are the grid `ts` with each interval cut into `substeps`
    equal steps, run as one `lax.scan` per path over `grid_increments`, vmapped over paths.

    Args:
        problem: the SDE.
        solver: an SDE solver.
        y0: initial state (shared by all paths).
        ts: save times, increasing (concrete: they fix the grid and the tree's depth).
        key: PRNG key; path keys are `jax.random.split(key, n_paths)`.
        n_paths: number of paths (static).
        args: passed to drift and diffusion.
        substeps: steps per save interval.
        tol: the trees' tol (default: half the smallest step, rounded down to a power of 2).
        levy: the trees' Lévy area (default: what the solver needs; `"space-space"` builds trees with
            `levy="space-time", area=True`).
        brownian_shape: the Brownian motion's shape (default: the structure of `y0` for
            diagonal and additive noise, `()` for scalar noise; required for general and
            commutative noise, e.g. `(m,)`).

    Returns:
        A `Solution` whose `ts` is `ts` and whose `ys` leaves have shape `(n_paths, len(ts), ...)`.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.2 * y, noise="diagonal")
        >>> sol = sk.sample_paths(gbm, sk.solvers.euler_maruyama(), jnp.ones(()),
        ...                       jnp.linspace(0.0, 1.0, 11), jax.random.key(0), 1000, substeps=10)
        >>> sol.ys.shape
        (1000, 11)
    """
    if not isinstance(problem, SDE):
        raise TypeError("sample_paths solves an sk.SDE.")
    ts_np = np.asarray(ts, dtype=np.float64)
    if ts_np.ndim != 1 or ts_np.shape[0] < 2 or np.any(np.diff(ts_np) <= 0):
        raise ValueError("sample_paths: ts must be a concrete, strictly increasing 1-D array of at least two times.")
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be a positive int, got {substeps!r}.")
    t0, t1 = float(ts_np[0]), float(ts_np[-1])
    dtype = jnp.result_type(float)
    ts = jnp.asarray(ts_np, dtype)
    fractions = jnp.arange(substeps, dtype=dtype) / substeps
    grid = jnp.concatenate([(ts[:-1, None] + fractions[None, :] * jnp.diff(ts)[:, None]).reshape(-1), ts[-1:]])
    if tol is None:
        smallest = float(np.min(np.diff(ts_np))) / substeps
        tol = 2.0 ** math.floor(math.log2(smallest / 2))
    tree_levy, area = tree_options(levy or solver.sde.levy_area)
    shape = brownian_shape if brownian_shape is not None else _default_shape(problem, y0)

    def one(path_key):
        tree = BrownianTree(path_key, t0, t1, shape=shape, tol=tol, levy=tree_levy, area=area)
        return solve(problem, solver, t0, t1, y0, args, controller=StepTo(grid), saveat=SaveAt(ts=ts), brownian=tree)

    return jax.vmap(one)(jax.random.split(key, n_paths))


def _default_shape(problem: SDE, y0):
    if problem.noise in ("diagonal", "additive"):
        return jax.tree.map(lambda y: jax.ShapeDtypeStruct(jnp.shape(y), jnp.result_type(y)), y0) \
            if not hasattr(y0, "shape") else tuple(y0.shape)
    if problem.noise == "scalar":
        return ()
    raise ValueError(f"sample_paths: pass brownian_shape=(m,) for {problem.noise!r} noise.")
