r"""The descent engine: a cached root-to-leaf path (the cursor) and its updates.

Positions are measured in *leaf units* $u = 2^D (t - t_0)/(t_1 - t_0) \in [0, 2^D]$, so
leaf $k$ is $[k, k+1)$, node $(l, k)$ is $[k 2^{D-l}, (k+1) 2^{D-l})$, and all node
boundaries are exact integers. Node values are pieces (see `_bridge`) on the rescaled
interval [0, 1].

For the cached point $x$ the cursor holds, at every level $l$, the node $N_l(x)$ on its
path and that node's sibling, and the leaf's normals and its two pieces $[c_D, x]$ and
$[x, d_D]$. An increment $[s, t]$ whose deepest common ancestor is at level $L$ is

    $S_{L+1}(s) \oplus P_{L+1}(t)$,

two pieces inside $[s, t]$ (so no cancellation): the suffix $S_{L+1}(s) = [s, d_{L+1}]$
is the leaf suffix of $s$ followed by the right siblings of its path below level $L+1$,
the prefix $P_{L+1}(t) = [c_{L+1}, t]$ the left siblings of the path of $t$ followed by
its leaf prefix. With the cursor at $s$, one walk down from level $L+1$ does everything:
it splits the nodes of the path of $t$ (overwriting the path of $s$ below $L$) and, level
by level, reads the sibling of $s$ (from the path as it was before the walk), accumulating
both folds from the top. A fresh descent is the same code after moving an empty cursor to
$s$, so both give bitwise the same values; the move and the walk are two trips through one
compiled walk.

The functions here take the tree as a `TreeSpec` (`spec`, see `_spec`).
"""

from typing import NamedTuple

import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np

from .._batch import batch_min
from .._typing import Array
from . import _bridge, _hash


class BrownianCursor(NamedTuple):
    """Cache for sequential queries of a `BrownianTree` (a pytree; carry it in loops).

    Create it with `tree.cursor()`; pass it to `tree.increment(s, t, cursor=cur)`, which
    returns the updated cursor. Values never depend on the cursor, only cost does.
    Memory: about `2 * (depth + 1) * n` numbers per path element (`n` = 1, 2 or 3).

    Attributes:
        position: the cached point in leaf units.
        valid: whether the stacks hold the path to `position` (an empty cursor holds only
            the root's values, at level 0).
        path: per shape leaf, `(depth + 1, 2, n, *shape)`: at each level, the node on the
            path (`[l, 0]`, also as `node`) and its sibling (`[l, 1]`, also as `sibling`;
            level 0 unused). Packed so that a walk reads and writes one block per level.
        leaf_normals: per shape leaf, `(n, *shape)`: the leaf's bridge normals.
        leaf_prefix: per shape leaf, `(n, *shape)`: the piece from the leaf's start to
            the cached point.
        leaf_suffix: per shape leaf, the piece from the cached point to the leaf's end.
    """

    position: Array
    valid: Array
    path: tuple
    leaf_normals: tuple
    leaf_prefix: tuple
    leaf_suffix: tuple

    @property
    def node(self) -> tuple:
        """Per shape leaf, `(depth + 1, n, *shape)`: the path's nodes."""
        return tuple(p[:, 0] for p in self.path)

    @property
    def sibling(self) -> tuple:
        """Per shape leaf, `(depth + 1, n, *shape)`: each path node's sibling."""
        return tuple(p[:, 1] for p in self.path)


def empty_cursor(spec) -> BrownianCursor:
    """A cursor that holds no point yet, only the root's values (drawn here, once, so that no
    query needs a conditional to draw them)."""
    depth, n = spec.depth, spec.n
    roots = tuple(_bridge.root(r) for r in draw(spec, 0, 0))
    stacks = tuple(jnp.zeros((depth + 1, 2, n, *s), d).at[0, 0].set(r) for (s, d), r in zip(spec.leaves, roots))
    pieces = tuple(jnp.zeros((n, *s), d) for s, d in spec.leaves)
    return BrownianCursor(
        position=jnp.zeros((), spec.time_dtype),
        valid=jnp.zeros((), bool),
        path=stacks,
        leaf_normals=pieces,
        leaf_prefix=pieces,
        leaf_suffix=pieces,
    )


