"""Statistics over the paths axis of sharded ensembles, computed per device and combined with
small collectives: the paths are never gathered on one device."""

from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike, Float

from ._distribute import auto_mesh


def mean(x: Float[ArrayLike, "paths ..."]) -> Float[Array, "..."]:
    """The mean over the leading (paths) axis of `x`, e.g. `sol.ys`.

    On an array sharded along its first axis (what `sample_paths(..., mesh=...)` returns), each
    device reduces its own paths and the partial results are combined (Chan et al.'s pairwise
    formulas); the result is replicated. Equal to `x.mean(0)` to float rounding.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sk.ensemble.mean(jnp.array([[1.0, 2.0], [3.0, 6.0]]))
        Array([2., 4.], dtype=float32)
    """
    return _moments(jnp.asarray(x) if not isinstance(x, jax.Array) else x)[1]


def variance(x: Float[ArrayLike, "paths ..."], ddof: int = 0) -> Float[Array, "..."]:
    """The variance over the leading (paths) axis (`ddof=1`: the unbiased estimate); per device,
    then combined as in `mean`.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sk.ensemble.variance(jnp.array([[1.0, 2.0], [3.0, 6.0]]), ddof=1)
        Array([2., 8.], dtype=float32)
    """
    count, _, m2 = _moments(jnp.asarray(x) if not isinstance(x, jax.Array) else x)
    return m2 / (count - ddof)


def quantile(x: Float[ArrayLike, "paths ..."], q: Float[ArrayLike, "*qs"]) -> Float[Array, "..."]:
    """Quantiles over the leading (paths) axis, as `numpy.quantile(x, q, axis=0)` (linear
    interpolation between order statistics), without sorting or gathering the paths.

    The order statistics are found exactly by bisection on the floats' bit patterns: each of
    the (32 or 64) rounds counts, on every device, the paths at or below a candidate value and
    sums the counts over devices. A column with a NaN gives NaN.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> x = jnp.arange(10.0)[:, None] ** 2
        >>> [round(float(v), 3) for v in sk.ensemble.quantile(x, jnp.array([0.5, 0.9]))[:, 0]]
        [20.5, 65.7]
    """
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    q = jnp.asarray(q, x.dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"quantile needs floating-point values, got {x.dtype}.")
    return _sharded(partial(_quantile_local, q=q), x, _axes(x))


def _moments(x):
    if x.ndim < 1:
        raise ValueError("ensemble statistics need a leading paths axis.")
    return _sharded(_moments_local, x, _axes(x))


def _axes(x):
    """The mesh and axis names that shard `x`'s first axis, or None."""
    sharding = getattr(x, "sharding", None)
    if isinstance(sharding, NamedSharding) and len(sharding.spec) > 0 and sharding.spec[0] is not None:
        names = sharding.spec[0]
        return sharding.mesh, names if isinstance(names, tuple) else (names,)
    return None


def _sharded(local, x, axes):
    if axes is None:
        return jax.jit(local, static_argnames="names")(x, names=None)
    mesh, names = axes
    mesh = auto_mesh(mesh)
    spec = PartitionSpec(names, *([None] * (x.ndim - 1)))
    run = jax.shard_map(partial(local, names=names), mesh=mesh, in_specs=(spec,), out_specs=PartitionSpec(),
                        check_vma=False)
    return jax.jit(run)(x)


def _psum(v, names):
    return v if names is None else jax.lax.psum(v, names)


def _moments_local(x, names):
    """Count, mean and sum of squared deviations: per device, then combined exactly."""
    n = jnp.asarray(x.shape[0], x.dtype)
    local_mean = x.mean(0)
    local_m2 = ((x - local_mean[None]) ** 2).sum(0)
    count = _psum(n, names)
    total_mean = _psum(n * local_mean, names) / count
    m2 = _psum(local_m2 + n * (local_mean - total_mean) ** 2, names)
    return count, total_mean, m2


def _ordered(v):
    """Float bits as signed ints ordered like the floats (an involution for the bits)."""
    bits = jax.lax.bitcast_convert_type(v, _int_type(v.dtype))
    return jnp.where(bits < 0, bits ^ jnp.iinfo(bits.dtype).max, bits)


def _from_ordered(k, dtype):
    bits = jnp.where(k < 0, k ^ jnp.iinfo(k.dtype).max, k)
    return jax.lax.bitcast_convert_type(bits, dtype)


def _int_type(dtype):
    return {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[jnp.dtype(dtype).itemsize]


def _order_statistics(x, ranks, names):
    """The `ranks`-th smallest values (0-based, shape (K, ...)) of the distributed column(s):
    the smallest value v with count(x <= v) > rank, bisected over ordered bit patterns."""
    lo = _ordered(jnp.broadcast_to(_pmin(x.min(0), names), ranks.shape))
    hi = _ordered(jnp.broadcast_to(_pmax(x.max(0), names), ranks.shape))

    def count_at_most(v):
        return _psum(jnp.sum(x[None] <= v[:, None], axis=1, dtype=jnp.int32), names)

    def step(_, bounds):
        lo, hi = bounds
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
        enough = count_at_most(_from_ordered(mid, x.dtype)) > ranks
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    lo, _ = jax.lax.fori_loop(0, 8 * jnp.dtype(x.dtype).itemsize, step, (lo, hi))
    return _from_ordered(lo, x.dtype)


def _pmin(v, names):
    return v if names is None else jax.lax.pmin(v, names)


def _pmax(v, names):
    return v if names is None else jax.lax.pmax(v, names)


def _quantile_local(x, names, q):
    count = _psum(jnp.asarray(x.shape[0], jnp.int32), names)
    position = q.reshape(-1) * (count - 1).astype(x.dtype)
    below = jnp.floor(position)
    frac = (position - below).reshape(-1, *([1] * (x.ndim - 1)))
    below = below.astype(jnp.int32)
    above = jnp.minimum(below + 1, count - 1)
    shape = (below.shape[0], *x.shape[1:])
    ranks = jnp.concatenate([jnp.broadcast_to(below.reshape(-1, *([1] * (x.ndim - 1))), shape),
                             jnp.broadcast_to(above.reshape(-1, *([1] * (x.ndim - 1))), shape)])
    stats = _order_statistics(x, ranks, names)
    a, b = stats[: shape[0]], stats[shape[0]:]
    # numpy's linear interpolation (its `_lerp`: from the nearer end for accuracy).
    value = jnp.where(frac >= 0.5, b - (b - a) * (1 - frac), a + (b - a) * frac)
    nan = _psum(jnp.isnan(x).any(0).astype(jnp.int32), names) > 0
    value = jnp.where(nan[None], jnp.nan, value)
    return value.reshape(*q.shape, *x.shape[1:])
