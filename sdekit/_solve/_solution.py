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

    def evaluate(self, t: RealScalarLike):
        """The dense-output solution at time `t` in [t0, t1] (needs `SaveAt(dense=True)`).

        Within each accepted step this is the solver's interpolant, so its accuracy is the
        solver's `interpolation_order`. Vectorise over many `t` with `jax.vmap`.
        """
        if self.dense_infos is None:
            raise ValueError("sol.evaluate needs dense output: solve with saveat=sk.SaveAt(dense=True).")
        tau = self.direction * jnp.asarray(t, self.dense_ts.dtype)
        # dense_ts holds step boundaries (padded with the final time); pick the step containing tau.
        index = jnp.searchsorted(self.dense_ts, tau, side="right") - 1
        index = jnp.clip(index, 0, jnp.maximum(self.num_dense - 1, 0))
        info = jax.tree.map(lambda x: x[index], self.dense_infos)
        return self.interpolator(info, self.dense_ts[index], self.dense_ts[index + 1], tau)

    def derivative(self, t: RealScalarLike):
        """The time derivative of `evaluate` at `t` (forward-mode differentiation of the interpolant)."""
        t = jnp.asarray(t, self.dense_ts.dtype if self.dense_ts is not None else None)
        _, dy = jax.jvp(self.evaluate, (t,), (jnp.ones_like(t),))
        return dy