# ----------------------------------------------------------------------------- helpers


def sqrt_width_table(depth: int, dtype) -> Array:
    """$\\sqrt{2^{-l}}$ for l = 0..depth, rounded once from float64 (bitwise the same in
    every code path that indexes it)."""
    return jnp.asarray(np.sqrt(np.exp2(-np.arange(depth + 1, dtype=np.float64))), dtype)


def leaf_index(u: Array, depth: int) -> Array:
    idt = _hash.index_dtype(depth)
    k = lax.convert_element_type(lax.floor(u), idt)
    return lax.clamp(np.asarray(0, idt), k, np.asarray((1 << depth) - 1, idt))


# The helpers below use `lax` ops rather than `jax.numpy` operators, which are jitted helpers
# traced afresh for every new shape (a grid build calls them on arrays, the cursor on scalars).


def common_level(k1: Array, k2: Array, depth: int) -> Array:
    """Level of the deepest common ancestor of leaves k1 and k2 (`depth` if equal)."""
    bits = 8 * np.dtype(k1.dtype).itemsize
    length = lax.sub(np.asarray(bits, k1.dtype), lax.clz(lax.bitwise_xor(k1, k2)))
    return lax.convert_element_type(lax.sub(np.asarray(depth, k1.dtype), length), jnp.int32)


def bit_at(k: Array, level, depth: int) -> Array:
    """Whether the path to leaf k goes right when leaving `level` (towards level+1)."""
    if isinstance(level, int):
        shift = np.asarray(depth - 1 - level, k.dtype)
    else:
        shift = lax.convert_element_type(lax.sub(np.asarray(depth - 1, jnp.int32), level), k.dtype)
    one = np.asarray(1, k.dtype)
    return lax.eq(lax.bitwise_and(lax.shift_right_arithmetic(k, shift), one), one)


def ratio(w1: Array, w2: Array, dtype) -> tuple[Array, Array]:
    """Width fractions for `chen`, computed in the time dtype and cast once."""
    total = lax.add(w1, w2)
    safe = lax.select(lax.gt(total, np.asarray(0, total.dtype)), total, lax.full_like(total, 1))
    return lax.convert_element_type(lax.div(w1, safe), dtype), lax.convert_element_type(lax.div(w2, safe), dtype)


def leaf_pieces(spec, leaf_vals, normals, u: Array, k: Array):
    """Prefix $[c_D, u]$ and suffix $[u, d_D]$ of each shape leaf."""
    a = u - k.astype(u.dtype)
    b = (k + 1).astype(u.dtype) - u
    out = []
    for j, (_, dt) in enumerate(spec.leaves):
        sq = sqrt_width_table(spec.depth, dt)[spec.depth]
        out.append(_bridge.bridge(leaf_vals[j], normals[j], a.astype(dt), b.astype(dt), sq))
    return tuple(p for p, _ in out), tuple(s for _, s in out)


def draw(spec, tag, index) -> tuple:
    """Normals of node (tag, index) for each shape leaf."""
    return tuple(
        _hash.node_normals(key, tag, index, spec.n, s, d, spec.depth)
        for key, (s, d) in zip(spec.seeds, spec.leaves)
    )


def _get(stack, level):
    return lax.dynamic_index_in_dim(stack, level, 0, keepdims=False)


def _set(stack, value, level):
    return lax.dynamic_update_index_in_dim(stack, value, level, 0)


# ----------------------------------------------------------------------------- descent


def _path_uniforms(spec, k, lvl):
    """Uniforms behind the normals that split the level-`lvl` node on the path to leaf k; at
    `lvl = depth` (or deeper, clamped) those of the leaf's bridge (same tag and index)."""
    lvl = jnp.minimum(lvl, spec.depth)
    index = k >> (spec.depth - lvl).astype(k.dtype)
    return tuple(
        _hash.node_uniforms(key, lvl + 1, index, spec.n, s, d, spec.depth)
        for key, (s, d) in zip(spec.seeds, spec.leaves)
    )


def _to_normals(spec, uniforms):
    return tuple(_hash.uniform_to_normal(x, d) for x, (_, d) in zip(uniforms, spec.leaves))


