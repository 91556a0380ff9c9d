"""The two solve loops: `lax.scan` over a fixed grid, bounded `lax.while_loop` otherwise.

Both work in the time variable tau, increasing from `t0` to `t1` (backward solves are turned
into forward ones before reaching here), and carry NamedTuple states of fixed structure.
"""

from typing import Any, NamedTuple

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import lax

from .._once import computed_once_differentiable, opaque_word
from .._results import RESULTS
from ..controllers import ConstantStep
from . import _progress
from ._common import (
    all_finite, constant_step_count, constant_step_end, nan_buffer, save_ts_in_step, saves_from_grid_steps, snap_to_end,
    tree_where, write_at,
)


class LoopOutput(NamedTuple):
    t: Any
    y: Any
    result: Any
    num_steps: Any
    num_accepted: Any
    num_fevals: Any
    ts_ys: Any  # values at SaveAt(ts)
    steps_ts: Any  # SaveAt(steps) times and values
    steps_ys: Any
    dense_ts: Any  # step boundaries and dense infos for SaveAt(dense)
    dense_infos: Any
    num_dense: Any


class _WhileState(NamedTuple):
    t: Any
    y: Any
    dt: Any
    solver_state: Any
    controller_state: Any
    num_steps: Any
    num_accepted: Any
    num_fevals: Any
    result: Any
    save_index: Any
    ts_ys: Any
    steps_ts: Any
    steps_ys: Any
    dense_ts: Any
    dense_infos: Any
    nonfinite_rejection: Any  # was the last rejected step rejected for a NaN/inf?
    cursor: Any  # the Brownian tree's cursor (SDEs), None for ODEs
    rejected_ends: Any  # ends of rejected SDE steps still ahead of t (inf: empty slot), or None


def _dense_template(solver, problem, t0, y0, args, solver_state, noise):
    """Shapes of one step's dense output, without running anything."""

    def one_step():
        inc, _ = noise.increment(t0, t0, noise.init())
        return solver.step(problem, t0, t0, y0, args, inc, solver_state)[2]

    shapes = jax.eval_shape(one_step)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _sliver_before(end, t, tnext, gap):
    """Whether a step from `t` to `tnext` would stop less than `gap` short of `end` (leaving a
    sliver step there), and whether there is room to stop `gap` short instead."""
    return (tnext < end) & (end - tnext < gap), end - t >= 2 * gap


def _next_in(ts_sorted, t, end):
    """The first time in `ts_sorted` strictly after `t` and before `end` (inf if none: a time at
    or after the end of the solve needs no step to stop at it)."""
    index = jnp.searchsorted(ts_sorted, t, side="right")
    safe = jnp.minimum(index, ts_sorted.shape[0] - 1)
    found = ts_sorted[safe]
    return jnp.where((index < ts_sorted.shape[0]) & (found < end), found, jnp.inf)


def _after(t):
    return jnp.nextafter(t, jnp.asarray(jnp.inf, t.dtype))


def _before(t):
    return jnp.nextafter(t, jnp.asarray(-jnp.inf, t.dtype))


def _start_past_jump(jump_ts, t0, t1):
    """Where the loop starts: `t0`, or one ulp past a jump at `t0` or one ulp after it (no
    stage may see the vector field at the jump itself, which belongs to one side only; and a
    step ending one ulp before the jump, as steps do, would have length zero there)."""
    if jump_ts is None:
        return t0
    next_jump = _next_in(jump_ts, _before(t0), t1)
    return jnp.where(_before(next_jump) <= t0, _after(next_jump), t0)


