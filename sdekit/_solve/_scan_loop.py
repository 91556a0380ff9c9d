"""Steps through a fixed grid (`StepTo`, or constant steps known at trace time) in `lax.scan`,
in the time variable tau (increasing)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Int, PyTree

from .._results import RESULTS
from . import _progress
from ._common import all_finite, saves_from_grid_steps, tree_where
from ._events import EventState, init_events, step_events, stop_time
from ._inputs import LoopInputs, LoopOutput


def _scan_reporting(body, carry, xs, num_steps: int, meter: int, fractions):
    """`lax.scan(body, carry, xs)` in `_progress.updates_for(num_steps)` chunks (or fewer), reporting
    progress between chunks once the host's mark is passed: the steps themselves run as in the
    plain scan, with no conditional (whose cost per step was a sizeable part of a small
    problem's) and no callback inside them."""
    updates = _progress.updates_for(num_steps)
    chunks = min(updates, num_steps)
    size = num_steps // chunks
    main = chunks * size
    head = jax.tree.map(lambda x: x[:main].reshape((chunks, size) + x.shape[1:]), xs)
    ends = fractions[size:main + 1:size]

    def chunk(c_mark, x):
        c, mark = c_mark
        xs_chunk, after = x
        c, out = lax.scan(body, c, xs_chunk)
        return (c, _progress.report(meter, after, mark)), out

    (c, _), out = lax.scan(chunk, (carry, _progress.begin(meter, fractions.dtype)), (head, ends))
    out = jax.tree.map(lambda x: x.reshape((main,) + x.shape[2:]), out)
    if main < num_steps:
        c, rest = lax.scan(body, c, jax.tree.map(lambda x: x[main:], xs))
        out = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)
    return c, out


def _skipping_zero_steps(solver, problem, args):
    """`solver.step` behind a conditional that skips a zero-length step (a padded grid's repeated
    time): the state stays, the dense output is zeros. Returns `(y1, dense, state1)`."""

    def take(operands):
        t, tnext, y, inc, state = operands
        y1, _, dense, state1 = solver.step(problem, t, tnext, y, args, inc, state)
        return y1, dense, state1

    def step(taken, t, tnext, y, inc, state):
        operands = (t, tnext, y, inc, state)
        shapes = jax.eval_shape(take, operands)

        def skip(operands):
            _, _, y, _, state = operands
            dense = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[1])
            return (jax.tree.map(lambda a, s: a.astype(s.dtype), y, shapes[0]), dense,
                    jax.tree.map(lambda a, s: a.astype(s.dtype), state, shapes[2]))

        return lax.cond(taken, take, skip, operands)

    return step


class _ScanCarry(NamedTuple):
    y: PyTree[Array]
    solver_state: PyTree
    num_accepted: Int[Array, ""]
    events: EventState | None = None  # None without an event
    # Only for solvers whose state reports each step (implicit methods): the first failure's
    # code and the evaluations so far, which vary per step.
    result: Int[Array, ""] | None = None
    num_fevals: Int[Array, ""] | None = None


