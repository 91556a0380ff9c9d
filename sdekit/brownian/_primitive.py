"""The grid build as a JAX primitive (`grid_increments`): its implementation, abstract
evaluation, batching rule and JVP.

The grid pieces are a primitive of their own so that the build is traced once, in the form used.
Under `vmap` over trees that differ only in their key (`sample_paths`, or a user's vmap over
keys), its batching rule builds the trees as one with the path axis inside
(`TreeSpec.with_paths`): the same numbers, faster, and step-major, as a scan over the steps reads
them. With `custom_vmap` both the unbatched and the batched build were traced: half the grid's
trace time.
"""

from functools import partial

import equinox as eqx
import jax
import jax.extend
import jax.interpreters.ad
import jax.interpreters.batching
import jax.interpreters.mlir
import jax.lax as lax
import jax.numpy as jnp

from . import _grid, _pieces
from ._increment import Increment
from ._spec import TreeSpec


# Jitted: eager calls compile once per tree structure instead of dispatching every small op and
# loop; under an outer jit it is inlined.
@eqx.filter_jit
def grid_increments(spec: TreeSpec, ts) -> Increment:
    """`BrownianTree.grid_increments` without the area (`ts` checked, gradients stopped): the
    pieces come from `_grid_pieces_p`, whose batching rule builds trees vmapped over their keys
    as one."""
    dynamic, static = eqx.partition(spec, eqx.is_array)
    leaves, treedef = jax.tree.flatten(dynamic)
    *comps, dt, _ = _grid_pieces_p.bind(*leaves, ts, static=static, treedef=treedef)
    return _pieces.assemble(spec, dt, comps)


_grid_pieces_p = jax.extend.core.Primitive("sdekit_grid_pieces")
_grid_pieces_p.multiple_results = True


def _grid_pieces_impl(*args, static, treedef, paths=None):
    """Scaled pieces (component axis first), `dt` and `bad` of a grid; `paths`: the number of
    trees built as one (their seeds batched on axis 0, the times shared)."""
    *leaves, ts = args
    dt = ts[1:] - ts[:-1]
    # Zero derivatives for the pieces, also where the batching rule calls this directly.
    leaves, ts = lax.stop_gradient((leaves, ts))
    spec = eqx.combine(jax.tree.unflatten(treedef, leaves), static)
    build = spec if paths is None else spec.with_paths(spec.seeds, paths)
    bad = spec.bad(ts[:-1], ts[1:])
    pieces = _grid.grid_pieces(build, spec.position(ts))
    # Scaled (and NaN-masked) here: elementwise work between the batched rule's transpose and a
    # scan's would keep XLA from cancelling them.
    return (*_pieces.components(spec, _pieces.scaled(spec, pieces, bad)), dt, bad)


def _grid_pieces_abstract(*avals, static, treedef):
    steps = avals[-1].shape[0] - 1
    comps = [jax.core.ShapedArray((steps, *s), d) for s, d in static.leaves for _ in range(static.n)]
    return (*comps, jax.core.ShapedArray((steps,), avals[-1].dtype), jax.core.ShapedArray((steps,), jnp.bool_))


def _grid_pieces_batched(args, dims, *, static, treedef):
    *leaves, ts = args
    *leaf_dims, ts_dim = dims
    dyn_dims = jax.tree.unflatten(treedef, leaf_dims)
    n_comps = len(static.leaves) * static.n
    if ts_dim is not None or dyn_dims.t0 is not None or dyn_dims.t1 is not None:
        out = jax.vmap(partial(_grid_pieces_impl, static=static, treedef=treedef), in_axes=tuple(dims))(*args)
        return out, [0] * len(out)
    # Only seeds are batched: one per path, on axis 0 (a leaf's seed that is not batched is
    # shared by all paths).
    size = next(x.shape[d] for x, d in zip(leaves, leaf_dims) if d is not None)
    dynamic = jax.tree.unflatten(treedef, leaves)
    seeds = tuple(
        jnp.broadcast_to(x, (size, *x.shape)) if d is None else jnp.moveaxis(x, d, 0)
        for x, d in zip(dynamic.seeds, dyn_dims.seeds)
    )
    leaves = jax.tree.leaves(dynamic._replace(seeds=seeds))
    *comps, dt, bad = _grid_pieces_impl(*leaves, ts, static=static, treedef=treedef, paths=size)
    # Components come `(N, paths, *shape)`, step-major. They are declared batch-first by a
    # transpose that XLA cancels against the one a vmapped scan over the steps makes (declaring
    # the batch axis where it lies made the scan's indexing transpose the increments, and any
    # elementwise work between the two transposes keeps them apart).
    return (*(jnp.moveaxis(c, 1, 0) for c in comps), dt, bad), [0] * n_comps + [None, None]


def _grid_pieces_jvp(primals, tangents, *, static, treedef):
    """Zero derivatives for the pieces (and the bad-step mask), as for every query (see
    `BrownianTree`); `dt`'s is the difference of the times'. (`grid_increments` stops the
    gradients before binding, so this is for completeness: a jvp of the build itself gave NaN
    at dyadic times and, through its loops, no reverse mode.)"""
    out = _grid_pieces_p.bind(*primals, static=static, treedef=treedef)
    ts_dot = jax.interpreters.ad.instantiate_zeros(tangents[-1])
    zeros = [jax.interpreters.ad.Zero(jax.typeof(x).to_tangent_aval()) for x in out]
    return out, [*zeros[:-2], ts_dot[1:] - ts_dot[:-1], zeros[-1]]


_grid_pieces_p.def_impl(_grid_pieces_impl)
_grid_pieces_p.def_abstract_eval(_grid_pieces_abstract)
jax.interpreters.mlir.register_lowering(_grid_pieces_p, jax.interpreters.mlir.lower_fun(_grid_pieces_impl, multiple_results=True))
jax.interpreters.batching.primitive_batchers[_grid_pieces_p] = _grid_pieces_batched
jax.interpreters.ad.primitive_jvps[_grid_pieces_p] = _grid_pieces_jvp
