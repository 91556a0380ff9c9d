"""Pieces shared by the grid (scan) and adaptive (while) loops."""

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._xla_cpu import SELECT_WRITE_MAX


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


#: Save times handled inline per step before falling back to the inner loop.
INLINE_SAVES = 1


def save_ts_in_step(solver, saveat_ts, save_index, ys_buffer, dense, t, tnext, y1, active, differentiable=False,
                    until=None):
    """Fill every requested save time in (t, tnext] -- and t itself for the first step -- from the
    step's dense output. `active` gates the whole thing (a rejected or frozen step saves nothing).
    With `until` (a terminating event's time in the step), only save times up to it are filled.

    Most steps hold at most a couple of save times: those are done inline; an inner while loop (whose
    iterations cost more than an interpolation, especially under vmap) handles the rest. With
    `differentiable`, that loop is equinox's checkpointed one, so reverse mode works through it.
    """
    num = saveat_ts.shape[0]

    def save_one(index, buffer, due):
        ts_at = read_at(saveat_ts, index)
        y_at = solver.interpolate(dense, t, tnext, ts_at)
        y_at = tree_where(ts_at == tnext, exact_end_value(y1, y_at), y_at)
        buffer = write_at(buffer, index, y_at, due)
        return index + due.astype(index.dtype), buffer

    last = tnext if until is None else until

    def is_due(index):
        return active & (index < num) & (read_at(saveat_ts, index) <= last)

    for _ in range(INLINE_SAVES):
        save_index, ys_buffer = save_one(save_index, ys_buffer, is_due(save_index))

    def cond(carry):
        return is_due(carry[0])

    def body(carry):
        return save_one(*carry, jnp.ones((), bool))

    if differentiable:
        return eqxi.while_loop(cond, body, (save_index, ys_buffer), max_steps=num, kind="checkpointed")
    return lax.while_loop(cond, body, (save_index, ys_buffer))


def exact_end_value(y_end, y_interpolated):
    """A save at a step's end: the end value exactly (no interpolation rounding), differentiated
    as the interpolant, which keeps the save time fixed while the step moves (the end value's
    own derivative would move the save with the step end: wrong time gradients)."""
    return jax.tree.map(lambda a, b: lax.stop_gradient(a) + (b - lax.stop_gradient(b)), y_end, y_interpolated)


def saves_from_grid_steps(solver, grid, saveat_ts, dense, step_ends, step_active, until=None):
    """Saves of a fixed-grid solve from its per-step dense outputs (leading axis: steps): each
    save time is interpolated in the grid step holding it, all at once after the scan. No loop
    over saves inside the scan, so forward and reverse mode both go through. With `until` (where
    a terminating event stopped the solve), save times after it are NaN."""
    num_steps = grid.shape[0] - 1
    index = jnp.clip(jnp.searchsorted(grid, saveat_ts, side="left") - 1, 0, num_steps - 1)
    start, end = grid[index], grid[index + 1]
    at = lambda tree: jax.tree.map(lambda x: x[index], tree)  # noqa: E731
    y_interpolated = jax.vmap(solver.interpolate)(at(dense), start, end, saveat_ts)
    y_end = at(step_ends)
    at_end = saveat_ts == end
    ys = jax.tree.map(lambda e, y: jnp.where(_expand(at_end, y), e, y),
                      exact_end_value(y_end, y_interpolated), y_interpolated)
    # Steps after a failure froze the state: their saves are NaN (as in the while loop).
    valid = step_active[index]
    if until is not None:
        valid = valid & (saveat_ts <= until)
    return jax.tree.map(lambda y: jnp.where(_expand(valid, y), y, jnp.asarray(jnp.nan, y.dtype)), ys)


def _expand(mask, like):
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def write_at(buffer, index, value, active):
    """`buffer[index] = value` where `active`, nothing otherwise."""
    size = jax.tree.leaves(buffer)[0].shape[0]
    if size <= SELECT_WRITE_MAX:
        hit = (jnp.arange(size, dtype=jnp.int32) == index) & active

        def leaf(b, v):
            mask = hit.reshape((size,) + (1,) * (b.ndim - 1))
            return jnp.where(mask, jnp.asarray(v, b.dtype)[None], b)

        return jax.tree.map(leaf, buffer, value)
    index = jnp.where(active, index, size)
    return jax.tree.map(lambda b, v: b.at[index].set(jnp.asarray(v, b.dtype), mode="drop"), buffer, value)


