"""`sk.solve`: the single entry point for solving a differential equation."""

import contextlib
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._batch import batch_min
from .._results import MESSAGES, RESULTS, SolveError, user_message
from .._typing import Args, RealScalarLike, Y
from ..controllers import PID, ConstantStep, StepTo, initial_step_size
from ..solvers import Solver
from ..brownian import BrownianTree
from ..terms import ODE, SDE, time_reversed
from . import _checks, _progress
from ._closures import closure_converted, closure_converted_event
from ._adjoint import Adjoint
from ._checkpointed import Checkpointed
from ._common import constant_step_grid
from ._events import Event, EventInLoop, check_conditions, event_outputs
from ._inputs import LoopInputs, LoopOutput, SolveInputs
from ._step_noise import NoNoise, TreeNoise
from ._saveat import SaveAt
from ._solution import Solution


def solve(
    problem: ODE | SDE,
    solver: Solver,
    t0: RealScalarLike,
    t1: RealScalarLike,
    y0: Y,
    args: Args = None,
    *,
    dt0: RealScalarLike | None = None,
    controller: ConstantStep | StepTo | PID | None = None,
    saveat: SaveAt | None = None,
    brownian: BrownianTree | None = None,
    max_steps: int = 4096,
    throw: bool = True,
    progress: bool = False,
    adjoint=None,
    event: Event | None = None,
) -> Solution:
    """Solve a differential equation from `t0` to `t1` (forwards, or backwards when `t1 < t0`).

    Fixed grids (`StepTo`) run as a `lax.scan`; constant and adaptive steps as a bounded
    `lax.while_loop`. The call is compiled once per structure: numbers (`t0`, `t1`, `dt0`, `y0`,
    float leaves of `args`, tolerances and gains of the controller, save times) are traced, so
    new values do not recompile. Inside a user's `jit`, constant steps whose `t0`, `t1` and `dt0`
    are Python or NumPy numbers (fixed for that trace anyway) run as a fixed grid: a `lax.scan`,
    with an SDE's increments drawn all at once. They keep the while loop with `SaveAt(steps=True)`
    or `dense` (output shapes follow `max_steps`), and with an adjoint that bounds memory
    (`Backsolve`, `Reversible`, `Checkpointed(checkpoints=c)`).

    Args:
        problem: the equation, e.g. `sk.ODE(f)` or `sk.SDE(f, g, noise=..., calculus=...)`.
        solver: a `Solver`, e.g. `sk.solvers.tsit5()`.
        t0, t1: the interval; `t1 < t0` integrates backwards in time.
        y0: the initial state, any pytree of floating-point arrays.
        args: passed to the vector field as its third argument.
        dt0: the (initial) step size, with the sign of `t1 - t0`. With `sk.PID`, `None` picks it
            automatically (Hairer's rule).
        controller: `sk.ConstantStep()` (default when `dt0` is given), `sk.StepTo(ts)` or
            `sk.PID(rtol, atol, ...)`.
        saveat: what to return (default: the final value); see `sk.SaveAt`.
        brownian: for SDEs, the `sk.BrownianTree` driving the noise (covering [t0, t1], with the
            Lévy area the solver needs). Fixed grids draw all increments at once from it
            (`grid_increments`); sequential steps use its cursor. Steps must be at least its
            `tol` (adaptive steps get `dtmin >= tol`).
        max_steps: bound on the number of steps (static: it sizes the loop and the buffers).
        throw: raise an error if the solve fails (also under `jit`/`vmap`); otherwise inspect
            `sol.result`.
        progress: show a tqdm progress meter, updated from inside the compiled loop.
        adjoint: how reverse-mode gradients are computed: `sk.adjoint.Checkpointed()` (default:
            exact gradients of the discrete solve, checkpointed), `sk.adjoint.Reversible()`
            (with `sk.solvers.reversible_heun()` on fixed steps: exact, O(1) memory) or
            `sk.adjoint.Backsolve()` (continuous/stochastic adjoint solved backwards in time:
            O(1) memory, gradients of the continuous problem up to the solvers' errors;
            `SaveAt(t0/t1/ts)` only).
        event: an `sk.Event`: stop the solve (or record the time) where a condition on the
            solution changes sign, located by root finding on the dense output (see
            `sk.Event`; `sol.event_mask` and `sol.t_event` report it). Needs
            `sk.adjoint.Checkpointed` (the default).

    Returns:
        A `Solution` with `ts`, `ys`, `stats`, `result`, and `evaluate`/`derivative` for dense
        output.

    Raises:
        ValueError, TypeError: for inconsistent inputs (see the messages).
        sk.SolveError (an equinox.EquinoxRuntimeError, a RuntimeError): when `throw=True` and
            the solve fails, or for bad traced inputs, with the message first. Under your own
            `jax.jit` the same message arrives inside XLA's `JaxRuntimeError` (see
            `sk.SolveError`).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> def lotka_volterra(t, y, args):
        ...     prey, predator = y
        ...     return jnp.stack([1.5 * prey - prey * predator, predator * prey - 3.0 * predator])
        >>> sol = sk.solve(sk.ODE(lotka_volterra), sk.solvers.tsit5(), 0.0, 10.0,
        ...                jnp.array([10.0, 1.0]), controller=sk.PID(rtol=1e-6, atol=1e-8),
        ...                saveat=sk.SaveAt(ts=jnp.linspace(0.0, 10.0, 11)))
        >>> sol.ys.shape, int(sol.result)
        ((11, 2), 0)
    """
    if progress:
        _progress.require_tqdm()
    if controller is None:
        if dt0 is None:
            raise ValueError("Pass a step size dt0, or an adaptive controller such as sk.PID(rtol=1e-6, atol=1e-8).")
        controller = ConstantStep()
    _checks.check_static(problem, solver, controller, dt0, max_steps, brownian)
    if saveat is None:
        saveat = SaveAt(t1=True)
    if not isinstance(saveat, SaveAt):
        raise TypeError(f"saveat must be an sk.SaveAt, got {type(saveat).__name__}.")
    adjoint = _chosen_adjoint(adjoint)
    adjoint.check(problem, solver, controller, saveat, dt0, brownian)
    _check_event(event, adjoint)

    if isinstance(problem, SDE):
        controller = _checks.sde_controller(controller, brownian)
    tdtype = _time_dtype(t0, t1, dt0, None if brownian is None else brownian.t0)
    given = t0, t1, dt0  # (under `jit`, `jnp.asarray` of a Python number is already traced)
    t0, t1 = jnp.asarray(t0, tdtype), jnp.asarray(t1, tdtype)
    dt0 = None if dt0 is None else jnp.asarray(dt0, tdtype)
    y0 = jax.tree.map(jnp.asarray, y0)
    args = jax.tree.map(float_to_array, args)
    controller = jax.tree.map(float_to_array, controller)
    saveat_ts = None if saveat.ts is None else saveat.ts.astype(tdtype)
    grid = controller.ts.astype(tdtype) if isinstance(controller, StepTo) else None
    problem = closure_converted(problem, t0, y0, args)
    if event is not None:
        event = closure_converted_event(event, t0, y0, args)
    checked = _checks.check_numbers_eagerly(t0, t1, dt0, saveat_ts, grid, brownian, _padded(controller))
    if isinstance(controller, ConstantStep) and _constant_steps_as_grid(saveat, adjoint):
        # Under `jit`, step ends known at trace time (Python or NumPy numbers) are fixed for that
        # trace, so they make a fixed grid at no cost in retracing: the scan loop, and for SDEs
        # all increments drawn at once (the while loop queries the tree's cursor step by step:
        # several times slower).
        grid = constant_step_grid(*given, tdtype, max_steps, None if brownian is None else brownian.tol)
    inputs = SolveInputs(problem, solver, controller, saveat, t0, t1, y0, args, dt0, saveat_ts, grid, max_steps, throw,
                         progress, checked, brownian, event)
    with _clear_errors():
        return adjoint.run(solve_compiled, inputs)


