r"""Events: `sk.Event`, and what the loops do with it at every step.

A condition $g(t, y, \text{args})$ is evaluated at the end of every accepted step. When its sign
changes across the step (in the chosen direction), the time of the change is located by a
bracketing root finder (`_bracket`) on the step's dense output, to the time dtype's precision,
and differentiated by the implicit function theorem. A terminating event stops the solve
there; a non-terminating one records its first crossing time and the solve goes on.

The loops carry an `EventState` only when an event is given: without one nothing here is traced.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, PyTree

from ._bracket import crossed_ends


def _is_condition(x) -> bool:
    return callable(x)


class Event(eqx.Module):
    r"""Stop a solve (or record a time) where a condition on the solution changes sign.

    Each condition $g(t, y, \text{args})$ returns a real scalar or a bool (a bool counts as
    $+1$ when true, $-1$ when false). It is evaluated at the end of every accepted step; when
    its sign changes across the step, the crossing time is located by root finding on the
    step's dense output (`Solver.interpolate`): Illinois' method, then bisection, to a few
    ulps of the time dtype. The time returned is the crossed side of that bracket: there the
    condition is zero or already has its new sign (a boolean condition already holds).

    An event fires when the condition *leaves* a strict sign: from negative (at a step's
    start) to zero or positive (at its end) is an up-crossing, from positive to zero or
    negative a down-crossing. A condition that is exactly zero at `t0` (a ball restarted on the
    ground) does not fire until it has taken a sign and left it. Two crossings within one step
    cancel out and are missed, as in every step-end detector: bound the step (`sk.PID(dtmax=...)`)
    if that matters.

    - **Terminating** events (`terminate=True`, the default) stop the solve at the earliest
      crossing among them: `SaveAt(t1=True)` saves the event time and the state there
      (`sol.ts[-1]`, `sol.ys[-1]`), `SaveAt(ts=...)` holds NaN at times after the event (there
      is no solution there: NaN cannot pass for a value, and it is what a failed solve leaves
      too), `SaveAt(steps=True)` ends with the event, and `sol.evaluate` refuses times past it.
      The solve counts as successful (`sol.result` is `successful`).
    - **Non-terminating** events (`terminate=False`) record the time of their first crossing
      before the solve ends (or before a terminating event stops it); the solve goes on to `t1`.
      Later crossings are not recorded.

    `sol.event_mask` says which events fired (for terminating ones: the one(s) that stopped the
    solve), `sol.t_event` when (NaN for events that did not fire), both with the structure of
    `condition`. Under `vmap` every lane has its own times; lanes that stop early idle while the
    others finish. With `sk.adjoint.Checkpointed` (the default), event times and the state at
    a terminating event are differentiable (ODEs: by the implicit function theorem on the dense
    output, $dt^*/d\theta = -(\partial_\theta g + \partial_y g\,\partial_\theta y) / (dg/dt)$,
    exact for the discrete solve; boolean conditions give no time derivative).

    For SDEs the event is located on the *discretised* path: SDE solvers' dense output is linear
    between step ends, so a crossing between grid points of the continuous path that the
    discrete one does not make is missed (hitting probabilities are biased low by
    $O(\sqrt{\Delta t})$: see docs/events.md).

    Args:
        condition: a function `condition(t, y, args) -> scalar`, or a pytree (list, tuple,
            dict) of them: several events at once.
        terminate: whether the event stops the solve; one bool for all conditions or a pytree
            of bools like `condition`.
        direction: `None` (either crossing), `+1` or `True` (up-crossings only: negative to
            positive, false to true), `-1` or `False` (down-crossings only); one for all
            conditions or a pytree like `condition`.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> fall = sk.ODE(lambda t, y, args: jnp.stack([y[1], -9.81 * jnp.ones_like(y[1])]))
        >>> ground = sk.Event(lambda t, y, args: y[0], direction=-1)
        >>> sol = sk.solve(fall, sk.solvers.tsit5(), 0.0, 10.0, jnp.array([1.0, 0.0]), dt0=0.1,
        ...                controller=sk.PID(rtol=1e-6, atol=1e-6), event=ground)
        >>> round(float(sol.ts[-1]), 5), bool(sol.event_mask)   # sqrt(2 / 9.81)
        (0.45152, True)
    """

    condition: Any
    terminate: tuple[bool, ...] = eqx.field(static=True)
    direction: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, condition, terminate=True, direction=None):
        leaves, treedef = jax.tree.flatten(condition, is_leaf=_is_condition)
        if not leaves:
            raise ValueError("sk.Event needs a condition: a function condition(t, y, args) -> scalar, or a "
                             "list/tuple/dict of them.")
        for leaf in leaves:
            if not callable(leaf):
                raise TypeError(f"sk.Event's conditions must be functions condition(t, y, args) -> scalar, got "
                                f"{type(leaf).__name__}.")
        self.condition = condition
        self.terminate = _per_event(terminate, treedef, "terminate", _as_terminate)
        self.direction = _per_event(direction, treedef, "direction", _as_direction)

    @property
    def conditions(self) -> list[Callable]:
        return jax.tree.leaves(self.condition, is_leaf=_is_condition)

    def unflatten(self, leaves):
        """A pytree like `condition` holding `leaves` (one per condition)."""
        return jax.tree.unflatten(jax.tree.structure(self.condition, is_leaf=_is_condition), leaves)


def _as_terminate(x):
    if isinstance(x, (bool, jnp.bool_)):
        return bool(x)
    raise ValueError(f"sk.Event(terminate=...) must be a bool (or a pytree of bools like the conditions), got {x!r}.")


def _as_direction(x):
    if x is None:
        return 0
    if isinstance(x, (bool, jnp.bool_)):
        return 1 if x else -1
    if isinstance(x, int) and x in (1, -1):
        return x
    raise ValueError(
        f"sk.Event(direction=...) must be None (either crossing), +1 or True (up: negative to positive), -1 or "
        f"False (down), or a pytree of those like the conditions; got {x!r}."
    )


def _per_event(value, treedef, name, convert) -> tuple:
    """One converted value per condition: `value` for all, or a pytree of values like the
    conditions."""
    def is_leaf(x):
        return x is None or isinstance(x, (bool, int, float, str))

    leaves, structure = jax.tree.flatten(value, is_leaf=is_leaf)
    if structure == jax.tree.structure(0):
        return tuple(convert(leaves[0]) for _ in range(treedef.num_leaves))
    if structure != treedef:
        raise ValueError(
            f"sk.Event({name}=...) must be one value for all conditions or a pytree with the conditions' "
            f"structure {treedef}, got {structure}."
        )
    return tuple(convert(x) for x in leaves)


class EventInLoop(NamedTuple):
    """An event as a loop sees it: with the time direction (times in the loop are tau =
    direction * t; conditions are called with t)."""

    event: Event
    direction: Float[Array, ""]


class EventState(NamedTuple):
    """What a loop carries for its events (k conditions).

    Attributes:
        values: the conditions at the current time (the time dtype; booleans as +-1).
        times: the first crossing time of each event, in tau (NaN while it has not fired).
        fired: whether each event has fired.
        stopped: whether a terminating event stopped the solve.
    """

    values: Float[Array, " k"]
    times: Float[Array, " k"]
    fired: Bool[Array, " k"]
    stopped: Bool[Array, ""]


def check_conditions(event: Event, t0, y0, args) -> None:
    """Each condition must return a real scalar or a bool: checked at trace time."""
    for index, condition in enumerate(event.conditions):
        out = eqx.filter_eval_shape(condition, t0, y0, args)
        where = "" if len(event.terminate) == 1 else f" (condition {index})"
        if not isinstance(out, jax.ShapeDtypeStruct):
            raise ValueError(f"An sk.Event condition{where} must return one scalar (real or bool), got the pytree "
                             f"{jax.tree.structure(out)}.")
        if out.shape != ():
            raise ValueError(f"An sk.Event condition{where} must return a scalar (real or bool), got shape "
                             f"{out.shape}; reduce it (e.g. y[0] - barrier) or pass several conditions.")
        if not (jnp.issubdtype(out.dtype, jnp.floating) or out.dtype == jnp.bool_):
            raise ValueError(f"An sk.Event condition{where} must return a real floating-point scalar or a bool, got "
                             f"dtype {out.dtype}.")


def _value(condition, t, y, args, dtype):
    g = condition(t, y, args)
    if jnp.result_type(g) == jnp.bool_:
        return jnp.where(g, 1, -1).astype(dtype)
    return jnp.asarray(g).astype(dtype)


def _is_boolean(event: Event, t, y, args) -> tuple[bool, ...]:
    return tuple(eqx.filter_eval_shape(c, t, y, args).dtype == jnp.bool_ for c in event.conditions)


def values_at(event: Event, t, y, args) -> Float[Array, " k"]:
    """All conditions at (t, y), in the dtype of t."""
    return jnp.stack([_value(c, t, y, args, t.dtype) for c in event.conditions])


def init_events(e: EventInLoop, tau, y, args) -> EventState:
    k = len(e.event.terminate)
    return EventState(
        values=values_at(e.event, e.direction * tau, y, args),
        times=jnp.full((k,), jnp.nan, tau.dtype),
        fired=jnp.zeros((k,), bool),
        stopped=jnp.zeros((), bool),
    )


def _crossing(event: Event, before, after):
    up = (before < 0) & (after >= 0)
    down = (before > 0) & (after <= 0)
    want_up = jnp.asarray([d >= 0 for d in event.direction])
    want_down = jnp.asarray([d <= 0 for d in event.direction])
    return (up & want_up) | (down & want_down)


def stop_time(event: Event, s: EventState) -> Float[Array, ""]:
    """Where a terminating event stopped the solve (tau; inf if none did)."""
    terminating = jnp.asarray(event.terminate)
    return jnp.min(jnp.where(s.fired & terminating, s.times, jnp.inf))


def _frozen(tree):
    """`tree` without derivatives (array leaves stop-gradient'd, others kept): the root finder's
    iterations are not differentiated."""
    return jax.tree.map(lambda x: lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


def _differentiable_root(phi, root):
    r"""`root` (a zero of `phi`, found without derivatives) with the derivative the implicit
    function theorem gives it: $d\tau^* = -\,d\phi / \phi'(\tau^*)$, through one exact-zero
    Newton correction (its value is `root` itself)."""
    root = lax.stop_gradient(root)
    value, slope = jax.jvp(phi, (root,), (jnp.ones_like(root),))
    slope = lax.stop_gradient(slope)
    safe = jnp.where(slope == 0, 1, slope)
    return root - jnp.where(slope == 0, 0, (value - lax.stop_gradient(value)) / safe)


def _locate(e: EventInLoop, s: EventState, solver, dense, t, tnext, y1, args, after, crossing):
    """Crossing times in (t, tnext] of the events that crossed (tnext for the others), and the
    state at the earliest terminating one (y1 if none)."""
    event, direction = e.event, e.direction
    conditions = event.conditions
    booleans = _is_boolean(event, direction * tnext, y1, args)

    def phi(k, c, d, a):
        def at(tau):
            return _value(c[k], direction * tau, solver.interpolate(d, t, tnext, tau), a, tau.dtype)

        return at

    frozen_c, frozen_d, frozen_a = _frozen((conditions, dense, args))
    t_f, tnext_f = lax.stop_gradient(t), lax.stop_gradient(tnext)

    def all_at(taus):
        return jnp.stack([
            _value(frozen_c[k], direction * taus[k], solver.interpolate(frozen_d, t_f, tnext_f, taus[k]), frozen_a,
                   taus.dtype)
            for k in range(len(conditions))
        ])

    k = len(conditions)
    roots = crossed_ends(all_at, jnp.full((k,), t_f), jnp.full((k,), tnext_f), lax.stop_gradient(s.values),
                         lax.stop_gradient(after), crossing, jnp.asarray(booleans))
    roots = jnp.where(crossing, roots, tnext)
    taus = jnp.stack([
        roots[j] if booleans[j] else _differentiable_root(phi(j, conditions, dense, args), roots[j]) for j in range(k)
    ])
    terminating = crossing & jnp.asarray(event.terminate)
    tau_stop = jnp.min(jnp.where(terminating, taus, jnp.inf))
    y_stop = solver.interpolate(dense, t, tnext, jnp.where(jnp.any(terminating), tau_stop, tnext))
    y_stop = jax.tree.map(lambda a, b: jnp.where(jnp.any(terminating), a, b), y_stop, y1)
    return taus, y_stop


def step_events(e: EventInLoop, s: EventState, solver, dense, t, tnext, y1, args, accept):
    """The events of one step from `t` to `tnext` (tau), accepted or not.

    Returns:
        `(state, stop, tau_stop, y_stop)`: the new `EventState`; whether a terminating event
        stopped the solve in this step, where (tau; `tnext` if not), and the state there (the
        dense output's value; `y1` if not).
    """
    event = e.event
    after = values_at(event, e.direction * tnext, y1, args)
    crossing = accept & ~s.fired & _crossing(event, s.values, after)

    def located():
        return _locate(e, s, solver, dense, t, tnext, y1, args, after, crossing)

    def none():
        return jnp.full(crossing.shape, tnext), y1

    # Unbatched predicate: under vmap the root finder runs only in steps where some lane crossed.
    taus, y_stop = lax.cond(eqxi.unvmap_any(jnp.any(crossing)), located, none)
    terminating = crossing & jnp.asarray(event.terminate)
    stop = jnp.any(terminating)
    tau_stop = jnp.min(jnp.where(terminating, taus, jnp.inf))
    record = crossing & (taus <= tau_stop)
    new = EventState(
        values=jnp.where(accept, after, s.values),
        times=jnp.where(record, taus, s.times),
        fired=s.fired | record,
        stopped=s.stopped | stop,
    )
    return new, stop, jnp.where(stop, tau_stop, tnext), y_stop


def event_outputs(event: Event, s: EventState, direction) -> tuple[PyTree[Bool[Array, ""]], PyTree[Float[Array, ""]]]:
    """`(event_mask, t_event)`: pytrees like the conditions, times in t (NaN where not fired)."""
    times = jnp.where(s.fired, direction * s.times, jnp.nan)
    k = len(event.terminate)
    return event.unflatten([s.fired[j] for j in range(k)]), event.unflatten([times[j] for j in range(k)])


__all__ = ["Event"]
