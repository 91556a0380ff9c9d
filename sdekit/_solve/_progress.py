"""A tqdm progress meter driven from inside compiled loops by host callbacks.

A host callback interrupts the running loop (on XLA:CPU, from tens of microseconds to a few
milliseconds on a loaded machine), so the loops call back only at marks that the host sets by
wall time: a callback before the loop starts the clock and returns the first mark; each later
callback measures the rate so far and returns the fraction expected `UPDATE_SECONDS` later. A
solve of a tenth of a second thus calls back once or twice; a long one about four times a
second. The loops report between groups of steps, never inside them (a conditional callback in
every step cost a sizeable part of a small problem's run time): the scan runs its steps in
`updates_for(steps)` chunks and reports at a chunk's end once the mark is passed; the while loop
steps in an inner loop until the mark. Under `vmap` the slowest path decides (one callback for
the batch, through a batching rule), so a batched predicate never turns the conditional callback
into one per step.
"""

import functools
import itertools
import time

import jax
import numpy as np
import jax.numpy as jnp
from jax import lax
from jax.experimental import io_callback

from .._xla_cpu import PROGRESS_MIN_UPDATES, PROGRESS_STEPS_PER_UPDATE, PROGRESS_UPDATES
#: The least time between two redraws of a meter.
REFRESH_SECONDS = 0.1
#: The wall time the host aims for between two callbacks from the running loop.
UPDATE_SECONDS = 0.25
#: The first mark (solved fraction) of a run, before its rate is known.
FIRST_MARK = 0.02
#: The least advance of the mark: at most a thousand callbacks, however long the run.
MIN_MARK_STEP = 1e-3

_BARS: dict = {}
_LAST_DRAWN: dict = {}
_FINISHED: set = set()  # meters whose run has closed (late updates at 100% are ignored)
_STARTED: dict = {}  # meter id -> wall time of the run's start (the callback before the loop)
_IDS = itertools.count()


def require_tqdm() -> None:
    """Fail when the solve is called, not inside a callback of the compiled loop."""
    try:
        import tqdm.auto  # noqa: F401
    except ImportError as err:
        raise ImportError("progress=True needs tqdm: pip install 'sdekit[progress]' (or pip install tqdm).") from err


def new_meter_id() -> int:
    """A fresh id, taken at trace time, naming the meter of one compiled solve."""
    return next(_IDS)


def _update(meter_id: int, fraction, final: bool = False) -> None:
    from tqdm.auto import tqdm

    done = float(np.min(np.asarray(fraction)))  # under vmap, `finish` sees the batch
    if meter_id in _FINISHED:
        if done >= 1.0:
            return  # a late update of a run that has already closed its bar
        _FINISHED.discard(meter_id)  # a new run of the same compiled solve
    bar = _BARS.get(meter_id)
    if bar is None:
        bar = _BARS[meter_id] = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {n:.0f}/100% [{elapsed}<{remaining}]")
    bar.n = round(100 * min(max(done, 0.0), 1.0), 1)
    # Drawing costs more than the callback: at most every `REFRESH_SECONDS` (and at the end).
    now = time.monotonic()
    if final or now - _LAST_DRAWN.get(meter_id, -1e9) >= REFRESH_SECONDS:
        bar.refresh()
        _LAST_DRAWN[meter_id] = now


def _begin(meter_id: int, dtype):
    _STARTED[meter_id] = time.monotonic()
    return np.asarray(FIRST_MARK, dtype)


def next_mark(started: float, now: float, done: float) -> float:
    """The solved fraction expected `UPDATE_SECONDS` after `now`, at the rate since `started`
    (past 1 when the run should end sooner: no more callbacks until the end), and at least
    `MIN_MARK_STEP` ahead of `done` (so that the loop always steps before the next report)."""
    rate = done / max(now - started, 1e-9)
    return done + max(rate * UPDATE_SECONDS, MIN_MARK_STEP)


def _update_and_mark(meter_id: int, fraction, dtype):
    _update(meter_id, fraction)
    done = float(np.min(np.asarray(fraction)))
    now = time.monotonic()
    return np.asarray(next_mark(_STARTED.get(meter_id, now), now, done), dtype)


def _close(meter_id: int, fraction) -> None:
    _update(meter_id, fraction, final=True)
    _LAST_DRAWN.pop(meter_id, None)
    bar = _BARS.pop(meter_id, None)
    if bar is not None:
        bar.close()
    _STARTED.pop(meter_id, None)
    _FINISHED.add(meter_id)


def updates_for(steps: int) -> int:
    """How many chunks a fixed grid of `steps` steps runs in: the points at which it can report
    (an XLA:CPU policy: `_xla_cpu`)."""
    return max(PROGRESS_MIN_UPDATES, min(PROGRESS_UPDATES, steps // PROGRESS_STEPS_PER_UPDATE))


def _callback(host_fn, meter_id: int, dtype, *values):
    """`host_fn(meter_id, *values, dtype)` on the host, returning a scalar of `dtype`. An effect
    (`io_callback`), not a pure callback: the marks are seen by nothing but the loop's control,
    and a pure callback whose only consumer is such a loop-carried value is removed as dead code."""
    return io_callback(lambda *v: host_fn(meter_id, *v, dtype), jax.ShapeDtypeStruct((), dtype), *values, ordered=False)


def begin(meter_id: int, dtype):
    """Called once before the loop: starts the run's clock; returns the first mark."""
    return _callback(_begin, meter_id, jnp.dtype(dtype))


def _report_unbatched(meter_id, after, mark):
    # The mark is a value the host returned: the callback's result orders it inside the loop.
    dtype = mark.dtype
    return lax.cond(after >= mark, lambda: _callback(_update_and_mark, meter_id, dtype, after), lambda: mark)


def _report_batched(meter_id, axis_size, in_batched, after, mark):
    # The slowest path's progress: a reduction over the batch leaves an unbatched predicate.
    after, mark = (jnp.min(x, axis=0) if batched else x for x, batched in zip((after, mark), in_batched))
    return _reporter(meter_id)(after, mark), False


@functools.cache
def _reporter(meter_id: int):
    report = jax.custom_batching.custom_vmap(functools.partial(_report_unbatched, meter_id))
    report.def_vmap(functools.partial(_report_batched, meter_id))
    return report


def report(meter_id: int, after, mark):
    """Called inside the loop between groups of steps with the solved fraction of [t0, t1]
    `after` them and the current `mark`; calls back to the host only when the mark is passed,
    and returns the next mark."""
    after = lax.stop_gradient(after).astype(mark.dtype)
    return _reporter(meter_id)(after, lax.stop_gradient(mark))


def _finish_unbatched(meter_id, fraction):
    jax.debug.callback(functools.partial(_close, meter_id), fraction, ordered=False)
    return jnp.zeros((), bool)


def _finish_batched(meter_id, axis_size, in_batched, fraction):
    # One close for the batch, at the slowest path's fraction.
    return _finisher(meter_id)(jnp.min(fraction, axis=0) if in_batched[0] else fraction), False


@functools.cache
def _finisher(meter_id: int):
    close = jax.custom_batching.custom_vmap(functools.partial(_finish_unbatched, meter_id))
    close.def_vmap(functools.partial(_finish_batched, meter_id))
    return close


def finish(meter_id: int, fraction) -> None:
    """Called once after the loop: the final fraction, and the meter closes."""
    _finisher(meter_id)(lax.stop_gradient(fraction))