def _walk_start(spec, k, lvl):
    """The pipeline a walk down from `lvl` carries: normals for `lvl`, uniforms for `lvl + 1`."""
    return _to_normals(spec, _path_uniforms(spec, k, lvl)), _path_uniforms(spec, k, lvl + 1)


def walk(spec, k: Array, start: Array, path: tuple, fold, acc):
    """Walk down the path to leaf k from level `start`: split the path's node at each level
    `lvl` in start..depth-1, and store the child on the path and its sibling at `lvl + 1`.

    `acc = fold(lvl, active, old_sibling, new_sibling, acc)` sees each level's sibling at
    `lvl + 1` before and after the split (`active`: whether this path walks the level; where
    not, the stacks are left as they are). Returns `(path, acc, leaf normals)`.

    Per level, node and sibling are one block of the packed `path`, read and written once: XLA
    makes (at least) one kernel per loop-carried array, and a level costs little more than its
    kernel launches.

    The randomness is drawn ahead as loop-carried (materialised) values: computed in the
    iteration that uses it, XLA fuses the hash and the normal transform into every consumer
    (both children, each branch of erf_inv): three hashes, and a float64 transform several
    times slower inside the integer kernel than on its own."""
    depth = spec.depth
    first = batch_min(start)
    before = path

    def body(lvl, carry):
        pairs, acc, (xi, next_uniforms) = carry
        active = lvl >= start
        right = bit_at(k, lvl, depth)
        new_pairs, old_sib, new_sib = [], [], []
        for j, (_, dt) in enumerate(spec.leaves):
            parent = _get(pairs[j], lvl)[0]
            # The old path's values come from the stacks as they were before the walk (a
            # loop invariant): read from the ones being written, XLA copies them per level.
            old = _get(before[j], lvl + 1)
            lo, hi = _bridge.split(parent, xi[j], sqrt_width_table(depth, dt)[lvl])
            block = jnp.where(active, jnp.stack([jnp.where(right, hi, lo), jnp.where(right, lo, hi)]), old)
            new_pairs.append(_set(pairs[j], block, lvl + 1))
            old_sib.append(old[1])
            new_sib.append(block[1])
        acc = fold(lvl, active, tuple(old_sib), tuple(new_sib), acc)
        ahead = (_to_normals(spec, next_uniforms), _path_uniforms(spec, k, lvl + 2))
        return tuple(new_pairs), acc, ahead

    carry = (path, acc, _walk_start(spec, k, first))
    path, acc, (normals, _) = lax.fori_loop(first, depth, body, carry)
    return path, acc, normals


def _branch_off(path: tuple, level: Array, depth: int) -> tuple:
    """The path for a new point leaving the cached one below `level` (-1: an invalid cursor,
    nothing kept but the root): at `level + 1` the old sibling becomes the new node."""
    swap = (level >= 0) & (level < depth)
    lv = jnp.clip(level + 1, 0, depth)
    out = []
    for p in path:
        pair = _get(p, lv)
        out.append(_set(p, jnp.where(swap, pair[::-1], pair), lv))
    return tuple(out)


def _leaf_pieces_on(spec, path, normals, u: Array, k: Array):
    """`leaf_pieces` at `u` once `path` holds the path to its leaf k (`normals`: the leaf's)."""
    return leaf_pieces(spec, tuple(_get(p, spec.depth)[0] for p in path), normals, u, k)


def _arrive(spec, path, normals, u: Array, k: Array) -> BrownianCursor:
    """The cursor at `u` once `path` holds the path to its leaf k (`normals`: the leaf's)."""
    prefix, suffix = _leaf_pieces_on(spec, path, normals, u, k)
    return BrownianCursor(
        position=u,
        valid=jnp.ones((), bool),
        path=path,
        leaf_normals=normals,
        leaf_prefix=prefix,
        leaf_suffix=suffix,
    )


def _leaving_level(cur: BrownianCursor, k: Array, depth: int) -> Array:
    """The level below which the path to leaf k leaves the cursor's; -1 for an invalid cursor
    (nothing kept but the root, which `empty_cursor` drew)."""
    return jnp.where(cur.valid, common_level(leaf_index(cur.position, depth), k, depth), -1)


