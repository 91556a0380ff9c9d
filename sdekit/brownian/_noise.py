"""Counter-based node randomness: the normals of a tree node are a function of
(key, level, index) only.

Because no chain of splits is involved, a single descent, a cursor restarting half-way
down, and the level-by-level grid build all draw the same numbers for the same node.

Node identifiers (a *tag* and an *index*):

- tag 0, index 0: the root's values on [0, 1];
- tag `level + 1`, index `k` (`0 <= k < 2**level`): the node $[k 2^{-l}, (k+1) 2^{-l}]$;
  its normals are the midpoint split's, or the any-point bridge's at a leaf;
- tag `depth + 2`, index `k`: extra normals of leaf `k` (space-space Lévy area).

For depth <= 29 the pair is packed into one 32-bit word `2**(tag-1) + k` (root: 0), so a
node costs one `fold_in`; deeper trees (float64 times only) fold tag, high and low index
words in turn.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Key

#: Deepest tree whose node identifiers fit one uint32 word.
PACKED_DEPTH = 29
#: Deepest tree supported at all (64-bit indices).
MAX_DEPTH = 62


def index_dtype(depth: int):
    """Integer dtype for node indices of a tree of this depth."""
    return jnp.int32 if depth <= 30 else jnp.int64


def node_key(key: Key, tag: Array, index: Array, depth: int) -> Key:
    """The key of node (tag, index); scalar tag and index (vmap for many nodes)."""
    if depth <= PACKED_DEPTH:
        tag = jnp.asarray(tag, jnp.uint32)
        index = jnp.asarray(index, jnp.uint32)
        one = jnp.uint32(1)
        ident = jnp.where(tag == 0, jnp.uint32(0), (one << (tag - one)) | index)
        return jax.random.fold_in(key, ident)
    index = jnp.asarray(index, jnp.int64)
    hi = jnp.asarray(index >> 32, jnp.uint32)
    lo = jnp.asarray(index & np.int64(0xFFFFFFFF), jnp.uint32)
    key = jax.random.fold_in(key, jnp.asarray(tag, jnp.uint32))
    return jax.random.fold_in(jax.random.fold_in(key, hi), lo)


def node_normals(key: Key, tag: Array, index: Array, n: int, shape, dtype, depth: int) -> Array:
    """Standard normals of shape `(n, *shape)` owned by node (tag, index)."""
    return jax.random.normal(node_key(key, tag, index, depth), (n, *shape), dtype)


def many_node_normals(key: Key, tags: Array, indices: Array, n: int, shape, dtype, depth: int):
    """`node_normals` for a 1-d batch of nodes: shape `(len(indices), n, *shape)`."""
    return jax.vmap(lambda g, i: node_normals(key, g, i, n, shape, dtype, depth))(tags, indices)
