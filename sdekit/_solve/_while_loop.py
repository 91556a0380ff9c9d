"""Constant or adaptive steps in a bounded while loop, in the time variable tau (increasing).

One iteration, in named pieces: `propose_end` (where this step ends: the controller's size,
clipped to t1, `step_ts`, jumps and revisited rejections), the step itself, `judge` (accept or
reject, next size, result code), `remember_rejection` (SDEs with general noise), `restart_after_jump`
and `write_saves`. The carry is a `WhileState` of fixed structure.
"""

from typing import Any, NamedTuple

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._once import computed_once_differentiable, opaque_word
from .._results import RESULTS
from ..controllers import ConstantStep
from . import _progress
from ._common import (
    all_finite, constant_step_count, constant_step_end, nan_buffer, save_ts_in_step, snap_to_end, tree_where, write_at,
)
from ._events import EventState, init_events, step_events
from ._inputs import LoopInputs, LoopOutput


class WhileState(NamedTuple):
    """The while loop's carry."""

    t: Float[Array, ""]
    y: PyTree[Array]
    dt: Float[Array, ""]
    solver_state: PyTree
    controller_state: PyTree | None
    num_steps: Int[Array, ""]
    num_accepted: Int[Array, ""]
    num_fevals: Int[Array, ""]
    result: Int[Array, ""]
    save_index: Int[Array, ""]
    ts_ys: PyTree[Array] | None
    steps_ts: Float[Array, " n"] | None
    steps_ys: PyTree[Array] | None
    dense_ts: Float[Array, " n+1"] | None
    dense_infos: PyTree[Array] | None
    nonfinite_rejection: Bool[Array, ""]  # was the last rejected step rejected for a NaN/inf?
    cursor: PyTree | None  # the Brownian tree's cursor (SDEs), None for ODEs
    rejected_ends: Float[Array, " r"] | None  # ends of rejected SDE steps still ahead of t (inf: empty)
    events: EventState | None  # None without an event


class _Setup(NamedTuple):
    """What every iteration reads besides the carry."""

    inputs: LoopInputs
    adaptive: bool
    jump_ts: Float[Array, " j"] | None  # sorted
    step_ts: Float[Array, " s"] | None  # sorted
    num_constant_steps: Float[Array, ""] | None
    fevals_per_step: int
    checkpointed: bool


class _Proposal(NamedTuple):
    """Where the step from `t` ends, and why."""

    tnext: Float[Array, ""]
    forced: Bool[Array, ""]  # a remainder below 2 dtmin, accepted when finite
    hit_jump: Bool[Array, ""]
    next_jump: Float[Array, ""] | None
    rejected_ends: Float[Array, " r"] | None


class _Verdict(NamedTuple):
    accept: Bool[Array, ""]
    dt_next: Float[Array, ""]
    controller_state: Any
    nonfinite_rejection: Bool[Array, ""]
    result: Int[Array, ""]


def _tied_to_controller(setup: _Setup, solver_state):
    """A solver state with `with_tolerances` (implicit methods, whose Newton iteration stops at a
    fraction of the error the controller accepts) takes the adaptive controller's rtol and atol."""
    tie = getattr(solver_state, "with_tolerances", None)
    if not setup.adaptive or tie is None:
        return solver_state
    return tie(setup.inputs.controller.rtol, setup.inputs.controller.atol)


def _reported(solver_state1):
    """What a solver's new state reports about the step just taken: `(result, num_fevals)`, each
    None when it reports nothing. Implicit methods report a Newton iteration that failed even
    with a fresh Jacobian (an `sk.RESULTS` code) and their evaluations, which vary per step."""
    return getattr(solver_state1, "result", None), getattr(solver_state1, "num_fevals", None)


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


