r"""Counter-based node randomness: the normals of a tree node are a function of
(seed, node, element) only.

Because no chain of key splits is involved, a single descent, a cursor restarting
half-way down, and the level-by-level grid build all draw the same numbers for the same
node.

The hash is Threefry-2x32 with 20 rounds (Salmon et al. 2011, the generator behind
`jax.random`), written out in `jax.numpy` so that XLA fuses hashing and the normal
transform into one elementwise kernel; on CPU `jax.random` lowers Threefry to a rolled
loop, which costs a loop launch per node and dominated the descent. It is checked
against `jax.extend.random.threefry_2x32` in the tests. Each 32-bit output word gives
one float32 normal by inverse-CDF ($\sqrt2\,\mathrm{erf}^{-1}$ of a 24-bit uniform);
float64 normals use 53 bits from a word pair.

Node identifiers (a *tag* and an *index*):

- tag 0, index 0: the root's values on [0, 1];
- tag `level + 1`, index `k` (`0 <= k < 2**level`): the node $[k 2^{-l}, (k+1) 2^{-l}]$;
  its normals are the midpoint split's, or the any-point bridge's at a leaf;
- tag `depth + 2`, index `k`: extra normals of leaf `k` (space-space Lévy area).

For depth <= 29 the pair is packed into one 32-bit word `2**(tag-1) + k` (root: 0) and
hashed with the element counter; deeper trees (64-bit indices, x64 only) first hash
(tag, high index word) into a node key.
"""

import math

import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Key

#: Deepest tree whose node identifiers fit one uint32 word.
PACKED_DEPTH = 29
#: Deepest tree supported at all (64-bit indices).
MAX_DEPTH = 62

_ROT = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: Array, r: int) -> Array:
    return lax.bitwise_or(lax.shift_left(x, np.uint32(r)), lax.shift_right_logical(x, np.uint32(32 - r)))