def _move(spec, cur: BrownianCursor, u: Array) -> BrownianCursor:
    """Make the cursor hold the path to position `u` (a different point)."""
    depth = spec.depth
    k = leaf_index(u, depth)
    level = _leaving_level(cur, k, depth)
    path = _branch_off(cur.path, level, depth)
    start = jnp.clip(level + 1, 0, depth)
    path, _, normals = walk(spec, k, start, path, lambda lvl, active, old, new, acc: acc, ())
    return _arrive(spec, path, normals, u, k)


def move(spec, cur: BrownianCursor, u: Array) -> BrownianCursor:
    """`_move`, skipped when the cursor already holds `u` (the sequential case)."""
    same = cur.valid & (cur.position == u)
    return lax.cond(same, lambda c: c, lambda c: _move(spec, c, u), cur)


class _Trip(NamedTuple):
    """`increment_pieces`' carry: trip 0 moves the cursor to s, trip 1 walks on to t."""

    trip: Array
    path: tuple
    leaf_normals: tuple
    leaf_prefix: tuple
    leaf_suffix: tuple
    s_prefix: tuple  # the leaf pieces at s, once the cursor has been there
    s_suffix: tuple
    acc: tuple  # the folds (`walk`'s acc): suffix of s and prefix of t, and their widths


def increment_pieces(spec, cur: BrownianCursor, us: Array, ut: Array):
    """Pieces of $[s, t]$ (positions `us <= ut` in leaf units) and the cursor, moved to t.

    The move to s (when the cursor is elsewhere) and the walk on to t are two trips of one
    loop through the same code: XLA:CPU compiles every kernel on its own, and a separate move
    (its conditional and walk) was about a fifth of an SDE solve's compile time. A sequential
    query (the cursor at s) starts at the second trip, so it walks and draws no more."""
    depth = spec.depth
    ks, kt = leaf_index(us, depth), leaf_index(ut, depth)
    level_st = common_level(ks, kt, depth)
    dtype = us.dtype

    def fold(walking_t, lvl, active, s_sib, t_sib, acc):
        # Both folds in one array per shape leaf ([suffix of s, prefix of t]) and one of
        # widths: a loop-carried array is a kernel per level.
        accs, widths = acc
        shift = (depth - lvl - 1).astype(ks.dtype)
        width = (jnp.asarray(1, ks.dtype) << shift).astype(dtype)  # of a node at lvl + 1
        # The path of s: its right sibling at lvl + 1 (from the stacks before the walk) goes
        # in front of the suffix gathered so far; the path of t: its new left sibling is
        # appended to the prefix.
        s_left = walking_t & active & ~bit_at(ks, lvl, depth)
        t_right = walking_t & active & bit_at(kt, lvl, depth)
        a_s, b_s = ratio(width, widths[0], dtype)
        a_t, b_t = ratio(widths[1], width, dtype)
        new = []
        for j, (_, dt) in enumerate(spec.leaves):
            s_acc, t_acc = accs[j][0], accs[j][1]
            s_new = jnp.where(s_left, _bridge.chen(s_sib[j], s_acc, a_s.astype(dt), b_s.astype(dt)), s_acc)
            t_new = jnp.where(t_right, _bridge.chen(t_acc, t_sib[j], a_t.astype(dt), b_t.astype(dt)), t_acc)
            new.append(jnp.stack([s_new, t_new]))
        widths = jnp.stack([jnp.where(s_left, widths[0] + width, widths[0]), jnp.where(t_right, widths[1] + width, widths[1])])
        return tuple(new), widths

    def trip(c: _Trip) -> _Trip:
        walking_t = c.trip == 1
        k, u = jnp.where(walking_t, kt, ks), jnp.where(walking_t, ut, us)
        # Trip 0, always the first, leaves the cursor's path; trip 1 that of s.
        level = jnp.where(walking_t, level_st, _leaving_level(cur, ks, depth))
        path = _branch_off(c.path, level, depth)
        start = jnp.clip(level + 1, 0, depth)
        path, acc, normals = walk(spec, k, start, path, lambda *a: fold(walking_t, *a), c.acc)
        prefix, suffix = _leaf_pieces_on(spec, path, normals, u, k)
        # A path already at s (under vmap, beside one that is not) keeps its pieces there.
        keep = lambda new, old: tuple(jnp.where(walking_t | at_s, o, n) for n, o in zip(new, old))  # noqa: E731
        return _Trip(c.trip + 1, path, normals, prefix, suffix, keep(prefix, c.s_prefix), keep(suffix, c.s_suffix), acc)

    acc = (tuple(jnp.zeros((2,) + p.shape, p.dtype) for p in cur.leaf_prefix), jnp.zeros((2,), dtype))
    at_s = cur.valid & (cur.position == us)
    # Under vmap every path takes the first trip if one needs it (a path at s walks no level
    # there): a batched trip count would make vmap select every carried array, the stacks
    # included, at every trip.
    first = batch_min(jnp.where(at_s, 1, 0).astype(jnp.int32))
    start = _Trip(first, cur.path, cur.leaf_normals, cur.leaf_prefix, cur.leaf_suffix, cur.leaf_prefix, cur.leaf_suffix, acc)
    out = lax.while_loop(lambda c: c.trip < 2, trip, start)
    cur = BrownianCursor(ut, jnp.ones((), bool), out.path, out.leaf_normals, out.leaf_prefix, out.leaf_suffix)
    s_leaf_prefix, s_leaf_suffix, (accs, widths) = out.s_prefix, out.s_suffix, out.acc
    s_acc, t_acc = tuple(a[0] for a in accs), tuple(a[1] for a in accs)
    s_width, t_width = widths[0], widths[1]
    # Close the folds with the leaf pieces: [s, d_D] + gathered suffix, prefix + [c_D, t].
    a_s, b_s = ratio((ks + 1).astype(dtype) - us, s_width, dtype)
    a_t, b_t = ratio(t_width, ut - kt.astype(dtype), dtype)
    s_piece, t_piece = [], []
    for j, (_, dt) in enumerate(spec.leaves):
        s_piece.append(_bridge.chen(s_leaf_suffix[j], s_acc[j], a_s.astype(dt), b_s.astype(dt)))
        t_piece.append(_bridge.chen(t_acc[j], cur.leaf_prefix[j], a_t.astype(dt), b_t.astype(dt)))
    weights = combine_weights(us, ut, ks, kt, level_st, depth)
    out = combine(spec, tuple(s_piece), tuple(t_piece), s_leaf_prefix, cur.leaf_prefix, weights)
    return out, cur