def _dense_template(inputs: LoopInputs, solver_state):
    """Shapes of one step's dense output, without running anything."""
    i = inputs

    def one_step():
        inc, _ = i.noise.increment(i.t0, i.t0, i.noise.init())
        return i.solver.step(i.problem, i.t0, i.t0, i.y0, i.args, inc, solver_state)[2]

    shapes = jax.eval_shape(one_step)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _initial_state(setup: _Setup) -> WhileState:
    i = setup.inputs
    tdtype = jnp.result_type(i.t0)
    int32 = jnp.int32
    zero = jnp.zeros((), int32)
    t_start = _start_past_jump(setup.jump_ts, i.t0, i.t1)
    solver_state = _tied_to_controller(setup, i.solver.init(i.problem, t_start, i.y0, i.args))
    # Only a dense-output buffer needs the template (tracing the step for it doubles trace time).
    dense_template = _dense_template(i, solver_state) if i.saveat.dense else None
    return WhileState(
        t=t_start,
        y=i.y0,
        dt=i.dt0,
        solver_state=solver_state,
        controller_state=i.controller.init() if setup.adaptive else None,
        num_steps=zero,
        num_accepted=zero,
        num_fevals=jnp.asarray(i.solver.init_fevals, int32),
        result=jnp.asarray(int(RESULTS.successful), int32),
        save_index=zero,
        ts_ys=None if i.saveat_ts is None else nan_buffer(i.y0, i.saveat_ts.shape[0]),
        steps_ts=jnp.full((i.max_steps,), jnp.inf, tdtype) if i.saveat.steps else None,
        steps_ys=nan_buffer(i.y0, i.max_steps) if i.saveat.steps else None,
        dense_ts=jnp.full((i.max_steps + 1,), i.t1, tdtype).at[0].set(i.t0) if i.saveat.dense else None,
        dense_infos=jax.tree.map(lambda x: jnp.zeros((i.max_steps,) + x.shape, x.dtype), dense_template)
        if i.saveat.dense
        else None,
        nonfinite_rejection=jnp.zeros((), bool),
        cursor=i.noise.init(),
        rejected_ends=jnp.full((i.revisit,), jnp.inf, tdtype) if i.revisit else None,
        events=None if i.event is None else init_events(i.event, t_start, i.y0, i.args),
    )


def propose_end(setup: _Setup, s: WhileState) -> _Proposal:
    """The end of the step from `s.t`: the controller's choice, then every constraint on it."""
    i, t = setup.inputs, s.t
    controller, t0, t1 = i.controller, i.t0, i.t1
    if isinstance(controller, ConstantStep):
        tnext = constant_step_end(t0, t1, i.dt0, s.num_accepted, setup.num_constant_steps)
    else:
        tnext = snap_to_end(jnp.minimum(t + s.dt, t1), t1, t0)
    forced = jnp.zeros((), bool)
    if setup.adaptive and controller.dtmin is not None:
        # Never leave a last step below dtmin (for SDEs >= the tree's tol, below which
        # increments stop being exact in joint law): stop dtmin short of t1 instead, or, with
        # less than 2 dtmin left, take the remainder, which cannot be split; that step is
        # accepted when finite (as a step at dtmin would be), else it would be retried forever.
        short, room = _sliver_before(t1, t, tnext, controller.dtmin)
        forced = short & ~room
        tnext = jnp.where(short, jnp.where(room, t1 - controller.dtmin, t1), tnext)
    hit_jump, next_jump = jnp.zeros((), bool), None
    if setup.step_ts is not None:
        tnext = jnp.minimum(tnext, _next_in(setup.step_ts, t, t1))
    if setup.jump_ts is not None:
        # End the step one ulp before the jump, so that no stage sees the far side of it.
        next_jump = _next_in(setup.jump_ts, t, t1)
        before_jump = _before(next_jump)
        hit_jump = tnext >= before_jump
        tnext = jnp.where(hit_jump, before_jump, tnext)
    rejected_ends = s.rejected_ends
    if i.revisit:
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
    if setup.adaptive:
        # The controller's choices are not differentiated (discretise-then-optimise: the
        # gradient is that of the solve on its accepted steps, as if they had been given),
        # and a Brownian path has no time derivative. Only t0 and t1 keep theirs.
        tnext = lax.stop_gradient(tnext)
        tnext = jnp.where(tnext == t1, t1, tnext)
    return _Proposal(tnext, forced, hit_jump, next_jump, rejected_ends)


def judge(setup: _Setup, s: WhileState, p: _Proposal, y1, y_error, solver_state1=None) -> _Verdict:
    """Accept or reject the step; the next step size and the result code (a failure the solver
    reports for the step, when the solve cannot go on, is that code)."""
    int32 = jnp.int32
    controller = setup.inputs.controller
    step_result, _ = _reported(solver_state1)
    if not setup.adaptive:
        accept = all_finite(y1)
        failure = jnp.asarray(int(RESULTS.nonfinite), int32)
        if step_result is not None:
            accept = accept & (step_result == int(RESULTS.successful))
            failure = jnp.where(step_result != int(RESULTS.successful), step_result, failure)
        result = jnp.where(accept, s.result, failure).astype(int32)
        return _Verdict(accept, s.dt, s.controller_state, ~accept, result)
    h = p.tnext - s.t
    r = controller.scaled_error(*lax.stop_gradient((s.y, y1, y_error)))
    accept, dt_next, controller_state = controller.adapt(s.controller_state, h, r, setup.inputs.error_order)
    # A controller's scaled error may be an array (a user rule passing several numbers to adapt).
    finite = jnp.all(jnp.isfinite(r))
    accept = accept | (p.forced & finite)
    # No progress possible: a rejected step at dtmin, a step too small to move t, or a
    # rejected step whose smaller successor rounds to the same end time.
    stuck = controller.below_dtmin(h, accept) | (p.tnext <= s.t) | (~accept & (s.t + dt_next >= p.tnext))
    nonfinite_rejection = jnp.where(accept, s.nonfinite_rejection, ~finite)
    failure = jnp.where(nonfinite_rejection, int(RESULTS.nonfinite), int(RESULTS.dt_min_reached))
    if step_result is not None:
        failure = jnp.where(step_result != int(RESULTS.successful), step_result, failure)
    result = jnp.where(stuck, failure, s.result).astype(int32)
    return _Verdict(accept, dt_next, controller_state, nonfinite_rejection, result)


