"""What a solve is given, as named tuples: `SolveInputs` (what `sk.solve` prepared, handed to an
adjoint's `run`) and `LoopInputs` (what the loops step through, in the forward time variable)."""

from typing import Any, NamedTuple

from jaxtyping import Array, Float, PyTree

from ..brownian import BrownianTree
from ..controllers import PID, ConstantStep, StepTo
from ..solvers import Solver
from ..terms import ODE, SDE
from ._saveat import SaveAt


class SolveInputs(NamedTuple):
    """A prepared solve: numbers as arrays of the time dtype, checks that could be done done.

    Attributes:
        problem, solver, controller, saveat, y0, args, brownian, max_steps, throw, progress: as
            given to `sk.solve` (floats of `args` and the controller as arrays).
        t0, t1, dt0: the interval and step, arrays of the time dtype (`dt0` may be None).
        saveat_ts: `saveat.ts` in the time dtype, or None.
        grid: the fixed grid of step ends (a `StepTo`, or constant steps known at trace
            time), or None.
        checked: whether the numbers were checked eagerly (else checked at run time).
        event: the `sk.Event`, or None.
    """

    problem: ODE | SDE
    solver: Solver
    controller: ConstantStep | StepTo | PID
    saveat: SaveAt
    t0: Float[Array, ""]
    t1: Float[Array, ""]
    y0: PyTree[Array]
    args: Any
    dt0: Float[Array, ""] | None
    saveat_ts: Float[Array, " n"] | None
    grid: Float[Array, " m"] | None
    max_steps: int
    throw: bool
    progress: bool
    checked: bool
    brownian: BrownianTree | None
    event: Any = None


class LoopInputs(NamedTuple):
    """What a loop steps through, in the time variable tau = direction * t (increasing).

    Attributes:
        problem: the problem in tau (ODEs backwards in time are reversed; SDEs run forwards).
        solver, controller, saveat, args, max_steps: as in `SolveInputs`.
        t0, t1: the interval in tau; `dt0` the (initial) step size, positive, or None.
        y0: the initial state.
        grid: the fixed grid in tau, or None (steps chosen in a while loop).
        saveat_ts: save times in tau, or None.
        meter: the progress meter's id, or None.
        noise: where increments come from (`NoNoise` or `TreeNoise`).
        error_order: the order of the solver's error estimate for this problem.
        revisit: how many rejected step ends to remember (SDEs with general noise).
        event: the event with the time direction (`_events.EventInLoop`), or None.
    """

    problem: Any
    solver: Solver
    controller: ConstantStep | StepTo | PID
    saveat: SaveAt
    t0: Float[Array, ""]
    t1: Float[Array, ""]
    y0: PyTree[Array]
    args: Any
    dt0: Float[Array, ""] | None
    grid: Float[Array, " m"] | None
    saveat_ts: Float[Array, " n"] | None
    max_steps: int
    meter: int | None
    noise: Any
    error_order: float | None
    revisit: int
    event: Any = None


class LoopOutput(NamedTuple):
    """What a loop returns (times in tau).

    Attributes:
        t, y: where the loop stopped, and the state there.
        result: an `sk.RESULTS` code (int32).
        num_steps, num_accepted, num_fevals: counters (int32).
        ts_ys: values at `SaveAt(ts)`; steps_ts, steps_ys: `SaveAt(steps)`; dense_ts,
            dense_infos, num_dense: step boundaries and per-step dense output (None where not
            asked for).
        events: the events' `_events.EventState` at the end (None without an event).
    """

    t: Float[Array, ""]
    y: PyTree[Array]
    result: Array
    num_steps: Array
    num_accepted: Array
    num_fevals: Array
    ts_ys: PyTree[Array] | None
    steps_ts: Float[Array, " s"] | None
    steps_ys: PyTree[Array] | None
    dense_ts: Float[Array, " d"] | None
    dense_infos: PyTree[Array] | None
    num_dense: Array | None
    events: Any = None


__all__ = ["LoopInputs", "LoopOutput", "SolveInputs"]
