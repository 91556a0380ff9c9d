"""Pieces shared by the grid (scan) and adaptive (while) loops."""

import jax
import jax.numpy as jnp
from jax import lax


def tree_where(pred, new, old):
    """Select `new` where `pred` (a scalar, possibly batched under vmap) else `old`, leafwise."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def all_finite(tree) -> jax.Array:
    ok = jnp.ones((), bool)
    for leaf in jax.tree.leaves(tree):
        ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


def nan_buffer(y0, n: int):
    """`n` copies of the structure of `y0`, filled with NaN (unused save slots)."""
    return jax.tree.map(lambda y: jnp.full((n,) + jnp.shape(y), jnp.nan, jnp.result_type(y)), y0)


def save_ts_in_step(solver, saveat_ts, save_index, ys_buffer, dense, t, tnext, y1, active):
    """Fill every requested save time in (t, tnext] -- and t itself for the first step -- from the
    step's dense output. `active` gates the whole thing (a rejected or frozen step saves nothing)."""
    num = saveat_ts.shape[0]

    def cond(carry):
        index, _ = carry
        in_range = index < num
        ts_at = saveat_ts[jnp.minimum(index, num - 1)]
        return active & in_range & (ts_at <= tnext)

    def body(carry):
        index, buffer = carry
        ts_at = saveat_ts[index]
        y_at = solver.interpolate(dense, t, tnext, ts_at)
        # The end of the step is known exactly: no interpolation rounding there.
        y_at = tree_where(ts_at == tnext, y1, y_at)
        buffer = jax.tree.map(lambda b, v: b.at[index].set(v.astype(b.dtype)), buffer, y_at)
        return index + 1, buffer

    return lax.while_loop(cond, body, (save_index, ys_buffer))


def write_at(buffer, index, value, active):
    """`buffer[index] = value` where `active`, dropped otherwise (no copy of the buffer)."""
    size = jax.tree.leaves(buffer)[0].shape[0]
    index = jnp.where(active, index, size)
    return jax.tree.map(lambda b, v: b.at[index].set(jnp.asarray(v, b.dtype), mode="drop"), buffer, value)


def snap_to_end(tnext, t_end, t_start):
    """Land exactly on `t_end` when within 100 ulps of it (avoids a sliver of a last step)."""
    eps = jnp.finfo(jnp.result_type(tnext)).eps
    scale = jnp.maximum(jnp.maximum(jnp.abs(t_end), jnp.abs(t_start)), jnp.abs(t_end - t_start))
    return jnp.where(tnext >= t_end - 100 * eps * scale, t_end, tnext)
