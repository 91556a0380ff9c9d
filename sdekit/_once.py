"""Values computed into buffers once: a fusion barrier for XLA.

XLA fuses cheap elementwise producers into each of their consumers, so a value read by
several kernels is recomputed by each: a hash and a normal transform in every kernel that
reads a draw, a solver's whole step (drift evaluations included) in every kernel that reads
its result. `lax.optimization_barrier` does not stop this on CPU (it is gone before fusion);
a loop's result is a buffer, so `computed_once` makes the value one.
"""

import equinox as eqx
import jax
import jax.extend
import jax.lax as lax
import jax.numpy as jnp

from ._typing import Array
from ._xla_cpu import ONCE_MAX_ELEMENTS


def computed_once(fn, word: Array):
    """`fn()`, computed into a buffer once, as the body of a one-trip loop.

    Left in the open, the hash and normal transform are cheap elementwise ops to XLA, which
    fuses (so recomputes) them into every consumer of a draw: 2-4x the run time of a grid build
    and a copy of the whole hash in the code of every kernel. A loop's result is a buffer. Its
    trip count is written so that XLA cannot prove it is 1 (which would inline the loop); it
    always is: `word`, a uint32, shifted right by 32 bits in all is 0."""
    # Traced once: the loop body replays the jaxpr (tracing `fn` again, as `eval_shape` and a
    # body call would, doubled the grid build's trace time).
    closed, shapes = jax.make_jaxpr(fn, return_shape=True)()
    return _replayed_once(closed, shapes, (), word)


def _replayed_once(closed, shapes, args, word: Array):
    """A traced `closed` jaxpr applied to `args` in the one-trip loop of `computed_once`."""
    treedef = jax.tree.structure(shapes)
    zeros = [jnp.zeros(x.shape, x.dtype) for x in jax.tree.leaves(shapes)]
    trips = 1 + ((word >> 31) >> 1).astype(jnp.int32)
    replay = jax.extend.core.jaxpr_as_fun(closed)
    return jax.tree.unflatten(treedef, lax.fori_loop(0, trips, lambda i, _: list(replay(*args)), zeros))


def opaque_word(x: Array) -> Array:
    """A uint32 from the bits of `x`'s first element, for `computed_once` on values that do
    not depend on the tree's key (so that, under vmap over trees, the loop stays unbatched)."""
    first = jnp.ravel(x)[0]
    bits = lax.bitcast_convert_type(first, jnp.dtype(f"uint{8 * first.dtype.itemsize}"))
    return bits.astype(jnp.uint32)


def computed_once_differentiable(fn, inputs, word: Array):
    """`fn(inputs)` through `computed_once`, differentiable in the array leaves of `inputs`
    (a loop with an unknown trip count cannot be transposed, so derivatives go through `fn`
    itself: only the forward values are materialised).

    Outputs over `ONCE_MAX_ELEMENTS` are left to XLA: the loop writes its initial outputs and
    copies its results, which for a large state (a backsolve's parameter cotangents, say)
    costs more than the recomputation it saves (an XLA:CPU policy: see `_xla_cpu`). So is an
    `fn` that runs loops of its own (an implicit solver's Newton iterations): their results
    are buffers already, and the one-trip loop around them only added copies and kernels
    (5-10% of a stiff solve's compile time and of its run time,
    benchmarks/results/design_measurements.md)."""
    dynamic, static = eqx.partition(inputs, eqx.is_array)
    leaves, in_tree = jax.tree.flatten(dynamic)

    def call(d):
        return fn(eqx.combine(d, static))

    # `fn` is traced once, here: its jaxpr gives the output's size and is what the loop
    # replays (an `eval_shape` and a second trace doubled the solve's trace time).
    closed, shapes = jax.make_jaxpr(lambda *xs: call(jax.tree.unflatten(in_tree, xs)), return_shape=True)(*leaves)
    if sum(x.size for x in jax.tree.leaves(shapes)) > ONCE_MAX_ELEMENTS or _runs_loops(closed.jaxpr):
        outs = jax.extend.core.jaxpr_as_fun(closed)(*leaves)
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)

    @jax.custom_jvp
    def once(xs, w):
        return _replayed_once(closed, shapes, xs, w)

    @once.defjvp
    def _jvp(primals, tangents):
        return jax.jvp(call, (jax.tree.unflatten(in_tree, primals[0]),), (jax.tree.unflatten(in_tree, tangents[0]),))

    return once(leaves, word)


def _runs_loops(jaxpr) -> bool:
    """Whether `jaxpr` or a jaxpr inside it (a `jit`, a `custom_jvp`, a branch) holds a loop."""
    return any(eqn.primitive.name in ("while", "scan") for eqn in jaxpr.eqns) or any(
        _runs_loops(sub) for sub in jax.extend.core.subjaxprs(jaxpr)
    )
