"""One path of an ensemble: its Brownian tree from `(key, i)` and its solve."""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._solve import SaveAt, solve
from ..brownian import BrownianTree, tree_options
from ..controllers import StepTo
from ..terms import SDE
from ._per_path import example_value


class PathSpec(NamedTuple):
    """Everything that is the same for all paths (hashable: the ensemble's static structure)."""

    problem: Any
    solver: Any
    t0: float
    t1: float
    controller: Any
    saveat: Any
    dt0: Any
    max_steps: int
    throw: bool
    shape: Any  # the Brownian motion's shape (None for ODEs)
    tol: float | None
    levy: str | None
    area: bool


def path_key(key, i):
    """Path `i`'s key: `fold_in(key, i)`, a function of `(key, i)` only. (`split(key, n)[i]`
    depends on `n` when `jax_threefry_partitionable` is off, so it is not used.)"""
    return jax.random.fold_in(key, i)


def solve_path(spec: PathSpec, key, i, y0_i, args_i):
    """Solve path `i` (an int32 scalar) from its own `y0_i` and `args_i`."""
    tree = None
    if isinstance(spec.problem, SDE):
        tree = BrownianTree(path_key(key, i), spec.t0, spec.t1, shape=spec.shape, tol=spec.tol, levy=spec.levy,
                            area=spec.area)
    return solve(spec.problem, spec.solver, spec.t0, spec.t1, y0_i, args_i, dt0=spec.dt0, controller=spec.controller,
                 saveat=spec.saveat, brownian=tree, max_steps=spec.max_steps, throw=spec.throw)


def path_spec(problem, solver, y0, ts_np, n_paths, *, substeps, controller, saveat, dt0, max_steps, throw, tol, levy,
              brownian_shape) -> PathSpec:
    """The shared structure: the default grid (`ts` cut into `substeps`), save times, the trees'
    options (`tol` defaults to the smallest fixed step, or 2^-12 of the interval for adaptive
    steps, rounded down to a power of two: steps at least `tol` apart are exact, and a shallower
    tree is cheaper to build)."""
    dtype = jnp.result_type(float)
    t0, t1 = float(ts_np[0]), float(ts_np[-1])
    if controller is None:
        fractions = np.arange(substeps) / substeps
        grid = np.concatenate([(ts_np[:-1, None] + fractions[None, :] * np.diff(ts_np)[:, None]).reshape(-1), ts_np[-1:]])
        controller = StepTo(jnp.asarray(grid, dtype))
        smallest = float(np.min(np.diff(ts_np))) / substeps
    elif isinstance(controller, StepTo):
        smallest = float(np.min(np.diff(np.asarray(controller.ts, np.float64))))
    else:
        smallest = (t1 - t0) * 2.0**-12
    if saveat is None:
        saveat = SaveAt(ts=jnp.asarray(ts_np, dtype))
    shape = tree_levy = area = None
    if isinstance(problem, SDE):
        if tol is None:
            tol = 2.0 ** math.floor(math.log2(smallest))
        tree_levy, area = tree_options(levy or solver.sde.levy_area)
        shape = brownian_shape if brownian_shape is not None else _default_shape(problem, example_value(y0, n_paths))
    return PathSpec(problem, solver, t0, t1, controller, saveat, dt0, max_steps, throw, shape, tol, tree_levy, area)


def _default_shape(problem: SDE, y0):
    if problem.noise in ("diagonal", "additive"):
        if hasattr(y0, "shape"):
            return tuple(y0.shape)
        return jax.tree.map(lambda y: jax.ShapeDtypeStruct(jnp.shape(y), jnp.result_type(y)), y0)
    if problem.noise == "scalar":
        return ()
    raise ValueError(f"sample_paths: pass brownian_shape=(m,) for {problem.noise!r} noise.")
