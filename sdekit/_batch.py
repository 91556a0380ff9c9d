"""`batch_min`: a value that is the same for every element of a vmapped batch."""

import jax
import jax.numpy as jnp

from ._typing import Array


@jax.custom_batching.custom_vmap
def batch_min(x: Array) -> Array:
    """`x` itself; under `vmap`, the smallest `x` in the batch, unbatched.

    For a loop's lower bound (the Brownian cursor's walk): with a batched bound, the loop's
    condition is batched, and vmap selects between the old and new value of every loop-carried
    array at every iteration (the stacks included, which it must then copy) and turns each
    indexed read and write of the stacks into a gather or scatter. Started at the batch's
    smallest bound instead, with each path's levels above its own bound masked, the loop runs as
    many iterations with none of that.

    For a solve's error check (`-batch_min(-code)`: the worst failure code in the batch): one
    reduction over the batch, where `equinox.branched_error_if` reduces its predicate and its
    index separately (each reduction is two kernels to compile on XLA:CPU)."""
    return x


@batch_min.def_vmap
def _batch_min_vmap(axis_size, in_batched, x):
    (batched,) = in_batched
    return (batch_min(jnp.min(x, axis=0)) if batched else x), False