def scan_loop(inputs: LoopInputs, *, checkpointed: bool = True) -> LoopOutput:
    """Steps through the fixed grid `inputs.grid` (tau) with `lax.scan`: no step-size logic, no
    rejections. With `checkpointed`, each step is a `jax.checkpoint`: the reverse pass stores
    the carry per step and recomputes the stages."""
    problem, solver, grid, saveat, y0, args = inputs.problem, inputs.solver, inputs.grid, inputs.saveat, inputs.y0, inputs.args
    saveat_ts, meter, noise = inputs.saveat_ts, inputs.meter, inputs.noise
    int32 = jnp.int32
    t0, t1 = grid[0], grid[-1]
    solver_state = solver.init(problem, t0, y0, args)
    event = inputs.event
    uses_dense = saveat_ts is not None or saveat.dense or event is not None
    num_grid_steps = grid.shape[0] - 1
    reports = getattr(solver_state, "result", None) is not None
    # A padded grid (`StepTo(ts, padded=True)`) repeats times: those zero-length steps are skipped
    # (a conditional around the step) but counted in `num_accepted`, which in this loop counts
    # the grid steps done, so that `running` below stays one comparison.
    padded = getattr(inputs.controller, "padded", False)
    take_step = _skipping_zero_steps(solver, problem, args) if padded else None
    carry = _ScanCarry(y=y0, solver_state=solver_state, num_accepted=jnp.zeros((), int32),
                       events=None if event is None else init_events(event, t0, y0, args),
                       result=jnp.asarray(int(RESULTS.successful), int32) if reports else None,
                       num_fevals=jnp.asarray(solver.init_fevals, int32) if reports else None)

    def body(c, xs):
        i, t, tnext, inc = xs
        if padded:
            taken = tnext != t
            y1, dense, solver_state1 = take_step(taken, t, tnext, c.y, inc, c.solver_state)
        else:
            taken = True
            y1, _, dense, solver_state1 = solver.step(problem, t, tnext, c.y, args, inc, c.solver_state)
        # After a failure the state freezes: the remaining grid steps change nothing. Whether
        # all steps so far succeeded is `num_accepted == i`, so no result code is carried (a
        # carried value costs a kernel and a copy per step).
        running = c.num_accepted == i
        active = all_finite(y1) & running
        result, num_fevals = c.result, c.num_fevals
        if reports:
            step_ok = solver_state1.result == int(RESULTS.successful)
            result = jnp.where(running & ~step_ok & (c.result == int(RESULTS.successful)), solver_state1.result, c.result)
            num_fevals = c.num_fevals + jnp.where(running & taken, solver_state1.num_fevals, 0).astype(int32)
            active = active & step_ok
        y_new, events = y1, None
        if event is not None:
            # After a terminating event the state freezes as after a failure.
            active = active & ~c.events.stopped
            events, stop, _, y_stop = step_events(event, c.events, solver, dense, t, tnext, y1, args, active & taken)
            y_new = tree_where(stop, y_stop, y1)
        new = _ScanCarry(
            y=tree_where(active, y_new, c.y),
            solver_state=tree_where(active, solver_state1, c.solver_state),
            num_accepted=c.num_accepted + active.astype(int32),
            events=events,
            result=result,
            num_fevals=num_fevals,
        )
        out_y = tree_where(active & taken, y_new, jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), y1)) if saveat.steps else None
        out_dense = dense if uses_dense else None
        out_end = (y1, active) if saveat_ts is not None else None
        return new, (out_y, out_dense, out_end)

    if checkpointed:
        body = jax.checkpoint(body)
    steps = jnp.arange(num_grid_steps, dtype=int32)
    xs = (steps, grid[:-1], grid[1:], noise.grid(grid))
    if meter is None:
        c, (steps_ys, dense_all, ends) = lax.scan(body, carry, xs)
    else:
        c, (steps_ys, dense_all, ends) = _scan_reporting(body, carry, xs, num_grid_steps, meter, (grid - t0) / (t1 - t0))
    finished = c.num_accepted == num_grid_steps
    # Grid steps done (`c.num_accepted`), those taken (of positive length), and the dense output's
    # extent: up to the last step taken, so that evaluating at the end never lands in padding.
    done = jnp.arange(num_grid_steps, dtype=int32) < c.num_accepted
    positive = grid[1:] != grid[:-1] if padded else jnp.ones((num_grid_steps,), bool)
    num_taken = jnp.sum(done & positive, dtype=int32) if padded else c.num_accepted
    num_dense = jnp.max(jnp.where(done & positive, jnp.arange(1, num_grid_steps + 1, dtype=int32), 0)) if padded else c.num_accepted
    num_positive = jnp.sum(positive, dtype=int32) if padded else num_grid_steps
    t_stop = None
    if event is not None:
        finished = finished | c.events.stopped
        t_stop = stop_time(event.event, c.events)
    failure = int(RESULTS.nonfinite) if c.result is None else jnp.where(c.result == int(RESULTS.successful), int(RESULTS.nonfinite), c.result)
    result = jnp.where(finished, int(RESULTS.successful), failure).astype(int32)
    # Saves at `ts` are interpolated after the scan, from the per-step dense outputs.
    ts_ys = None if saveat_ts is None else saves_from_grid_steps(solver, grid, saveat_ts, dense_all, *ends, until=t_stop)
    dense_infos = dense_all if saveat.dense else None
    fevals = solver.init_fevals + num_positive * (solver.fevals_per_step + (solver.dense_fevals if uses_dense else 0))
    steps_ts = None
    if saveat.steps:
        ends_ts = grid[1:] if t_stop is None else jnp.minimum(grid[1:], t_stop)
        steps_ts = jnp.where(done & positive, ends_ts, jnp.inf)
    t_out = jnp.where(result == int(RESULTS.successful), t1, grid[c.num_accepted])
    if t_stop is not None:
        t_out = jnp.where(c.events.stopped, t_stop, t_out)
    return LoopOutput(
        t=t_out,
        y=c.y,
        result=result,
        num_steps=jnp.asarray(num_positive, int32),
        num_accepted=num_taken,
        num_fevals=jnp.asarray(fevals, int32) if c.num_fevals is None else c.num_fevals + (
            num_positive * solver.dense_fevals if uses_dense else 0),
        ts_ys=ts_ys,
        steps_ts=steps_ts,
        steps_ys=steps_ys,
        dense_ts=grid if saveat.dense else None,
        dense_infos=dense_infos,
        num_dense=num_dense,
        events=c.events,
    )