@contextlib.contextmanager
def _clear_errors():
    """Re-raise equinox's run-time errors with their message first (see `sk.SolveError`)."""
    try:
        yield
    except SolveError:
        raise
    except eqx.EquinoxRuntimeError as err:
        message = user_message(str(err))
        if message is None:
            raise
        raise SolveError(message) from err


def _check_event(event, adjoint) -> None:
    if event is None:
        return
    if not isinstance(event, Event):
        raise TypeError(f"event must be an sk.Event(condition, terminate=..., direction=...), got {type(event).__name__}.")
    if not getattr(adjoint, "allows_events", False):
        raise ValueError(
            f"sk.adjoint.{type(adjoint).__name__}() cannot differentiate a solve with an event (its end depends on "
            "the solution): use sk.adjoint.Checkpointed() (the default)."
        )


def _chosen_adjoint(adjoint) -> Adjoint:
    if adjoint is None:
        return Checkpointed()
    if not all(hasattr(adjoint, name) for name in ("check", "run", "loop", "allows_grid")):
        raise TypeError(
            "adjoint must be sk.adjoint.Checkpointed(), sk.adjoint.Reversible() or sk.adjoint.Backsolve(), got "
            f"{type(adjoint).__name__}."
        )
    return adjoint


def _constant_steps_as_grid(saveat, adjoint) -> bool:
    """Whether constant steps may run as a fixed grid, where nothing the user chose changes:
    under `jit` (called eagerly, the solve would compile once for every step size), with outputs
    not sized by `max_steps` (saved steps, dense output), and with an adjoint that allows it
    (the O(1)-memory adjoints and a chosen number of checkpoints bound the reverse pass's
    memory, which a grid's stored carries and increments would not)."""
    return adjoint.allows_grid and not (saveat.steps or saveat.dense) and _checks.staged()


