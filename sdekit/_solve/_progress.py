"""A tqdm progress meter driven from inside compiled loops by host callbacks.

A host callback costs far more than a step of a small problem, so the loops report only when
the solved fraction crosses one of `updates` marks (`updates_for(steps)`), between groups of steps rather than inside
them (a conditional callback in every step cost a sizeable part of a small problem's run time): the scan
runs its steps in chunks, the while loop steps in an inner loop until the next mark. Under
`vmap` the marks of the slowest path decide (one callback for the batch, through a batching
rule), so a batched predicate never turns the conditional callback into one per step.
"""

import functools
import itertools
import time

import jax
import numpy as np
import jax.numpy as jnp
from jax import lax

from .._xla_cpu import PROGRESS_MIN_UPDATES, PROGRESS_STEPS_PER_UPDATE, PROGRESS_UPDATES
#: The least time between two redraws of a meter.
REFRESH_SECONDS = 0.1

_BARS: dict = {}
_LAST_DRAWN: dict = {}
_FINISHED: set = set()  # meters whose run has closed (late updates at 100% are ignored)
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


def _close(meter_id: int, fraction) -> None:
    _update(meter_id, fraction, final=True)
    _LAST_DRAWN.pop(meter_id, None)
    bar = _BARS.pop(meter_id, None)
    if bar is not None:
        bar.close()
    _FINISHED.add(meter_id)


def updates_for(steps: int) -> int:
    """How many marks a loop of (at most) `steps` steps reports at (an XLA:CPU policy: `_xla_cpu`)."""
    return max(PROGRESS_MIN_UPDATES, min(PROGRESS_UPDATES, steps // PROGRESS_STEPS_PER_UPDATE))


def mark(fraction, updates: int):
    """Which of the `updates` marks the solved `fraction` has reached."""
    return jnp.floor(jnp.clip(fraction, 0, 1) * updates)


def _report_unbatched(meter_id, updates, before, after):
    crossed = mark(after, updates) > mark(before, updates)
    lax.cond(crossed, lambda: jax.debug.callback(functools.partial(_update, meter_id), after), lambda: None)
    return jnp.zeros((), bool)


def _report_batched(meter_id, updates, axis_size, in_batched, before, after):
    # The slowest path's progress: a reduction over the batch leaves an unbatched predicate.
    before, after = (jnp.min(x, axis=0) if batched else x for x, batched in zip((before, after), in_batched))
    return _reporter(meter_id, updates)(before, after), False


@functools.cache
def _reporter(meter_id: int, updates: int):
    report = jax.custom_batching.custom_vmap(functools.partial(_report_unbatched, meter_id, updates))
    report.def_vmap(functools.partial(_report_batched, meter_id, updates))
    return report


def report(meter_id: int, before, after, updates: int) -> None:
    """Called inside the loop body with the solved fraction of [t0, t1] before and after the
    step; calls back to the host only when one of the `updates` marks is crossed."""
    _reporter(meter_id, updates)(lax.stop_gradient(before), lax.stop_gradient(after))


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