def while_loop(
    problem, solver, controller, saveat, t0, t1, y0, args, dt0, saveat_ts, max_steps, meter, noise, error_order, revisit=0,
    adjoint=None,
):
    """Constant or adaptive steps in a bounded while loop: a `lax.while_loop`, or with
    `adjoint=Checkpointed(...)` equinox's checkpointed while loop (the same `lax.while_loop` when
    not differentiated; online checkpointing under reverse mode)."""
    checkpointed = adjoint is not None
    adaptive = controller.adaptive
    tdtype = jnp.result_type(t0)
    int32 = jnp.int32
    zero = jnp.zeros((), int32)
    uses_dense = saveat_ts is not None or saveat.dense
    fevals_step = solver.fevals_per_step + (solver.dense_fevals if uses_dense else 0)
    jump_ts = None if not adaptive or controller.jump_ts is None else jnp.sort(controller.jump_ts)
    step_ts = None if not adaptive or controller.step_ts is None else jnp.sort(controller.step_ts)
    if isinstance(controller, ConstantStep):
        num_constant_steps = constant_step_count(t0, t1, dt0)
    t_start = _start_past_jump(jump_ts, t0, t1)
    solver_state = solver.init(problem, t_start, y0, args)

    dense_template = _dense_template(solver, problem, t0, y0, args, solver_state, noise) if uses_dense else None
    state = _WhileState(
        t=t_start,
        y=y0,
        dt=dt0,
        solver_state=solver_state,
        controller_state=controller.init() if adaptive else None,
        num_steps=zero,
        num_accepted=zero,
        num_fevals=jnp.asarray(solver.init_fevals, int32),
        result=jnp.asarray(int(RESULTS.successful), int32),
        save_index=zero,
        ts_ys=None if saveat_ts is None else nan_buffer(y0, saveat_ts.shape[0]),
        steps_ts=jnp.full((max_steps,), jnp.inf, tdtype) if saveat.steps else None,
        steps_ys=nan_buffer(y0, max_steps) if saveat.steps else None,
        dense_ts=jnp.full((max_steps + 1,), t1, tdtype).at[0].set(t0) if saveat.dense else None,
        dense_infos=jax.tree.map(lambda x: jnp.zeros((max_steps,) + x.shape, x.dtype), dense_template)
        if saveat.dense
        else None,
        nonfinite_rejection=jnp.zeros((), bool),
        cursor=noise.init(),
        rejected_ends=jnp.full((revisit,), jnp.inf, tdtype) if revisit else None,
    )

    def cond(s):
        return (s.t < t1) & (s.num_steps < max_steps) & (s.result == int(RESULTS.successful))

    def body(s):
        t = s.t
        if isinstance(controller, ConstantStep):
            tnext = constant_step_end(t0, t1, dt0, s.num_accepted, num_constant_steps)
        else:
            tnext = snap_to_end(jnp.minimum(t + s.dt, t1), t1, t0)
        forced = jnp.zeros((), bool)
        if adaptive and controller.dtmin is not None:
            # Never leave a last step below dtmin (for SDEs >= the tree's tol, below which
            # increments stop being exact in joint law): stop dtmin short of t1 instead, or, with
            # less than 2 dtmin left, take the remainder, which cannot be split; that step is
            # accepted when finite (as a step at dtmin would be), else it would be retried forever.
            short, room = _sliver_before(t1, t, tnext, controller.dtmin)
            forced = short & ~room
            tnext = jnp.where(short, jnp.where(room, t1 - controller.dtmin, t1), tnext)
        hit_jump = jnp.zeros((), bool)
        if step_ts is not None:
            tnext = jnp.minimum(tnext, _next_in(step_ts, t, t1))
        if jump_ts is not None:
            # End the step one ulp before the jump, so that no stage sees the far side of it.
            next_jump = _next_in(jump_ts, t, t1)
            before_jump = _before(next_jump)
            hit_jump = tnext >= before_jump
            tnext = jnp.where(hit_jump, before_jump, tnext)
        rejected_ends = s.rejected_ends
        if revisit:
            # Step to the nearest end of an earlier rejected step before going past it, so that
            # where the path was looked at does not depend on what it looked like (unbiased
            # adaptive stepping; Foster & Jelincic, arXiv 2311.14201).
            nearest = jnp.min(rejected_ends)
            tnext = jnp.minimum(tnext, nearest)
            if controller.dtmin is not None:
                # Never stop less than dtmin (>= the tree's tol) short of that end: such a sliver
                # step is below the path's resolution. Stop dtmin short instead; when there is no
                # room for that, the end is too close to revisit separately and is dropped.
                sliver, room = _sliver_before(nearest, t, tnext, controller.dtmin)
                tnext = jnp.where(sliver & room, nearest - controller.dtmin, tnext)
                rejected_ends = jnp.where(sliver & ~room & (rejected_ends == nearest), jnp.inf, rejected_ends)
        if adaptive:
            # The controller's choices are not differentiated (discretise-then-optimise: the
            # gradient is that of the solve on its accepted steps, as if they had been given),
            # and a Brownian path has no time derivative. Only t0 and t1 keep theirs.
            tnext = lax.stop_gradient(tnext)
            tnext = jnp.where(tnext == t1, t1, tnext)
        h = tnext - t

        inc, cursor = noise.increment(t, tnext, s.cursor)
        # The step's results are read by many kernels (controller, selects, saves); computed
        # once, so that XLA does not redo the stages (drift evaluations and all) in each.
        y1, y_error, dense, solver_state1 = computed_once_differentiable(
            lambda a: a[0].step(*a[1:]), (solver, problem, t, tnext, s.y, args, inc, s.solver_state), opaque_word(t)
        )
        fevals = s.num_fevals + fevals_step

        if adaptive:
            r = controller.scaled_error(*lax.stop_gradient((s.y, y1, y_error)))
            accept, dt_next, controller_state = controller.adapt(s.controller_state, h, r, error_order)
            accept = accept | (forced & jnp.isfinite(r))
            # No progress possible: a rejected step at dtmin, a step too small to move t, or a
            # rejected step whose smaller successor rounds to the same end time.
            stuck = controller.below_dtmin(h, accept) | (tnext <= t) | (~accept & (t + dt_next >= tnext))
            nonfinite_rejection = jnp.where(accept, s.nonfinite_rejection, ~jnp.isfinite(r))
            failure = jnp.where(nonfinite_rejection, int(RESULTS.nonfinite), int(RESULTS.dt_min_reached))
            result = jnp.where(stuck, failure, s.result).astype(int32)
        else:
            accept = all_finite(y1)
            dt_next, controller_state = s.dt, s.controller_state
            nonfinite_rejection = ~accept
            result = jnp.where(accept, s.result, int(RESULTS.nonfinite)).astype(int32)

        t_new = jnp.where(accept, tnext, t)
        if revisit:
            # Remember this end if rejected (replacing the farthest one when full); forget ends reached.
            farthest = jnp.max(rejected_ends)
            store = ~accept & (tnext < farthest)
            # The first slot holding the farthest end, by two plain reductions: XLA's CPU argmax
            # (a variadic reduction) cost more than the rest of the bookkeeping. A masked select,
            # not a scatter: under vmap the slot is batched, and XLA's CPU scatter costs far more
            # than a select over a short buffer.
            index = jnp.arange(revisit, dtype=jnp.int32)
            slot = jnp.min(jnp.where(rejected_ends == farthest, index, revisit))
            hit = (index == slot) & store
            rejected_ends = jnp.where(hit, tnext, rejected_ends)
            rejected_ends = jnp.where(rejected_ends <= t_new, jnp.inf, rejected_ends)
        if jump_ts is not None:
            # Restart one ulp past the discontinuity (so that no stage sees the vector field at
            # the jump itself, whose value belongs to one side only: backwards in time, the
            # wrong one), re-evaluating FSAL information there.
            made_jump = accept & hit_jump
            t_new = jnp.where(made_jump, _after(next_jump), t_new)
            if solver.init_fevals:
                solver_state1 = lax.cond(
                    made_jump, lambda: solver.init(problem, t_new, y1, args), lambda: solver_state1
                )
                fevals = fevals + jnp.where(made_jump, solver.init_fevals, 0)
        y_new = tree_where(accept, y1, s.y)
        solver_state_new = tree_where(accept, solver_state1, s.solver_state)

        save_index, ts_ys = s.save_index, s.ts_ys
        if saveat_ts is not None:
            save_index, ts_ys = save_ts_in_step(
                solver, saveat_ts, save_index, ts_ys, dense, t, tnext, y1, accept, differentiable=checkpointed
            )
        steps_ts, steps_ys = s.steps_ts, s.steps_ys
        if saveat.steps:
            steps_ts = write_at(steps_ts, s.num_accepted, tnext, accept)
            steps_ys = write_at(steps_ys, s.num_accepted, y1, accept)
        dense_ts, dense_infos = s.dense_ts, s.dense_infos
        if saveat.dense:
            dense_ts = write_at(dense_ts, s.num_accepted + 1, tnext, accept)
            dense_infos = write_at(dense_infos, s.num_accepted, dense, accept)
        if meter is not None:
            _progress.report(meter, (t - t0) / (t1 - t0), (t_new - t0) / (t1 - t0))

        return _WhileState(
            t=t_new,
            y=y_new,
            dt=dt_next,
            solver_state=solver_state_new,
            controller_state=controller_state,
            num_steps=s.num_steps + 1,
            num_accepted=s.num_accepted + accept.astype(int32),
            num_fevals=fevals,
            result=result,
            save_index=save_index,
            ts_ys=ts_ys,
            steps_ts=steps_ts,
            steps_ys=steps_ys,
            dense_ts=dense_ts,
            dense_infos=dense_infos,
            nonfinite_rejection=nonfinite_rejection,
            # The cursor is a cache (values never depend on it). After a rejection the next step
            # starts from t again, so keep the cursor that holds t: otherwise it must climb back,
            # and under vmap every lane pays for the deepest climb of any lane.
            cursor=tree_where(accept, cursor, s.cursor) if adaptive else cursor,
            rejected_ends=rejected_ends,
        )

    if checkpointed:
        s = eqxi.while_loop(cond, body, state, max_steps=max_steps, kind="checkpointed", checkpoints=adjoint.checkpoints)
    else:
        s = lax.while_loop(cond, body, state)
    result = jnp.where((s.t < t1) & (s.result == int(RESULTS.successful)), int(RESULTS.max_steps_reached), s.result)
    return LoopOutput(
        t=s.t,
        y=s.y,
        result=result.astype(int32),
        num_steps=s.num_steps,
        num_accepted=s.num_accepted,
        num_fevals=s.num_fevals,
        ts_ys=s.ts_ys,
        steps_ts=s.steps_ts,
        steps_ys=s.steps_ys,
        dense_ts=s.dense_ts,
        dense_infos=s.dense_infos,
        num_dense=s.num_accepted,
    )