def _padded(controller) -> bool:
    return isinstance(controller, StepTo) and controller.padded


def _time_dtype(*times):
    """The default float, widened by any (canonicalised) float time given: float64 with x64."""
    dtype = np.dtype(jnp.result_type(float))
    for t in times:
        if t is not None and hasattr(t, "dtype") and jnp.issubdtype(t.dtype, jnp.floating):
            dtype = np.promote_types(dtype, jax.dtypes.canonicalize_dtype(t.dtype))
    return dtype


def float_to_array(x):
    """A Python float as an array of the default float dtype (a traced number, not a constant)."""
    if isinstance(x, float):
        return jnp.asarray(x, jnp.result_type(float))
    return x


def _initial_dt(i: SolveInputs, tau_problem, tau0, error_order):
    """The first step's size (positive): `|dt0|`, or Hairer's rule for adaptive steps without it
    (then also the vector-field evaluations it took), clipped to the controller's bounds."""
    controller = i.controller
    if i.grid is not None or not controller.adaptive:
        return (None if i.dt0 is None else jnp.abs(i.dt0)), 0
    fevals = 0
    if i.dt0 is None:
        # (SDEs always have dt0: checked.)
        dt = initial_step_size(tau_problem.vector_field, tau0, i.y0, i.args, controller.error_order or error_order,
                               controller.rtol, controller.atol, controller.norm)
        fevals = 2
    else:
        dt = jnp.abs(i.dt0)
    if controller.dtmax is not None:
        dt = jnp.minimum(dt, controller.dtmax)
    if controller.dtmin is not None:
        dt = jnp.maximum(dt, controller.dtmin)
    return dt, fevals


@eqx.filter_jit
def solve_compiled(inputs: SolveInputs, adjoint: Adjoint) -> Solution:
    """The compiled solve of prepared `inputs`, its loop given by `adjoint.loop`."""
    i = inputs
    problem, solver, t0, t1, y0, args = i.problem, i.solver, i.t0, i.t1, i.y0, i.args
    if isinstance(problem, SDE):
        _checks.check_sde_shapes(problem, i.brownian, t0, y0, args)
        # SDEs integrate forwards only (checked), in the tree's time variable.
        direction = jnp.ones((), t0.dtype)
        # The solve checks its own times (and reports them by `throw` or the result code): the
        # tree's own per-query error checks would repeat them, with a less precise message.
        noise = TreeNoise(i.brownian.with_on_error("nan"), halves=getattr(solver.sde, "halves", False))
        tau_problem, error_order = problem, solver.sde.error(_checks.solver_noise(problem, solver.sde))
    else:
        _checks.check_vector_field(problem.vector_field, t0, y0, args)
        direction = jnp.where(t1 >= t0, 1, -1).astype(t0.dtype)
        tau_problem, noise, error_order = time_reversed(problem, direction), NoNoise(), solver.error_order
    if i.event is not None:
        check_conditions(i.event, t0, y0, args)
    bad_input = None
    if not i.checked:
        # The checks only read the times: no derivative flows through them (equinox's error_if
        # has no differentiation rule for a predicate on differentiated values).
        times = jax.lax.stop_gradient((t0, t1, i.dt0, i.saveat_ts, i.grid))
        if i.throw and i.grid is not None:
            # A fixed grid bounds the work whatever the numbers, so the checks can wait for the
            # result's own error check and share it: one conditional and callback fewer to compile.
            bad_input = _checks.traced_failure(*times, i.brownian, _padded(i.controller))
        else:
            y0 = _checks.check_numbers_traced(y0, *times, i.brownian, _padded(i.controller))
    tau0, tau1 = direction * t0, direction * t1
    controller = _controller_in_tau(i.controller, direction) if i.controller.adaptive else i.controller
    dt, init_fevals = _initial_dt(i._replace(y0=y0), tau_problem, tau0, error_order)
    revisit = controller.revisits(problem.noise) if controller.adaptive and isinstance(problem, SDE) else 0
    loop_inputs = LoopInputs(
        problem=tau_problem, solver=solver, controller=controller, saveat=i.saveat, t0=tau0, t1=tau1, y0=y0, args=args,
        dt0=dt, grid=None if i.grid is None else direction * i.grid,
        saveat_ts=None if i.saveat_ts is None else direction * i.saveat_ts, max_steps=i.max_steps,
        meter=_progress.new_meter_id() if i.progress else None, noise=noise, error_order=error_order, revisit=revisit,
        event=None if i.event is None else EventInLoop(i.event, direction),
    )
    out = adjoint.loop(loop_inputs)
    if loop_inputs.meter is not None:
        _progress.finish(loop_inputs.meter, (out.t - tau0) / (tau1 - tau0))
    return _solution(i, direction, tau0, tau1, y0, out, init_fevals, bad_input)


