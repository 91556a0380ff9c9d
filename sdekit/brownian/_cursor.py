r"""The descent engine: a cached root-to-leaf path (the cursor) and its updates.

Positions are measured in *leaf units* $u = 2^D (t - t_0)/(t_1 - t_0) \in [0, 2^D]$, so
leaf $k$ is $[k, k+1)$, node $(l, k)$ is $[k 2^{D-l}, (k+1) 2^{D-l})$, and all node
boundaries are exact integers. Node values are pieces (see `_bridge`) on the rescaled
interval [0, 1].

For the cached point $x$ the cursor holds, at every level $l$, the node $N_l(x)$ on its
path and that node's sibling, the leaf's normals, the leaf's prefix $[c_D, x]$, and the
suffixes $S_l(x) = [x, d_l(x)]$ (from $x$ to the right end of $N_l(x)$) for the levels
that have been folded so far. An increment $[s, t]$ whose deepest common ancestor is at
level $L$ is

    $S_{L+1}(s) \oplus P_{L+1}(t)$,

two pieces inside $[s, t]$ (so no cancellation), where the suffix is the left fold
$((S_D \oplus R_D) \oplus R_{D-1}) \dots$ over right siblings and the prefix the right
fold over left siblings. The cursor restarts each descent from the deepest common
ancestor of the old and new point; a fresh descent is the same code with an empty cursor,
so both give bitwise the same values.
"""

from typing import NamedTuple

import jax.lax as lax
import jax.numpy as jnp
import numpy as np

from .._typing import Array
from . import _bridge, _noise


class BrownianCursor(NamedTuple):
    """Cache for sequential queries of a `BrownianTree` (a pytree; carry it in loops).

    Create it with `tree.cursor()`; pass it to `tree.increment(s, t, cursor=cur)`, which
    returns the updated cursor. Values never depend on the cursor, only cost does.
    Memory: about `3 * (depth + 1) * n` numbers per path element (`n` = 1, 2 or 3).

    Attributes:
        position: the cached point in leaf units.
        valid: whether the stacks hold the path to `position`.
        suffix_level: `suffix[l]` is valid for `l >= suffix_level`.
        node: per shape leaf, `(depth + 1, n, *shape)`: the path's nodes.
        sibling: per shape leaf, the sibling of each path node (level 0 unused).
        suffix: per shape leaf, the suffixes $S_l$ of the cached point.
        leaf_normals: per shape leaf, `(n, *shape)`: the leaf's bridge normals.
        leaf_prefix: per shape leaf, `(n, *shape)`: the piece from the leaf's start to
            the cached point.
    """

    position: Array
    valid: Array
    suffix_level: Array
    node: tuple
    sibling: tuple
    suffix: tuple
    leaf_normals: tuple
    leaf_prefix: tuple


def empty_cursor(tree) -> BrownianCursor:
    depth, n = tree.depth, tree._n
    stacks = tuple(jnp.zeros((depth + 1, n, *s), d) for s, d in tree._leaves)
    pieces = tuple(jnp.zeros((n, *s), d) for s, d in tree._leaves)
    return BrownianCursor(
        position=jnp.zeros((), tree._tdtype),
        valid=jnp.zeros((), bool),
        suffix_level=jnp.asarray(depth + 1, jnp.int32),
        node=stacks,
        sibling=stacks,
        suffix=stacks,
        leaf_normals=pieces,
        leaf_prefix=pieces,
    )


# ----------------------------------------------------------------------------- helpers


def sqrt_width_table(depth: int, dtype) -> Array:
    """$\\sqrt{2^{-l}}$ for l = 0..depth, rounded once from float64 (bitwise the same in
    every code path that indexes it)."""
    return jnp.asarray(np.sqrt(np.exp2(-np.arange(depth + 1, dtype=np.float64))), dtype)


def leaf_index(u: Array, depth: int) -> Array:
    idt = _noise.index_dtype(depth)
    k = jnp.floor(u).astype(idt)
    return jnp.clip(k, 0, (1 << depth) - 1)


def common_level(k1: Array, k2: Array, depth: int) -> Array:
    """Level of the deepest common ancestor of leaves k1 and k2 (`depth` if equal)."""
    bits = 8 * jnp.dtype(k1.dtype).itemsize
    length = bits - lax.clz(k1 ^ k2)
    return (depth - length).astype(jnp.int32)


def bit_at(k: Array, level, depth: int) -> Array:
    """Whether the path to leaf k goes right when leaving `level` (towards level+1)."""
    shift = jnp.asarray(depth - 1 - level, k.dtype)
    return ((k >> shift) & 1) == 1


