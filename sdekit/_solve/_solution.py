"""The result of a solve: saved values, statistics, result code and dense output."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._typing import RealScalarLike


class Solution(eqx.Module):
    """What `sk.solve` returns.

    Attributes:
        t0, t1: the interval solved over.
        ts: saved times (in the order asked for by `SaveAt`), or `None`.
        ys: saved states, each leaf with a leading axis matching `ts`, or `None`.
        stats: `num_steps`, `num_accepted_steps`, `num_rejected_steps`, `num_fevals`
            (vector-field evaluations) and `max_steps`.
        result: an `sk.RESULTS` code (int32 array; batched under vmap).
        event_mask: with `sk.solve(..., event=sk.Event(...))`, which events fired: bools with the
            structure of the event's conditions (for terminating events, the one that stopped
            the solve); `None` without an event.
        t_event: when each event fired (its first crossing time; NaN for events that did not
            fire), with the same structure; `None` without an event.
    """

    t0: Array
    t1: Array
    ts: Float[Array, " n"] | None
    ys: object
    stats: dict
    result: Int[Array, ""]
    direction: Array
    dense_ts: Float[Array, " m"] | None = None
    dense_infos: object = None
    num_dense: Int[Array, ""] | None = None
    interpolator: Callable | None = eqx.field(static=True, default=None)
    dense_y0: object = None
    throw: bool = eqx.field(static=True, default=True)
    event_mask: object = None
    t_event: object = None
    dense_end: Array | None = None  # where the solve ended (tau), bounding `evaluate` after an event

    def evaluate(self, t: RealScalarLike):
        """The dense-output solution at time `t` in [t0, t1] (needs `SaveAt(dense=True)`).

        Within each accepted step this is the solver's interpolant, so its accuracy is the
        solver's `interpolation_order`. Vectorise over many `t` with `jax.vmap`. Over an empty
        interval (`t0 == t1`) it is `y0`.

        A time outside the solved interval (outside [t0, t1], or past where a failed solve or a
        terminating event stopped) is never extrapolated: with the solve's `throw=True` it raises (at run time
        under `jit`, an `equinox.EquinoxRuntimeError`), with `throw=False` it gives NaN.
        """
        if self.dense_infos is None:
            raise ValueError("sol.evaluate needs dense output: solve with saveat=sk.SaveAt(dense=True).")
        tau = self.direction * jnp.asarray(t, self.dense_ts.dtype)
        # dense_ts holds step boundaries (padded with the final time); pick the step containing tau.
        index = jnp.searchsorted(self.dense_ts, tau, side="right") - 1
        index = jnp.clip(index, 0, jnp.maximum(self.num_dense - 1, 0))
        info = jax.tree.map(lambda x: x[index], self.dense_infos)
        y = self.interpolator(info, self.dense_ts[index], self.dense_ts[index + 1], tau)
        empty = self.num_dense == 0
        y = jax.tree.map(lambda a, b: jnp.where(empty, b, a), y, self.dense_y0)
        end = self.dense_ts[self.num_dense] if self.dense_end is None else self.dense_end
        outside = (tau < self.dense_ts[0]) | (tau > end) | jnp.isnan(tau)
        if self.throw:
            return eqx.error_if(y, outside, "sol.evaluate(t): t lies outside the solved interval (dense output "
                                "does not extrapolate).")
        return jax.tree.map(lambda a: jnp.where(outside, jnp.asarray(jnp.nan, a.dtype), a), y)

    def derivative(self, t: RealScalarLike):
        """The time derivative of `evaluate` at `t` (forward-mode differentiation of the interpolant;
        zero over an empty interval). Outside the solved interval: as `evaluate`."""
        t = jnp.asarray(t, self.dense_ts.dtype if self.dense_ts is not None else None)
        _, dy = jax.jvp(self.evaluate, (t,), (jnp.ones_like(t),))
        return dy
