"""A tqdm progress meter driven from inside compiled loops by host callbacks."""

import functools
import itertools

import jax
import numpy as np

_BARS: dict = {}
_FINISHED: set = set()  # meters whose run has closed (late updates at 100% are ignored)
_IDS = itertools.count()


def new_meter_id() -> int:
    """A fresh id, taken at trace time, naming the meter of one compiled solve."""
    return next(_IDS)


def _update(meter_id: int, fraction) -> None:
    try:
        from tqdm.auto import tqdm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install 'sdekit[progress]'.") from err
    # Under vmap the callback sees the whole batch: report the slowest path.
    done = float(np.min(np.asarray(fraction)))
    if meter_id in _FINISHED:
        if done >= 1.0:
            return  # a late update of a run that has already closed its bar
        _FINISHED.discard(meter_id)  # a new run of the same compiled solve
    bar = _BARS.get(meter_id)
    if bar is None:
        bar = _BARS[meter_id] = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {n:.1f}/100% [{elapsed}<{remaining}]")
    bar.n = round(100 * min(max(done, 0.0), 1.0), 1)
    bar.refresh()


def _close(meter_id: int, fraction) -> None:
    _update(meter_id, fraction)
    bar = _BARS.pop(meter_id, None)
    if bar is not None:
        bar.close()
    _FINISHED.add(meter_id)


def report(meter_id: int, fraction) -> None:
    """Called inside the loop body with the solved fraction of [t0, t1]."""
    jax.debug.callback(functools.partial(_update, meter_id), fraction, ordered=False)


def finish(meter_id: int, fraction) -> None:
    jax.debug.callback(functools.partial(_close, meter_id), fraction, ordered=False)