def ratio(w1: Array, w2: Array, dtype) -> tuple[Array, Array]:
    """Width fractions for `chen`, computed in the time dtype and cast once."""
    total = w1 + w2
    safe = jnp.where(total > 0, total, 1.0)
    return (w1 / safe).astype(dtype), (w2 / safe).astype(dtype)


def leaf_pieces(tree, leaf_vals, normals, u: Array, k: Array):
    """Prefix $[c_D, u]$ and suffix $[u, d_D]$ of each shape leaf."""
    a = u - k.astype(u.dtype)
    b = (k + 1).astype(u.dtype) - u
    out = []
    for j, (_, dt) in enumerate(tree._leaves):
        sq = sqrt_width_table(tree.depth, dt)[tree.depth]
        out.append(_bridge.bridge(leaf_vals[j], normals[j], a.astype(dt), b.astype(dt), sq))
    return tuple(p for p, _ in out), tuple(s for _, s in out)


def draw(tree, tag, index) -> tuple:
    """Normals of node (tag, index) for each shape leaf."""
    return tuple(
        _noise.node_normals(key, tag, index, tree._n, s, d, tree.depth)
        for key, (s, d) in zip(tree._seeds, tree._leaves)
    )


def _get(stack, level):
    return lax.dynamic_index_in_dim(stack, level, 0, keepdims=False)


def _set(stack, value, level):
    return lax.dynamic_update_index_in_dim(stack, value, level, 0)


# ----------------------------------------------------------------------------- descent


def _move(tree, cur: BrownianCursor, u: Array) -> BrownianCursor:
    """Make the cursor hold the path to position `u` (a different point)."""
    depth = tree.depth
    k = leaf_index(u, depth)
    old_k = leaf_index(cur.position, depth)
    level = jnp.where(cur.valid, common_level(old_k, k, depth), -1)
    node, sibling = cur.node, cur.sibling

    # Empty cursor: the root's values (drawn only then).
    root = lax.cond(
        cur.valid,
        lambda: tuple(_get(n, 0) for n in node),
        lambda: tuple(_bridge.root(r) for r in draw(tree, 0, 0)),
    )
    node = tuple(_set(n, r, 0) for n, r in zip(node, root))
    # The new path leaves the old one at level+1, where the old sibling is the new node.
    swap = (level >= 0) & (level < depth)
    lv = jnp.clip(level + 1, 0, depth)
    new_node, new_sib = [], []
    for n, s in zip(node, sibling):
        at_n, at_s = _get(n, lv), _get(s, lv)
        new_node.append(_set(n, jnp.where(swap, at_s, at_n), lv))
        new_sib.append(_set(s, jnp.where(swap, at_n, at_s), lv))
    new_node, new_sib = tuple(new_node), tuple(new_sib)

    def body(lvl, carry):
        node, sibling = carry
        xi = draw(tree, lvl + 1, k >> (depth - lvl).astype(k.dtype))
        right = bit_at(k, lvl, depth)
        out_n, out_s = [], []
        for j, (_, dt) in enumerate(tree._leaves):
            sq = sqrt_width_table(depth, dt)[lvl]
            lo, hi = _bridge.split(_get(node[j], lvl), xi[j], sq)
            out_n.append(_set(node[j], jnp.where(right, hi, lo), lvl + 1))
            out_s.append(_set(sibling[j], jnp.where(right, lo, hi), lvl + 1))
        return tuple(out_n), tuple(out_s)

    start = jnp.clip(level + 1, 0, depth)
    node, sibling = lax.fori_loop(start, depth, body, (new_node, new_sib))
    normals = draw(tree, depth + 1, k)
    leaf_vals = tuple(_get(n, depth) for n in node)
    prefix, suffix_d = leaf_pieces(tree, leaf_vals, normals, u, k)
    suffix = tuple(_set(s, v, depth) for s, v in zip(cur.suffix, suffix_d))
    return BrownianCursor(
        position=u,
        valid=jnp.ones((), bool),
        suffix_level=jnp.asarray(depth, jnp.int32),
        node=node,
        sibling=sibling,
        suffix=suffix,
        leaf_normals=normals,
        leaf_prefix=prefix,
    )


def move(tree, cur: BrownianCursor, u: Array) -> BrownianCursor:
    """`_move`, skipped when the cursor already holds `u` (the sequential case)."""
    same = cur.valid & (cur.position == u)
    return lax.cond(same, lambda c: c, lambda c: _move(tree, c, u), cur)