class _ScanCarry(NamedTuple):
    y: Any
    solver_state: Any
    num_accepted: Any


def scan_loop(problem, solver, grid, saveat, y0, args, saveat_ts, meter, noise, adjoint=None):
    """Steps through a fixed grid with `lax.scan`: no step-size logic, no rejections. With
    `adjoint=Checkpointed(...)` each step is a `jax.checkpoint`: the reverse pass stores the carry
    per step and recomputes the stages."""
    int32 = jnp.int32
    t0, t1 = grid[0], grid[-1]
    solver_state = solver.init(problem, t0, y0, args)
    uses_dense = saveat_ts is not None or saveat.dense
    num_grid_steps = grid.shape[0] - 1
    carry = _ScanCarry(y=y0, solver_state=solver_state, num_accepted=jnp.zeros((), int32))

    def body(c, xs):
        i, t, tnext, inc = xs
        y1, _, dense, solver_state1 = solver.step(problem, t, tnext, c.y, args, inc, c.solver_state)
        # After a failure the state freezes: the remaining grid steps change nothing. Whether
        # all steps so far succeeded is `num_accepted == i`, so no result code is carried (a
        # carried value costs a kernel and a copy per step).
        active = all_finite(y1) & (c.num_accepted == i)
        if meter is not None:
            _progress.report(meter, (t - t0) / (t1 - t0), (tnext - t0) / (t1 - t0))
        new = _ScanCarry(
            y=tree_where(active, y1, c.y),
            solver_state=tree_where(active, solver_state1, c.solver_state),
            num_accepted=c.num_accepted + active.astype(int32),
        )
        out_y = tree_where(active, y1, jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), y1)) if saveat.steps else None
        out_dense = dense if uses_dense else None
        out_end = (y1, active) if saveat_ts is not None else None
        return new, (out_y, out_dense, out_end)

    if adjoint is not None:
        body = jax.checkpoint(body)
    steps = jnp.arange(num_grid_steps, dtype=int32)
    c, (steps_ys, dense_all, ends) = lax.scan(body, carry, (steps, grid[:-1], grid[1:], noise.grid(grid)))
    result = jnp.where(c.num_accepted == num_grid_steps, int(RESULTS.successful), int(RESULTS.nonfinite)).astype(int32)
    # Saves at `ts` are interpolated after the scan, from the per-step dense outputs.
    ts_ys = None if saveat_ts is None else saves_from_grid_steps(solver, grid, saveat_ts, dense_all, *ends)
    dense_infos = dense_all if saveat.dense else None
    fevals = solver.init_fevals + num_grid_steps * (solver.fevals_per_step + (solver.dense_fevals if uses_dense else 0))
    steps_ts = None
    if saveat.steps:
        steps_ts = jnp.where(jnp.arange(num_grid_steps, dtype=int32) < c.num_accepted, grid[1:], jnp.inf)
    return LoopOutput(
        t=jnp.where(result == int(RESULTS.successful), t1, grid[c.num_accepted]),
        y=c.y,
        result=result,
        num_steps=jnp.asarray(num_grid_steps, int32),
        num_accepted=c.num_accepted,
        num_fevals=jnp.asarray(fevals, int32),
        ts_ys=ts_ys,
        steps_ts=steps_ts,
        steps_ys=steps_ys,
        dense_ts=grid if saveat.dense else None,
        dense_infos=dense_infos,
        num_dense=c.num_accepted,
    )