def remember_rejection(rejected_ends, accept, tnext, t_new):
    """Remember a rejected step's end (replacing the farthest one when full); forget ends reached."""
    revisit = rejected_ends.shape[0]
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
    return jnp.where(rejected_ends <= t_new, jnp.inf, rejected_ends)


def restart_after_jump(setup: _Setup, p: _Proposal, accept, t_new, y1, solver_state1, fevals):
    """Restart one ulp past the discontinuity (so that no stage sees the vector field at the
    jump itself, whose value belongs to one side only: backwards in time, the wrong one),
    re-evaluating FSAL information there."""
    i = setup.inputs
    made_jump = accept & p.hit_jump
    t_new = jnp.where(made_jump, _after(p.next_jump), t_new)
    if i.solver.init_fevals:
        solver_state1 = lax.cond(
            made_jump, lambda: _tied_to_controller(setup, i.solver.init(i.problem, t_new, y1, i.args)), lambda: solver_state1
        )
        fevals = fevals + jnp.where(made_jump, i.solver.init_fevals, 0)
    return t_new, solver_state1, fevals


def write_saves(setup: _Setup, s: WhileState, dense, tnext, y1, accept, t_end=None, y_end=None):
    """`SaveAt(ts)` values in (t, tnext] from the step's dense output, `steps` and `dense`
    buffers: `(save_index, ts_ys, steps_ts, steps_ys, dense_ts, dense_infos)`. A step that a
    terminating event cut short ends at `t_end` with `y_end` (the dense buffers keep the whole
    step, whose interpolant they need)."""
    i = setup.inputs
    t_end = tnext if t_end is None else t_end
    y_end = y1 if y_end is None else y_end
    save_index, ts_ys = s.save_index, s.ts_ys
    if i.saveat_ts is not None:
        save_index, ts_ys = save_ts_in_step(
            i.solver, i.saveat_ts, save_index, ts_ys, dense, s.t, tnext, y1, accept, differentiable=setup.checkpointed,
            until=None if i.event is None else t_end,
        )
    steps_ts, steps_ys = s.steps_ts, s.steps_ys
    if i.saveat.steps:
        steps_ts = write_at(steps_ts, s.num_accepted, t_end, accept)
        steps_ys = write_at(steps_ys, s.num_accepted, y_end, accept)
    dense_ts, dense_infos = s.dense_ts, s.dense_infos
    if i.saveat.dense:
        dense_ts = write_at(dense_ts, s.num_accepted + 1, tnext, accept)
        dense_infos = write_at(dense_infos, s.num_accepted, dense, accept)
    return save_index, ts_ys, steps_ts, steps_ys, dense_ts, dense_infos


def _body(setup: _Setup, s: WhileState) -> WhileState:
    i = setup.inputs
    t = s.t
    p = propose_end(setup, s)
    inc, cursor = i.noise.increment(t, p.tnext, s.cursor)
    # The step's results are read by many kernels (controller, selects, saves); computed
    # once, so that XLA does not redo the stages (drift evaluations and all) in each.
    y1, y_error, dense, solver_state1 = computed_once_differentiable(
        lambda a: a[0].step(*a[1:]), (i.solver, i.problem, t, p.tnext, s.y, i.args, inc, s.solver_state),
        opaque_word(t),
    )
    _, step_fevals = _reported(solver_state1)
    if step_fevals is None:
        fevals = s.num_fevals + setup.fevals_per_step
    else:  # evaluations the step made, plus any dense-output evaluation
        fevals = s.num_fevals + step_fevals + (setup.fevals_per_step - i.solver.fevals_per_step)
    v = judge(setup, s, p, y1, y_error, solver_state1)
    t_new = jnp.where(v.accept, p.tnext, t)
    rejected_ends = p.rejected_ends
    if i.revisit:
        rejected_ends = remember_rejection(rejected_ends, v.accept, p.tnext, t_new)
    if setup.jump_ts is not None:
        t_new, solver_state1, fevals = restart_after_jump(setup, p, v.accept, t_new, y1, solver_state1, fevals)
    y_new = tree_where(v.accept, y1, s.y)
    events, t_end, y_end = None, None, None
    if i.event is not None:
        events, stop, t_end, y_end = step_events(i.event, s.events, i.solver, dense, t, p.tnext, y1, i.args, v.accept)
        t_new = jnp.where(stop, t_end, t_new)
        y_new = tree_where(stop, y_end, y_new)
    save_index, ts_ys, steps_ts, steps_ys, dense_ts, dense_infos = write_saves(
        setup, s, dense, p.tnext, y1, v.accept, t_end, y_end
    )
    return WhileState(
        t=t_new,
        y=y_new,
        dt=v.dt_next,
        solver_state=tree_where(v.accept, solver_state1, s.solver_state),
        controller_state=v.controller_state,
        num_steps=s.num_steps + 1,
        num_accepted=s.num_accepted + v.accept.astype(jnp.int32),
        num_fevals=fevals,
        result=v.result,
        save_index=save_index,
        ts_ys=ts_ys,
        steps_ts=steps_ts,
        steps_ys=steps_ys,
        dense_ts=dense_ts,
        dense_infos=dense_infos,
        nonfinite_rejection=v.nonfinite_rejection,
        # The cursor is a cache (values never depend on it). After a rejection the next step
        # starts from t again, so keep the cursor that holds t: otherwise it must climb back,
        # and under vmap every lane pays for the deepest climb of any lane.
        cursor=tree_where(v.accept, cursor, s.cursor) if setup.adaptive else cursor,
        rejected_ends=rejected_ends,
        events=events,
    )