def threefry2x32(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """Threefry-2x32-20 of counters (x0, x1) under key (k0, k1); uint32, broadcasting.

    Written with `lax` ops: `jax.numpy`'s operators are jitted helpers, and tracing (and, under
    vmap, batching) 130 of them per hash was a large part of the grid build's trace time."""
    k0, k1, x0, x1 = (jnp.asarray(v, jnp.uint32) for v in (k0, k1, x0, x1))
    ks = (k0, k1, lax.bitwise_xor(lax.bitwise_xor(k0, k1), np.uint32(0x1BD11BDA)))
    x0 = lax.add(x0, ks[0])
    x1 = lax.add(x1, ks[1])
    for i in range(5):
        for r in _ROT[i % 2]:
            x0 = lax.add(x0, x1)
            x1 = lax.bitwise_xor(_rotl(x1, r), x0)
        x0 = lax.add(x0, ks[(i + 1) % 3])
        x1 = lax.add(lax.add(x1, ks[(i + 2) % 3]), np.uint32(i + 1))
    return x0, x1


def seed_words(key: Key) -> Array:
    """The tree's two uint32 seed words: a Threefry key's own data (typed or raw), which keys
    the node hash as `jax.random` keys its draws; other key implementations give
    `jax.random.bits(key, (2,), uint32)`.

    Taking the key as it is (rather than hashing it into new words first) costs nothing per tree:
    under vmap over keys, the hash was a kernel of its own that XLA would otherwise sink into
    every element of the draw (a measurable part of a vmapped solve's compile time)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return jax.random.bits(key, (2,), jnp.uint32)
        return jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32)


def index_dtype(depth: int):
    """Integer dtype for node indices of a tree of this depth."""
    return jnp.int32 if depth <= 30 else jnp.int64


def uniform_to_normal(x: Array, dtype) -> Array:
    r"""The standard normal $\sqrt2\,\mathrm{erf}^{-1}(x)$ of a `node_uniforms` value."""
    return (math.sqrt(2.0) * lax.erf_inv(x)).astype(dtype)


def node_uniforms(seed: Array, tag: Array, index: Array, n: int, shape, dtype, depth: int) -> Array:
    """The uniforms in (-1, 1) behind `node_normals` (float32, or float64 for wide dtypes).

    Split from the normal transform so that a loop can hash one level ahead and transform
    the next: XLA then compiles integer hashing and float transform as separate, vectorised
    kernels (fused together, the float64 transform ran several times slower)."""
    return words_to_uniforms(*node_words(seed, tag, index, n, shape, depth), n, shape, dtype)


def node_ident(tag: Array, index: Array) -> Array:
    """The packed identifier word of node (tag, index), for trees of depth <= PACKED_DEPTH:
    `2**(tag-1) + index` (the root's: 0). At levels 0..l this is a node's heap position."""
    tag = jnp.asarray(tag, jnp.uint32)
    one = np.uint32(1)
    return jnp.where(tag == 0, np.uint32(0), (one << (tag - one)) | jnp.asarray(index, jnp.uint32))


def node_words(seed: Array, tag: Array, index: Array, n: int, shape, depth: int) -> tuple[Array, Array]:
    """The two uint32 hash words behind `node_uniforms`, one per counter `0..count-1`."""
    if depth <= PACKED_DEPTH:
        return ident_words(seed, node_ident(tag, index), n, shape)
    hi, ident = index_words(index)
    k0, k1 = threefry2x32(seed[0], seed[1], jnp.asarray(tag, jnp.uint32), hi)
    return ident_words(jnp.stack([k0, k1]), ident, n, shape)


def index_words(index: Array) -> tuple[Array, Array]:
    """The high and low uint32 words of a node index past `PACKED_DEPTH`: the high word (with the
    tag) keys the node's own hash, the low word is its identifier under that key."""
    index = jnp.asarray(index, jnp.int64)
    return (index >> 32).astype(jnp.uint32), (index & np.int64(0xFFFFFFFF)).astype(jnp.uint32)


def word_count(n: int, shape) -> int:
    """How many counters (word pairs) a node's normals take: one per normal, in either dtype."""
    return n * math.prod(shape)


def ident_words(seed: Array, ident: Array, n: int, shape) -> tuple[Array, Array]:
    """`node_words` of a packed identifier word (`node_ident`) under `seed`."""
    ctr = lax.iota(jnp.uint32, word_count(n, shape))
    return threefry2x32(seed[0], seed[1], jnp.broadcast_to(ident, ctr.shape), ctr)


def words_to_uniforms(w0: Array, w1: Array, n: int, shape, dtype) -> Array:
    """`node_uniforms` from `node_words` (trailing counter axis)."""
    return in_element_order(word_uniforms(w0, w1, dtype), n, shape)


def word_uniforms(w0: Array, w1: Array, dtype) -> Array:
    """The uniforms in (-1, 1) of `node_words`, one per counter, before element order: symmetric,
    never 0 or +-1. float64 takes 53 bits of the word pair (the first word's on top), float32
    the first word's top 24 bits, the same bits as float64's top ones: a float32 path is the
    float64 path to float32 rounding."""
    if _wide(dtype):
        hi = w0.astype(jnp.uint64) << np.uint64(21)
        u = (hi | (w1 >> np.uint32(11)).astype(jnp.uint64)).astype(jnp.int64)
        odd = 2 * u + (1 - 2**53)  # odd integer in (-2**53, 2**53): exact in float64
        return odd.astype(dtype) * (2.0**-53)
    u = (w0 >> np.uint32(8)).astype(jnp.int32)
    odd = 2 * u + (1 - 2**24)  # odd integer in (-2**24, 2**24): exact in float32
    return odd.astype(jnp.float32) * (2.0**-24)


def in_element_order(x: Array, n: int, shape) -> Array:
    """`word_uniforms` values (or normals of them), trailing counter axis, as elements
    `(..., n, *shape)`.

    Row r of the shape's leading axis (a batch) owns its own run of `n * row size` counters:
    piece c of element j of row r is counter `r * n * size + c * size + j`. So a row's normals
    depend on its index alone, not on the number of rows: the first rows of a batch of 8 and
    of a batch of 1024 get the same draws, for any number of pieces (W, H, K); and float32
    and float64 read the same counters (`word_uniforms`)."""
    x = rows_pieces(x, n, shape, x.ndim - 1)  # (..., rows, n, *row shape)
    if not shape:
        return x[..., 0, :]
    k = len(shape) - 1
    return jnp.moveaxis(x, -k - 1, -k - 2)  # the pieces before the rows


def rows_pieces(x: Array, n: int, shape, axis: int) -> Array:
    """The counter axis `axis` of `x` as `(rows, n, *row shape)` in its place (see
    `in_element_order`): a reshape."""
    rows = shape[0] if shape else 1  # a scalar shape: one row of one element
    return jnp.reshape(x, (*x.shape[:axis], rows, n, *shape[1:], *x.shape[axis + 1:]))


def _wide(dtype) -> bool:
    """Whether `dtype` takes its uniforms from word pairs (53 bits) rather than single words."""
    return jnp.dtype(dtype).itemsize > 4


def node_normals(seed: Array, tag: Array, index: Array, n: int, shape, dtype, depth: int) -> Array:
    """Standard normals of shape `(n, *shape)` owned by node (tag, index).

    `tag` and `index` are scalars; vmap for many nodes.
    """
    return uniform_to_normal(node_uniforms(seed, tag, index, n, shape, dtype, depth), dtype)
