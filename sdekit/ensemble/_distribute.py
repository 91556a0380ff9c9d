"""Running path indices: one block (all at once, or in chunks of `batch_size`), or one block per
device of a mesh under `shard_map` (so an adaptive loop's stopping test stays on its device)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from .._typing import is_traced


def run_block(one, start, n, n_paths, sliced, batch_size, n_chunks):
    """`one(i, sliced_i)` for paths `i = start, ..., start + n - 1`, in chunks of `batch_size`
    paths (None: one chunk).

    Every chunk runs the same program, so a path's numbers do not depend on the chunking, the
    block or the device: a `vmap` of `one` over `width` paths (`batch_size` rounded up to a
    multiple of `LANES`) inside a loop whose trip count `n_chunks` is a run-time value. XLA
    compiles the loop body once and cannot hoist or unroll it into a different program, and
    XLA:CPU's vectorised loops round the same in every lane when the width is a multiple of
    `LANES` (widths of 5 to 9 paths gave last-bit differences from 16; 16, 32, ..., 256 all
    agreed, measured on EM, ShARK and SPaRK). The last chunk ends at the last path (it redoes
    some of the previous chunk's paths, with the same numbers), so results are written in place
    and nothing is padded; only a block smaller than one chunk gets extra lanes (copies of path
    `n_paths - 1`, dropped)."""
    width = chunk_width(n, batch_size)
    rows = max(n, width)
    sliced = jax.tree.map(lambda x: _pad(x, rows), sliced)

    def paths(c):
        # From the loop counter, so nothing per-path is loop-invariant (XLA would hoist it out
        # of the loop when there is one chunk, and compile it differently).
        first = jnp.minimum(c * width, rows - width)
        index = jnp.minimum(start + first + jnp.arange(width, dtype=jnp.int32), n_paths - 1)
        local = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, first, width), sliced)
        return first, jax.vmap(one)(index, local)

    shapes = jax.eval_shape(lambda c: paths(c)[1], jnp.int32(0))
    out = jax.tree.map(lambda s: jnp.zeros((rows, *s.shape[1:]), s.dtype), shapes)

    def chunk(c, out):
        first, result = paths(c)
        return jax.tree.map(lambda o, r: jax.lax.dynamic_update_slice_in_dim(o, r, first, 0), out, result)

    out = jax.lax.fori_loop(0, n_chunks, chunk, out)
    return out if rows == n else jax.tree.map(lambda x: x[:n], out)


LANES = 16


def chunk_width(n_local: int, batch_size: int | None) -> int:
    width = min(batch_size or n_local, n_local)
    return -(-width // LANES) * LANES


def chunk_count(n_local: int, batch_size: int | None) -> int:
    return -(-n_local // chunk_width(n_local, batch_size))


def _pad(x, size):
    """Pad the leading axis to `size` with copies of the last entry."""
    extra = size - x.shape[0]
    if extra == 0:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[-1:], (extra, *x.shape[1:]))])


def auto_mesh(mesh: Mesh) -> Mesh:
    """The same devices and axis names with `AxisType.Auto`. jax 0.10's `make_mesh` makes
    `Explicit` axes by default, under which inputs entering `shard_map` inside `jit` must
    already carry the spec in their type; with Auto axes `shard_map` reshards them itself."""
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def path_spec(mesh: Mesh) -> PartitionSpec:
    """Paths split over every axis of the mesh (row-major: the last axis varies fastest)."""
    return PartitionSpec(tuple(mesh.axis_names))


def run_sharded(one, n_paths, sliced, mesh, batch_size, n_chunks):
    """One block of `n_paths / mesh.size` paths per device under `shard_map`; the output is
    sharded along the paths axis. Device `d` (its linear index over the mesh axes) runs paths
    `d * n_local, ...`: the same program as a single-device chunk, with no collective."""
    n_local = n_paths // mesh.size
    spec = path_spec(mesh)

    def body(sliced_local):
        start = jax.lax.axis_index(tuple(mesh.axis_names)) * n_local
        return run_block(one, start, n_local, n_paths, sliced_local, batch_size, n_chunks)

    return jax.shard_map(body, mesh=mesh, in_specs=(spec,), out_specs=spec, check_vma=False)(sliced)


def place(tree, mesh: Mesh):
    """Put concrete leaves with a leading paths axis on the mesh, sharded along it, as global
    arrays: across processes each process supplies the slices of its own devices (from the full
    host array every process holds, or an already global `jax.Array`)."""
    sharding = NamedSharding(mesh, path_spec(mesh))

    def one(x):
        if is_traced(x):
            return x
        if isinstance(x, jax.Array) and (not x.is_fully_addressable or jax.process_count() == 1):
            return jax.device_put(x, sharding)
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)