def combine_weights(us, ut, ks, kt, level, depth: int):
    """What `combine` needs of the times alone: the Chen fractions at the common ancestor's
    midpoint, the leaf fractions, and whether [s, t] lies in one leaf or is empty. (Split off
    so that the grid build computes them once per interval, not once per path element.)"""
    i32 = lambda v: np.asarray(v, jnp.int32)  # noqa: E731
    # Split point: the midpoint of the common ancestor (in leaf units).
    shift = lax.convert_element_type(lax.clamp(i32(0), lax.sub(i32(depth - 1), level), i32(depth)), ks.dtype)
    mid = lax.convert_element_type(lax.shift_left(lax.shift_right_arithmetic(kt, shift), shift), us.dtype)
    a, b = ratio(lax.sub(mid, us), lax.sub(ut, mid), us.dtype)
    a_leaf, b_leaf = ratio(lax.sub(us, lax.convert_element_type(ks, us.dtype)), lax.sub(ut, us), us.dtype)
    empty = lax.eq(ut, us)
    b_leaf = lax.select(empty, lax.full_like(b_leaf, 1), b_leaf)
    return a, b, a_leaf, b_leaf, lax.ge(level, i32(depth)), empty


def combine(spec, s_piece, t_piece, s_prefix, t_prefix, weights):
    """The piece of $[s, t]$ from $S_{L+1}(s)$ and $P_{L+1}(t)$, or, inside one leaf,
    from the two leaf prefixes (`weights` from `combine_weights`; scalar times, vmapped by
    the grid build)."""
    a, b, a_leaf, b_leaf, same, empty = weights
    out = []
    for j, (_, dt) in enumerate(spec.leaves):
        general = _bridge.chen(s_piece[j], t_piece[j], a.astype(dt), b.astype(dt))
        inner = _bridge.unchen(t_prefix[j], s_prefix[j], a_leaf.astype(dt), b_leaf.astype(dt))
        piece = jnp.where(same, inner, general)
        out.append(jnp.where(empty, jnp.zeros_like(piece), piece))
    return tuple(out)