def fold_suffix(tree, cur: BrownianCursor, level: Array):
    """$S_{level}$ of the cached point (left fold, memoised in the cursor)."""
    depth = tree.depth
    u = cur.position
    k = leaf_index(u, depth)
    target = jnp.clip(level, 0, depth)

    def body(i, suffix):
        lvl = cur.suffix_level - 1 - i
        shift = (depth - lvl - 1).astype(k.dtype)
        went_left = ~bit_at(k, lvl, depth)
        w_sib = jnp.asarray(1, k.dtype) << shift
        end = ((k >> shift) + 1) << shift
        a, b = ratio(end.astype(u.dtype) - u, w_sib.astype(u.dtype), u.dtype)
        out = []
        for j, (_, dt) in enumerate(tree._leaves):
            prev = _get(suffix[j], lvl + 1)
            merged = _bridge.chen(prev, _get(cur.sibling[j], lvl + 1), a.astype(dt), b.astype(dt))
            out.append(_set(suffix[j], jnp.where(went_left, merged, prev), lvl))
        return tuple(out)

    count = jnp.maximum(cur.suffix_level - target, 0)
    suffix = lax.fori_loop(0, count, body, cur.suffix)
    cur = cur._replace(suffix=suffix, suffix_level=jnp.minimum(cur.suffix_level, target))
    return tuple(_get(s, target) for s in suffix), cur


def prefix(tree, cur: BrownianCursor, level: Array):
    """$P_{level}$ of the cached point (right fold over left siblings, not stored)."""
    depth = tree.depth
    u = cur.position
    k = leaf_index(u, depth)
    target = jnp.clip(level, 0, depth)

    def body(i, pre):
        lvl = depth - 1 - i
        shift = (depth - lvl - 1).astype(k.dtype)
        went_right = bit_at(k, lvl, depth)
        w_sib = jnp.asarray(1, k.dtype) << shift
        start = (k >> shift) << shift
        a, b = ratio(w_sib.astype(u.dtype), u - start.astype(u.dtype), u.dtype)
        out = []
        for j, (_, dt) in enumerate(tree._leaves):
            merged = _bridge.chen(_get(cur.sibling[j], lvl + 1), pre[j], a.astype(dt), b.astype(dt))
            out.append(jnp.where(went_right, merged, pre[j]))
        return tuple(out)

    return lax.fori_loop(0, depth - target, body, cur.leaf_prefix)


def increment_pieces(tree, cur: BrownianCursor, us: Array, ut: Array):
    """Pieces of $[s, t]$ (positions `us <= ut` in leaf units) and the updated cursor."""
    depth = tree.depth
    cur = move(tree, cur, us)
    ks, kt = leaf_index(us, depth), leaf_index(ut, depth)
    level = common_level(ks, kt, depth)
    s_piece, cur = fold_suffix(tree, cur, level + 1)
    s_prefix = cur.leaf_prefix
    cur = move(tree, cur, ut)
    t_piece = prefix(tree, cur, level + 1)
    out = combine(tree, s_piece, t_piece, s_prefix, cur.leaf_prefix, us, ut, ks, kt, level)
    return out, cur


def combine(tree, s_piece, t_piece, s_prefix, t_prefix, us, ut, ks, kt, level):
    """The piece of $[s, t]$ from $S_{L+1}(s)$ and $P_{L+1}(t)$, or, inside one leaf,
    from the two leaf prefixes (scalar times; vmapped by the grid build)."""
    depth = tree.depth
    # Split point: the midpoint of the common ancestor (in leaf units).
    shift = jnp.clip(depth - level - 1, 0, depth).astype(ks.dtype)
    mid = ((kt >> shift) << shift).astype(us.dtype)
    a, b = ratio(mid - us, ut - mid, us.dtype)
    a_leaf, b_leaf = ratio(us - ks.astype(us.dtype), ut - us, us.dtype)
    same = level >= depth
    empty = ut == us
    out = []
    for j, (_, dt) in enumerate(tree._leaves):
        general = _bridge.chen(s_piece[j], t_piece[j], a.astype(dt), b.astype(dt))
        b_safe = jnp.where(empty, 1.0, b_leaf).astype(dt)
        inner = _bridge.unchen(t_prefix[j], s_prefix[j], a_leaf.astype(dt), b_safe)
        piece = jnp.where(same, inner, general)
        out.append(jnp.where(empty, jnp.zeros_like(piece), piece))
    return tuple(out)
