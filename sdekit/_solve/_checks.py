"""Validation of a solve's inputs: clear errors before anything runs.

Checks on static facts (solver/controller pairing, shapes, dtypes) raise `ValueError`/`TypeError`
at trace time. Checks on numbers raise `ValueError` when the numbers are concrete, and become
runtime errors (`equinox.error_if`, which also works under `jit` and `vmap`) when traced.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..controllers import ConstantStep, StepTo
from ..solvers import Solver


def is_concrete(x) -> bool:
    return x is not None and not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_static(problem, solver, controller, dt0, max_steps) -> None:
    from ..terms import ODE

    if not isinstance(problem, ODE):
        raise TypeError(f"sk.solve expects a problem such as sk.ODE(f), got {type(problem).__name__}.")
    if callable(solver) and not isinstance(solver, Solver):
        raise TypeError(
            f"Expected a Solver, got the factory {getattr(solver, '__name__', solver)!r}: call it, "
            f"e.g. sk.solvers.{getattr(solver, '__name__', 'tsit5')}()."
        )
    if not isinstance(solver, Solver):
        raise TypeError(f"Expected a Solver (e.g. sk.solvers.tsit5()), got {type(solver).__name__}.")
    if solver.order is None:
        raise ValueError(f"The solver {solver.name} is not an ODE method.")
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int (it sizes static buffers), got {max_steps!r}.")
    if controller.adaptive and not solver.has_error_estimate:
        raise ValueError(
            f"The solver {solver.name} has no embedded error estimate, so it cannot be used with the "
            f"adaptive controller {type(controller).__name__}. Use a solver with one (heun, midpoint, "
            "ralston, bosh3, tsit5, dopri5, dopri8), or fixed steps: sk.ConstantStep() with dt0, or "
            "sk.StepTo(ts)."
        )
    if isinstance(controller, ConstantStep) and dt0 is None:
        raise ValueError("sk.ConstantStep() needs a step size: pass dt0, or use controller=sk.PID(...).")
    if isinstance(controller, StepTo) and dt0 is not None:
        raise ValueError("sk.StepTo(ts) fixes every step: do not pass dt0 as well.")


def check_vector_field(vector_field, t0, y0, args) -> None:
    """The vector field's output must match y0 in structure, shape and dtype."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(y0):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise ValueError(
                f"y0{jax.tree_util.keystr(path)} has dtype {leaf.dtype}; the state must be floating "
                "point (e.g. jnp.asarray(y0, float))."
            )
    out = jax.eval_shape(vector_field, t0, y0, args)
    if jax.tree.structure(out) != jax.tree.structure(y0):
        raise ValueError(
            "The vector field's output does not have the structure of y0: got "
            f"{jax.tree.structure(out)}, expected {jax.tree.structure(y0)}."
        )
    for (path, o), y in zip(jax.tree_util.tree_leaves_with_path(out), jax.tree.leaves(y0)):
        where = jax.tree_util.keystr(path) or "(the state)"
        if o.shape != y.shape:
            raise ValueError(
                f"The vector field returned shape {o.shape} at {where}, but y0 has shape {y.shape} there."
            )
        if o.dtype != y.dtype:
            raise ValueError(
                f"The vector field returned dtype {o.dtype} at {where}, but y0 has dtype {y.dtype} "
                "there; make them agree (the state's dtype is kept through the solve)."
            )


def _number_problems(t0, t1, dt0, saveat_ts, grid):
    """(bad, message) pairs; `bad` is a bool (or traced bool array)."""
    problems = []
    if dt0 is not None:
        problems.append((dt0 == 0, "dt0 must be non-zero."))
        problems.append(
            ((t1 - t0) * dt0 < 0, "dt0 has the wrong sign: it must be positive when t1 > t0 and negative when t1 < t0.")
        )
        problems.append((t0 == t1, "t0 == t1 with a step size dt0: the interval is empty, so there is nothing to step."))
    for name, value in (("t0", t0), ("t1", t1)):
        problems.append((~jnp.isfinite(value), f"{name} must be finite."))
    if saveat_ts is not None and saveat_ts.shape[0] > 0:
        lo, hi = jnp.minimum(t0, t1), jnp.maximum(t0, t1)
        problems.append(
            (jnp.any((saveat_ts < lo) | (saveat_ts > hi)), "SaveAt(ts=...) has times outside [t0, t1].")
        )
        steps = jnp.diff(saveat_ts) * jnp.where(t1 >= t0, 1, -1).astype(saveat_ts.dtype)
        problems.append(
            (jnp.any(steps < 0), "SaveAt(ts=...) must be sorted in the direction of integration (increasing when t1 > t0).")
        )
    if grid is not None:
        problems.append((grid[0] != t0, "StepTo(ts): ts[0] must equal t0."))
        problems.append((grid[-1] != t1, "StepTo(ts): ts[-1] must equal t1."))
        steps = jnp.diff(grid) * jnp.where(t1 >= t0, 1, -1).astype(grid.dtype)
        problems.append((jnp.any(steps <= 0), "StepTo(ts) must be strictly monotonic from t0 to t1."))
    return problems


def check_numbers_eagerly(t0, t1, dt0, saveat_ts, grid) -> bool:
    """Raise ValueError for bad concrete numbers (the usual, non-traced call). Returns whether
    the numbers were concrete, and so checked: then no run-time checks are compiled."""
    if not all(is_concrete(x) for x in (t0, t1, dt0, saveat_ts, grid) if x is not None):
        return False
    for bad, message in _number_problems(t0, t1, dt0, saveat_ts, grid):
        if bool(np.asarray(bad)):
            raise ValueError(message)
    return True


def check_numbers_traced(carrier, t0, t1, dt0, saveat_ts, grid):
    """Attach runtime checks (for traced numbers) to `carrier`, returned unchanged."""
    for bad, message in _number_problems(t0, t1, dt0, saveat_ts, grid):
        if not is_concrete(bad):
            carrier = eqx.error_if(carrier, bad, message)
    return carrier