def _solution(i: SolveInputs, direction, tau0, tau1, y0, out: LoopOutput, init_fevals, bad_input) -> Solution:
    """Saves in t, result checks (`throw`) and statistics: the `Solution` of a loop's output."""
    saveat, t0 = i.saveat, i.t0
    if i.saveat_ts is not None:
        # An empty interval takes no step, so no step saved its times (which are all t0).
        empty = tau1 == tau0
        out = out._replace(ts_ys=jax.tree.map(lambda s, y: jnp.where(empty, y[None], s), out.ts_ys, y0))
    ts, ys = _assemble_saves(saveat, direction, t0, out, y0, i.saveat_ts)
    result, dense_infos = out.result, out.dense_infos
    if i.throw:
        messages = tuple(m + " (Pass throw=False to inspect sol.result instead.)" if m else m for m in MESSAGES)
        failed, index = result != int(RESULTS.successful), result
        if bad_input is not None:
            # Bad input first: it explains a failed solve.
            input_failed, input_index, input_messages = bad_input
            failed = failed | input_failed
            index = jnp.where(input_failed, input_index, len(input_messages) + result)
            messages = input_messages + messages
        # One failure code (0: none), reduced over a vmapped batch once (the worst, as equinox
        # would choose), and used as the message index as it is.
        worst = -batch_min(-jnp.where(failed, index + 1, 0))
        ts, ys, dense_infos, result = eqx.branched_error_if(
            (ts, ys, dense_infos, result), worst > 0, worst, ("",) + tuple(messages)
        )
    event_mask = t_event = dense_end = None
    if i.event is not None:
        event_mask, t_event = event_outputs(i.event, out.events, direction)
        dense_end = out.t if saveat.dense else None
    stats = {
        "num_steps": out.num_steps,
        "num_accepted_steps": out.num_accepted,
        "num_rejected_steps": out.num_steps - out.num_accepted,
        "num_fevals": out.num_fevals + init_fevals,
        "max_steps": i.grid.shape[0] - 1 if isinstance(i.controller, StepTo) else i.max_steps,
    }
    return Solution(
        t0=t0,
        t1=i.t1,
        ts=ts,
        ys=ys,
        stats=stats,
        result=result,
        direction=direction,
        dense_ts=out.dense_ts,
        dense_infos=dense_infos,
        num_dense=out.num_dense if saveat.dense else None,
        interpolator=i.solver.interpolate if saveat.dense else None,
        dense_y0=y0 if saveat.dense else None,
        throw=i.throw,
        event_mask=event_mask,
        t_event=t_event,
        dense_end=dense_end,
    )


def _controller_in_tau(controller, direction):
    """The controller's `jump_ts` and `step_ts` (times t) in the loop's increasing time variable
    tau = direction * t, in the time dtype."""
    def to_tau(ts):
        return None if ts is None else direction * jnp.asarray(ts, direction.dtype)

    return dataclasses.replace(controller, jump_ts=to_tau(controller.jump_ts), step_ts=to_tau(controller.step_ts))


def _assemble_saves(saveat, direction, t0, out, y0, saveat_ts):
    """Concatenate saves in the order [t0] + ts + steps + [t1], converting tau back to t."""
    ts_parts, ys_parts = [], []
    if saveat.t0:
        ts_parts.append(t0[None])
        ys_parts.append(jax.tree.map(lambda y: y[None], y0))
    if saveat_ts is not None:
        ts_parts.append(saveat_ts)
        ys_parts.append(out.ts_ys)
    if saveat.steps:
        steps_ts = jnp.where(jnp.isfinite(out.steps_ts), direction * out.steps_ts, jnp.inf)
        ts_parts.append(steps_ts)
        ys_parts.append(out.steps_ys)
    if saveat.t1:
        ts_parts.append((direction * out.t)[None])
        ys_parts.append(jax.tree.map(lambda y: y[None], out.y))
    if not ts_parts:
        return None, None
    ts = jnp.concatenate(ts_parts)
    ys = jax.tree.map(lambda *parts: jnp.concatenate(parts), *ys_parts)
    return ts, ys