def read_at(array, index):
    """`array[index]` for a 1-D array, by a masked sum when short (no gather under vmap)."""
    size = array.shape[0]
    index = jnp.clip(index, 0, size - 1)
    if size <= SELECT_WRITE_MAX:
        return jnp.sum(jnp.where(jnp.arange(size, dtype=jnp.int32) == index, array, jnp.zeros_like(array)))
    return array[index]


def constant_step_count(tau0, tau1, step, xp=jnp):
    r"""How many constant steps of size `step` (> 0) cover $[\tau_0, \tau_1]$: $(\tau_1 -
    \tau_0)/\text{step}$ rounded to the nearest integer when it is one up to the rounding of
    the times (a few ulps of the ratio), else rounded up. So no step is longer than `step` by
    more than rounding, in float32 as in float64 (snapping the ends onto $\tau_1$ within a
    fixed number of ulps of $\tau_1$ dropped steps over long horizons), and there is no sliver
    of a last step from rounding alone. A float; `xp` is `numpy` for numbers known at trace
    time, `jax.numpy` otherwise."""
    ratio = (tau1 - tau0) / step
    nearest = xp.round(ratio)
    slack = 8 * xp.finfo(xp.result_type(ratio)).eps * xp.maximum(ratio, 1)
    return xp.where(xp.abs(ratio - nearest) <= slack, nearest, xp.ceil(ratio))


def constant_step_end(tau0, tau1, step, k, count, xp=jnp):
    r"""The end of constant step `k` (0-based): $\tau_0 + (k+1)\,\text{step}$, computed from
    $\tau_0$ (no accumulated sums), and exactly $\tau_1$ for the last step."""
    k1 = xp.asarray(k + 1).astype(xp.result_type(tau0))
    return xp.where(k1 >= count, tau1, xp.minimum(tau0 + k1 * step, tau1))


def constant_step_grid(t0, t1, dt0, dtype, max_steps: int, tol=None):
    r"""The step ends of `ConstantStep` from `t0`, `t1`, `dt0` as the user gave them, as a grid of
    time dtype `dtype` for the scan loop, or None where the while loop must run: traced or bad
    numbers, over `max_steps` steps, or (with a Brownian tree's `tol`) a shortened last step
    below it.

    The ends are the while loop's (`constant_step_end`) in the same dtype, in the forward time
    $\tau = \pm t$."""
    if dt0 is None or any(isinstance(x, jax.core.Tracer) for x in (t0, t1, dt0)):
        return None
    dtype = np.dtype(dtype)
    t0, t1, dt0 = (np.asarray(x, dtype) for x in (t0, t1, dt0))
    if not (np.isfinite([t0, t1, dt0]).all() and (t1 - t0) * dt0 > 0):
        return None  # bad numbers (the checks explain them) or an empty interval
    direction = dtype.type(1 if t1 >= t0 else -1)
    tau0, tau1, step = direction * t0, direction * t1, np.abs(dt0)
    count = constant_step_count(tau0, tau1, step, np)
    if not np.isfinite(count) or count > max_steps:
        return None
    ends = constant_step_end(tau0, tau1, step, np.arange(int(count)), count, np).astype(dtype)
    grid = np.concatenate([np.asarray([tau0], dtype), ends])
    if tol is not None and np.min(np.diff(grid)) < tol:
        return None
    return jnp.asarray(direction * grid)


def snap_to_end(tnext, t_end, t_start):
    """Land exactly on `t_end` when within 100 ulps of it (avoids a sliver of a last step)."""
    eps = jnp.finfo(jnp.result_type(tnext)).eps
    scale = jnp.maximum(jnp.maximum(jnp.abs(t_end), jnp.abs(t_start)), jnp.abs(t_end - t_start))
    return jnp.where(tnext >= t_end - 100 * eps * scale, t_end, tnext)