def _reporting_loop(i: LoopInputs, cond, body, loop, state, checkpoints):
    """With a progress meter: each iteration of the outer loop steps (an inner loop) until the
    solved fraction passes the host's mark, then reports once and takes the next mark. No
    conditional callback inside the steps (its cost per step was a sizeable part of a small
    problem's)."""

    def fraction(t):
        return (t - i.t0) / (i.t1 - i.t0)

    def chunk(s_mark):
        s, mark = s_mark
        inner = loop(lambda x: cond(x) & (fraction(x.t) < mark), body, s, None)
        return inner, _progress.report(i.meter, fraction(inner.t), mark)

    mark = _progress.begin(i.meter, jnp.result_type(fraction(state.t)))
    return loop(lambda s_mark: cond(s_mark[0]), chunk, (state, mark), checkpoints)[0]


def while_loop(inputs: LoopInputs, *, checkpointed: bool = True, checkpoints: int | None = None) -> LoopOutput:
    """Constant or adaptive steps in a bounded while loop: equinox's checkpointed while loop
    (the same `lax.while_loop` when not differentiated; online checkpointing with `checkpoints`
    saved states under reverse mode), or a plain `lax.while_loop` with `checkpointed=False`."""
    i = inputs
    controller = i.controller
    adaptive = controller.adaptive
    uses_dense = i.saveat_ts is not None or i.saveat.dense or i.event is not None
    setup = _Setup(
        inputs=i,
        adaptive=adaptive,
        jump_ts=None if not adaptive or controller.jump_ts is None else jnp.sort(controller.jump_ts),
        step_ts=None if not adaptive or controller.step_ts is None else jnp.sort(controller.step_ts),
        num_constant_steps=constant_step_count(i.t0, i.t1, i.dt0) if isinstance(controller, ConstantStep) else None,
        fevals_per_step=i.solver.fevals_per_step + (i.solver.dense_fevals if uses_dense else 0),
        checkpointed=checkpointed,
    )
    state = _initial_state(setup)

    def cond(s):
        going = (s.t < i.t1) & (s.num_steps < i.max_steps) & (s.result == int(RESULTS.successful))
        return going if i.event is None else going & ~s.events.stopped

    def body(s):
        return _body(setup, s)

    def loop(cond, body, state, checkpoints):
        if checkpointed:
            return eqxi.while_loop(cond, body, state, max_steps=i.max_steps, kind="checkpointed", checkpoints=checkpoints)
        return lax.while_loop(cond, body, state)

    if i.meter is None:
        s = loop(cond, body, state, checkpoints)
    else:
        s = _reporting_loop(i, cond, body, loop, state, checkpoints)
    short = s.t < i.t1 if i.event is None else (s.t < i.t1) & ~s.events.stopped
    result = jnp.where(short & (s.result == int(RESULTS.successful)), int(RESULTS.max_steps_reached), s.result)
    return LoopOutput(
        t=s.t,
        y=s.y,
        result=result.astype(jnp.int32),
        num_steps=s.num_steps,
        num_accepted=s.num_accepted,
        num_fevals=s.num_fevals,
        ts_ys=s.ts_ys,
        steps_ts=s.steps_ts,
        steps_ys=s.steps_ys,
        dense_ts=s.dense_ts,
        dense_infos=s.dense_infos,
        num_dense=s.num_accepted,
        events=s.events,
    )
