r"""The grid fast path: all increments over a sorted grid, level by level.

The build reproduces the descent's arithmetic (same node normals, same split, bridge and
Chen functions, same fold orders), only vectorised:

1. *Full levels* $0..l_f$ with $2^{l_f} \approx$ the number of grid points: every node is
   split, children interleaved by a reshape (no gathers).
2. *Deep levels* $l_f..D$: one path per grid point, split per point (a node shared by
   two neighbouring points is drawn twice, identically), then the leaf bridge.
3. *Folds*: per point, the suffix $S_l$ (left fold over right siblings) and prefix $P_l$
   (right fold over left siblings) for $l \ge l_f$; above $l_f$ the same folds per interval,
   with the whole siblings read from the full levels, in a loop over only the levels whose
   nodes fit in the longest run of whole nodes inside one interval (`_shallow`).
4. Each interval $[u_i, u_{i+1}]$ with deepest common ancestor at level $L_i$ is
   $S_{L_i+1}(u_i) \oplus P_{L_i+1}(u_{i+1})$, as in `increment`.

Cost: about $2^{l_f+1} + (D - l_f + 1)(N+1)$ node draws for $N$ steps.

Compile time is part of the design: XLA:CPU compiles every kernel as its own LLVM module, and the unrolled levels are most of the kernels. Steps 2 and 3 are rolled loops
from `ROLLED_FROM` deep levels on, and the all-leaves build of the space-space area
(`all_leaves`) is one, so a deep tree compiles no more than a shallow one. Arrays of many pieces keep the
component axis first, `(n, count, *shape)`, so that the rules of `_bridge` apply to them as they
are: no `vmap`, whose batching of every `jax.numpy` helper was most of the build's trace time.
Per-node scalars (width fractions, masks) are broadcast along axis 1 (`_col`, `_pick`).

The functions here take the tree as a `TreeSpec` (`spec`, see `_spec`).
"""

import math

import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np

from .._typing import Array
from .._batch import batch_min
from .._once import computed_once
from .._xla_cpu import ROLLED_FROM
from . import _bridge, _cursor, _hash


def _col(x: Array, like: Array, dtype=None) -> Array:
    """Per-node values `(count,)` shaped to broadcast against one component `(count, *shape)`
    of `like` (component axis first)."""
    x = x if dtype is None else x.astype(dtype)
    return lax.broadcast_in_dim(x, like.shape[1:], (0,))


def _pick(mask: Array, a: Array, b: Array) -> Array:
    """`where(mask, a, b)` for piece arrays `(n, count, *shape)` and a per-node mask `(count,)`."""
    return lax.select(lax.broadcast_in_dim(mask, a.shape, (1,)), a, b)


def _repeat_nodes(x: Array) -> Array:
    """Each node twice along axis 1: `(n, c, *shape)` -> `(n, 2c, *shape)`."""
    shape = (x.shape[0], x.shape[1], 2, *x.shape[2:])
    both = lax.broadcast_in_dim(x, shape, (0, 1, *range(3, len(shape))))
    return jnp.reshape(both, (x.shape[0], 2 * x.shape[1], *x.shape[2:]))


def node_ids(depth: int, tags: Array, indices: Array):
    """Identifiers of many nodes for `draw_nodes`: packed words (one array, see
    `_hash.node_ident`) for trees of depth <= `_hash.PACKED_DEPTH`, else `(tags, indices)`."""
    if depth <= _hash.PACKED_DEPTH:
        return _hash.node_ident(tags, indices)
    return tags, indices


def draw_nodes(spec, ids, groups=None, once: bool = True) -> tuple:
    """Normals of many nodes (`ids` from `node_ids`), `(n, len, *shape)` per shape leaf.

    The build draws through as few calls as it can: each call site inlines the whole hash
    and normal transform, and one per level made compile time grow with the depth. Each call
    is computed once, into buffers (`computed_once`).

    `groups`, optional: consecutive runs of `ids` that want other normals per node, as
    `(length, n, element_shape)` with `element_shape(shape)` the element shape of a shape
    leaf; then the result is a list with one such tuple per group, `(n, length,
    *element_shape(shape))` per shape leaf. All groups share one hash with the most counters
    any needs, each node's normals bitwise those of `_hash.node_normals` with its own.

    `once=False` leaves the draw to XLA, for a caller with one reader of the whole draw (the
    grid build's deep loop, which starts from it as its buffer: the hash then writes that
    buffer directly, where the one-trip loop would cost a zeroed buffer and a copy)."""
    # (The node identifiers' few integer ops are left to XLA, which fuses them into the draw: a
    # buffer of their own cost three kernels more to compile, and no measurable run time.)
    packed = not isinstance(ids, tuple)
    # The loop's unknown word from a seed, the one input always traced (the times may be
    # constants, which XLA would fold through the loop); the same in all trees under vmap.
    word = batch_min(jnp.ravel(spec.seeds[0])[0])
    seeds = spec.seeds

    many = spec.paths is not None
    leaves = spec.tree_leaves  # each tree's own (shape, dtype)

    total = (ids if packed else ids[0]).shape[0]
    grouped = groups is not None
    groups = groups if grouped else ((total, spec.n, lambda shape: shape),)
    counts = [max(_hash.word_count(n, f(s)) for _, n, f in groups) for s, _ in leaves]

    def words(seed, count):
        # The hash words of every node (and path: one seed per path, path axis last), broadcast
        # written out: the same operations as a vmap over nodes, without batching each of the
        # hash's 130 ops in the trace. Past `PACKED_DEPTH` a node first hashes (tag, high index
        # word) into a key of its own, as `_hash.node_words` does.
        m = total
        keys_shape, node_axes = ((m, seed.shape[0]), (0, 2)) if many else ((m,), (0,))
        k0, k1 = (lax.broadcast_in_dim(seed[:, i], keys_shape, (1,)) if many else lax.broadcast(seed[i], keys_shape) for i in (0, 1))
        if packed:
            ident = ids
        else:
            tags, index = ids
            hi, ident = _hash.index_words(index)
            per_node = lambda x: lax.broadcast_in_dim(x.astype(jnp.uint32), keys_shape, (0,))  # noqa: E731
            k0, k1 = _hash.threefry2x32(k0, k1, per_node(tags), per_node(hi))
        full = (m, count, *keys_shape[1:])
        k0, k1 = (lax.broadcast_in_dim(k, full, node_axes) for k in (k0, k1))
        ident = lax.broadcast_in_dim(ident, full, (0,))
        ctr = lax.broadcast_in_dim(lax.iota(jnp.uint32, count), full, (1,))
        return _hash.threefry2x32(k0, k1, ident, ctr)

    def draw():
        # Normals in counter order, put in element order after the loop.
        return tuple(
            _hash.uniform_to_normal(_hash.word_uniforms(*words(seed, c), d), d)
            for seed, (_, d), c in zip(seeds, leaves, counts)
        )

    drawn = computed_once(draw, word) if once else draw()
    out, start = [], 0
    for length, n, element_shape in groups:
        out.append(tuple(
            _in_element_order(normals, start, length, n, element_shape(s), c, many)
            for normals, (s, _), c in zip(drawn, leaves, counts)
        ))
        start += length
    return out if grouped else out[0]


def _in_element_order(x: Array, start: int, length: int, n: int, shape, count: int, many: bool):
    """Nodes `start..start+length` of a draw's normals (`count` counters per node, axis 1) as
    `(n, length, *shape)` (with `many`, `(n, length, paths, *shape)`): the element order of
    `_hash.in_element_order` for a node drawn with its own counter count."""
    own = _hash.word_count(n, shape)
    if (start, length, own) != (0, x.shape[0], count):
        x = lax.slice_in_dim(lax.slice_in_dim(x, start, start + length, axis=0), 0, own, axis=1)
    x = _hash.rows_pieces(x, n, shape, axis=1)  # (len, rows, n, *rest[, paths])
    k = len(shape[1:])
    # -> (n, len, [paths,] rows, *rest)
    x = jnp.transpose(x, (2, 0, *([3 + k] if many else []), 1, *range(3, 3 + k)))
    return jnp.reshape(x, (*x.shape[: 3 if many else 2], *shape))


def full_level_ids(depth: int, top: int):
    """Node identifiers (`node_ids`) of the root's values and the split normals of every node
    above `top`, in heap order: entry 0 is the root (tag 0), entry i >= 1 splits node
    (l, i - 2**l) at level l = floor(log2 i), i.e. tag l + 1 (built from an iota: no
    2**top-sized constants). Packed, entry i's identifier is i itself."""
    if depth <= _hash.PACKED_DEPTH:
        return lax.iota(jnp.uint32, 2**top)
    idt = _hash.index_dtype(depth)
    heap = lax.iota(idt, 2**top)
    lvl_of = (8 * jnp.dtype(idt).itemsize - 1 - lax.clz(jnp.maximum(heap, 1))).astype(jnp.int32)
    tags = jnp.where(heap == 0, 0, lvl_of + 1)
    index = jnp.where(heap == 0, 0, heap - (jnp.asarray(1, idt) << lvl_of.astype(idt)))
    return tags, index


def _deep_ids(depth: int, top: int, k: Array) -> tuple:
    """Node identifiers of the split normals on each point's path below `top` (level-major),
    then of each point's leaf bridge."""
    m = k.shape[0]
    levels = jnp.arange(top, depth, dtype=jnp.int32)
    tags = jnp.concatenate([jnp.repeat(levels + 1, m), jnp.full((m,), depth + 1, jnp.int32)])
    index = jnp.concatenate([(k[None, :] >> (depth - levels)[:, None].astype(k.dtype)).ravel(), k])
    return node_ids(depth, tags, index)


def _full_levels(spec, top: int, xi_all: tuple | None = None) -> list:
    """Node values of every node at levels 0..top (`xi_all`: the normals of `full_level_ids`,
    drawn here if not given): `levels[l][j]` has shape `(n, 2**l, *shape)`."""
    depth = spec.depth
    if xi_all is None:
        xi_all = draw_nodes(spec, full_level_ids(depth, top))
    levels = [tuple(_bridge.root(x[:, 0])[:, None] for x in xi_all)]
    for lvl in range(top):
        # (`lax` ops: a `jax.numpy` operator or index traces a helper anew for each level's shape.)
        right_child = lax.eq(lax.bitwise_and(lax.iota(jnp.int32, 2 ** (lvl + 1)), np.int32(1)), np.int32(1))
        nxt = []
        for j, (_, dt) in enumerate(spec.leaves):
            xi = lax.slice_in_dim(xi_all[j], 2**lvl, 2 ** (lvl + 1), axis=1)
            sq = _cursor.sqrt_width_table(depth, dt)[lvl]
            # Each child from its parent repeated (broadcast, no interleaving concatenation:
            # XLA duplicated those into every consumer, one kernel more per level).
            lo, hi = _bridge.split(_repeat_nodes(levels[-1][j]), _repeat_nodes(xi), sq)
            nxt.append(_pick(right_child, hi, lo))
        levels.append(tuple(nxt))
    return levels


def all_leaves(spec, xi_all: tuple | None = None) -> tuple:
    """Values of all `2**depth` leaves, `(n, 2**depth, *shape)` per shape leaf: the last of
    `_full_levels(spec, depth)`, in one rolled loop over the levels (`xi_all`: the normals of
    `full_level_ids(depth, depth)`, drawn here if not given).

    Every leaf position holds the value of its ancestor at the current level and splits it with
    that node's normals, so each node's split is the same arithmetic on the same numbers as in
    `_full_levels`; only repeated `2**depth` times per level (cheap: a few flops per element).
    The unrolled build compiled a few kernels per level, a large part of an area grid's compile
    time (XLA:CPU compiles every kernel as its own LLVM module)."""
    depth = spec.depth
    idt = _hash.index_dtype(depth)
    if xi_all is None:
        xi_all = draw_nodes(spec, full_level_ids(depth, depth))
    pos = lax.iota(idt, 2**depth)

    def level(lvl, vals):
        lvl = lax.convert_element_type(lvl, jnp.int32)  # (an int64 loop index under x64)
        node = lax.shift_right_arithmetic(pos, lax.convert_element_type(depth - lvl, idt))
        heap = lax.add(lax.shift_left(np.asarray(1, idt), lax.convert_element_type(lvl, idt)), node)
        right = _cursor.bit_at(pos, lvl, depth)
        out = []
        for v, xi, (_, dt) in zip(vals, xi_all, spec.leaves):
            sq = _cursor.sqrt_width_table(depth, dt)[lvl]
            lo, hi = _bridge.split(v, jnp.take(xi, heap, axis=1, mode="clip"), sq)
            out.append(_pick(right, hi, lo))
        return tuple(out)

    roots = tuple(_bridge.root(x[:, 0]) for x in xi_all)
    init = tuple(lax.broadcast_in_dim(r, (r.shape[0], 2**depth, *r.shape[1:]), (0, *range(2, r.ndim + 1))) for r in roots)
    return lax.fori_loop(0, depth, level, init)




def _deep_paths(spec, top_nodes, k: Array, top: int, xi_all: tuple, first: tuple | None = None):
    """Per point: node at level D, siblings at levels top+1..D, and the leaf's bridge
    normals (`xi_all`: the normals of `_deep_ids`). The siblings come as a list over the
    levels (unrolled), level `top + 1 + i` at `i`, or (rolled, from `ROLLED_FROM` levels on)
    as `xi_all`'s own buffers with level `top + 1 + i`'s siblings written over the normals
    that made them, at nodes `i * len .. (i + 1) * len` (`_sibling_at`); then `first` are the
    first level's normals, drawn apart (see `grid_pieces`).

    The rolled loop updates the draw in place: no stacked output to zero and no copy of
    the normals into a per-level layout (each of those was a pass over the whole draw, which
    together cost more than the draw's hash)."""
    depth = spec.depth
    m = k.shape[0]
    node = tuple(x[:, k >> (depth - top)] for x in top_nodes)

    def level(node, lvl, xis):  # `lvl`: an int (unrolled) or a traced int32 (rolled)
        right = _cursor.bit_at(k, lvl, depth)
        nn, ss = [], []
        for v, xi, (_, dt) in zip(node, xis, spec.leaves):
            lo, hi = _bridge.split(v, xi, _cursor.sqrt_width_table(depth, dt)[lvl])
            nn.append(_pick(right, hi, lo))
            ss.append(_pick(right, lo, hi))
        return tuple(nn), tuple(ss)

    if depth - top < ROLLED_FROM:
        siblings = []
        for i, lvl in enumerate(range(top, depth)):
            node, sibling = level(node, lvl, tuple(x[:, i * m : (i + 1) * m] for x in xi_all))
            siblings.append(sibling)
    else:
        # The level's normals come in the carry, read from the buffer after the previous
        # level's write: the write is then the buffer's only use, which XLA does in place
        # (with a read of the buffer beside it, it copied the whole buffer every level).
        def body(i, carry):
            i = lax.convert_element_type(i, jnp.int32)  # (an int64 loop index under x64)
            node, xis, buffers = carry
            node, sibling = level(node, i + top, xis)
            buffers = tuple(lax.dynamic_update_slice_in_dim(b, x, lax.mul(i, np.int32(m)), axis=1) for b, x in zip(buffers, sibling))
            return node, tuple(_sibling_at(b, i + 1, m) for b in buffers), buffers

        node, _, siblings = lax.fori_loop(np.int32(0), np.int32(depth - top), body, (node, first, xi_all))
        xi_all = siblings
    leaf_normals = tuple(x[:, (depth - top) * m :] for x in xi_all)
    return node, siblings, leaf_normals


def _sibling_at(buffer: Array, i: Array, m: int) -> Array:
    """Nodes `i * m .. (i + 1) * m` of a rolled build's buffer (axis 1): level `top + 1 + i`."""
    return lax.dynamic_slice_in_dim(buffer, lax.mul(i, np.int32(m)), m, axis=1)


def _deep_folds(spec, siblings, top: int, u: Array, k: Array, level: Array, suffix, prefix):
    r"""Per-point folds for levels depth-1..top: the suffix $S_l(u_i)$ and prefix $P_l(u_i)$
    from the leaf pieces up to level `top`, and each interval's captures $S_{L+1}(u_i)$ and
    $P_{L+1}(u_{i+1})$ where its common level $L$ is at or below `top - 1` (else the leaf's or
    the last fold's). Unrolled or rolled as `_deep_paths` was (`siblings` from it)."""
    depth = spec.depth

    def fold(carry, lvl, sibs):  # `lvl`: an int (unrolled) or a traced int32 (rolled)
        suf, pre, cap_s, cap_p = carry
        shift = depth - lvl - 1
        if isinstance(lvl, int):
            w_sib = jnp.full(u.shape, 2.0**shift, u.dtype)
        else:
            shift = shift.astype(k.dtype)
            w_sib = jnp.broadcast_to((jnp.ones((), k.dtype) << shift).astype(u.dtype), u.shape)
        end = (((k >> shift) + 1) << shift).astype(u.dtype)
        start = ((k >> shift) << shift).astype(u.dtype)
        right = _cursor.bit_at(k, lvl, depth)
        a_s, b_s = _cursor.ratio(end - u, w_sib, u.dtype)
        a_p, b_p = _cursor.ratio(w_sib, u - start, u.dtype)
        new_s, new_p = [], []
        for sf, pr, sib, (_, dt) in zip(suf, pre, sibs, spec.leaves):
            new_s.append(_pick(right, sf, _chen(sf, sib, a_s, b_s, dt)))
            new_p.append(_pick(right, _chen(sib, pr, a_p, b_p, dt), pr))
        hit = level + 1 == lvl
        cap_s = tuple(_pick(hit, x[:, :-1], c) for c, x in zip(cap_s, new_s))
        cap_p = tuple(_pick(hit, x[:, 1:], c) for c, x in zip(cap_p, new_p))
        return tuple(new_s), tuple(new_p), cap_s, cap_p

    carry = (suffix, prefix, tuple(x[:, :-1] for x in suffix), tuple(x[:, 1:] for x in prefix))
    # Level lvl + 1's sibling (at lvl - top) folds in at lvl, from the deepest level up.
    if isinstance(siblings, list):
        for lvl in range(depth - 1, top - 1, -1):
            carry = fold(carry, lvl, siblings[lvl - top])
        return carry
    m = k.shape[0]

    def body(j, carry):
        i = lax.sub(np.int32(depth - top - 1), lax.convert_element_type(j, jnp.int32))  # from the deepest level up
        return fold(carry, i + top, tuple(_sibling_at(b, i, m) for b in siblings))

    return lax.fori_loop(np.int32(0), np.int32(depth - top), body, carry)


def _leaf_pieces(spec, node, normals, u: Array, k: Array) -> tuple:
    """Prefix $[c_D, u]$ and suffix $[u, d_D]$ of each point's leaf (as `_cursor.leaf_pieces`)."""
    a = u - k.astype(u.dtype)
    b = (k + 1).astype(u.dtype) - u
    prefix, suffix = [], []
    for v, xi, (_, dt) in zip(node, normals, spec.leaves):
        sq = _cursor.sqrt_width_table(spec.depth, dt)[spec.depth]
        p, s = _bridge.bridge(v, xi, _col(a, v, dt), _col(b, v, dt), sq)
        prefix.append(p)
        suffix.append(s)
    return tuple(prefix), tuple(suffix)


def _chen(first: Array, second: Array, a: Array, b: Array, dt) -> Array:
    """`_bridge.chen` of piece arrays with per-node fractions `(count,)`."""
    return _bridge.chen(first, second, _col(a, first, dt), _col(b, first, dt))


def grid_pieces(spec, u: Array) -> tuple:
    """Pieces (component axis first, shape `(n, N, *shape)`) of all grid intervals, for one tree
    or, with `spec.paths`, for many built as one (see `TreeSpec.with_paths`)."""
    depth = spec.depth
    m = u.shape[0]
    top = min(depth, max(1, math.ceil(math.log2(m))))
    # The per-grid values (leaf indices, common levels, Chen fractions) are left to XLA, which
    # fuses them into the per-element kernels that read them: a few flops per element redone
    # for every path, against the dozen kernels that a loop computing them once compiled.
    k = _cursor.leaf_index(u, depth)
    full_ids, deep_ids = full_level_ids(depth, top), _deep_ids(depth, top, k)
    ks, kt, us, ut = k[:-1], k[1:], u[:-1], u[1:]
    level = _cursor.common_level(ks, kt, depth)
    weights = _cursor.combine_weights(us, ut, ks, kt, level, depth)
    if depth - top < ROLLED_FROM:
        # All normals in one draw: each draw inlines the whole hash and normal transform.
        xi = draw_nodes(spec, jax.tree.map(lambda a, b: jnp.concatenate([a, b]), full_ids, deep_ids))
        xi_full, xi_deep, first = tuple(x[:, : 2**top] for x in xi), tuple(x[:, 2**top :] for x in xi), None
    else:
        # The deep normals straight into the rolled loop's buffer, its only reader: one kernel,
        # with no zeroed buffer and no copy (together more than the deep levels' own work). The
        # first deep level's normals are drawn again with the full levels': read from the
        # buffer, they would be a second reader of the deep draw, which XLA then splits into
        # several kernels with the normal transform's intermediates materialised.
        small = draw_nodes(spec, jax.tree.map(lambda a, b: jnp.concatenate([a, b[: k.shape[0]]]), full_ids, deep_ids))
        xi_full, first = tuple(x[:, : 2**top] for x in small), tuple(x[:, 2**top :] for x in small)
        xi_deep = draw_nodes(spec, deep_ids, once=False)
    levels = _full_levels(spec, top, xi_full)
    node, siblings, normals = _deep_paths(spec, levels[top], k, top, xi_deep, first)
    prefix_d, suffix_d = _leaf_pieces(spec, node, normals, u, k)

    suf, pre, cap_s, cap_p = _deep_folds(spec, siblings, top, u, k, level, suffix_d, prefix_d)

    if top > 1:
        cap_s, cap_p = _shallow(spec, levels, top, u, k, suf, pre, level, cap_s, cap_p)
    return _combine(spec, cap_s, cap_p, tuple(x[:, :-1] for x in prefix_d), tuple(x[:, 1:] for x in prefix_d), weights)


def _combine(spec, s_piece, t_piece, s_prefix, t_prefix, weights) -> tuple:
    """`_cursor.combine` for all intervals at once."""
    a, b, a_leaf, b_leaf, same, empty = weights
    out = []
    for sp, tp, spre, tpre, (_, dt) in zip(s_piece, t_piece, s_prefix, t_prefix, spec.leaves):
        general = _chen(sp, tp, a, b, dt)
        inner = _bridge.unchen(tpre, spre, _col(a_leaf, tpre, dt), _col(b_leaf, tpre, dt))
        piece = _pick(same, inner, general)
        out.append(_pick(empty, jnp.zeros_like(piece), piece))
    return tuple(out)


def _shallow(spec, levels, top, u, k, suf, pre, level, cap_s, cap_p):
    r"""$S_{L+1}(u_i)$ and $P_{L+1}(u_{i+1})$ of intervals whose common ancestor is above
    `top - 1`: the per-point folds continued above `top` (`suf`, `pre` are $S_{top}$,
    $P_{top}$), with each whole sibling read from the levels built above.

    A sibling appended to $S_{L+1}(u_i)$ lies inside $[u_i, u_{i+1}]$, so a level whose nodes
    are wider than the longest run $R$ of whole level-`top` nodes inside one interval adds
    nothing: the loop runs over the $\lfloor\log_2 R\rfloor + 1$ levels that can (one for a
    uniform grid, at most `top`). One rolled loop compiles a few kernels where a segment tree
    compiled two per level; its trip count is a run-time value, so the shapes stay static."""
    depth = spec.depth
    idt = k.dtype
    n = u.shape[0] - 1
    ks, kt = lax.slice_in_dim(k, 0, n), lax.slice_in_dim(k, 1, n + 1)
    us, ut = lax.slice_in_dim(u, 0, n), lax.slice_in_dim(u, 1, n + 1)
    g = lax.shift_right_arithmetic(k, np.asarray(depth - top, idt))
    gaps = lax.sub(lax.sub(lax.slice_in_dim(g, 1, n + 1), lax.slice_in_dim(g, 0, n)), np.asarray(1, idt))
    run = lax.reduce_max(lax.max(gaps, np.asarray(0, idt)), (0,))
    bits = 8 * np.dtype(idt).itemsize
    trips = lax.select(lax.gt(run, np.asarray(0, idt)), lax.sub(np.int32(bits), lax.convert_element_type(lax.clz(run), jnp.int32)), np.int32(0))
    heap = tuple(lax.concatenate([lv[j] for lv in levels], 1) for j in range(len(spec.leaves)))
    last = np.asarray(heap[0].shape[1] - 1, idt)
    one = np.asarray(1, idt)
    zero = np.asarray(0, idt)

    def fold_level(t, carry):
        # (`lax` ops: see `_cursor`.)
        s_acc, p_acc = carry
        lvl = lax.sub(np.int32(top - 1), t)
        shift = lax.convert_element_type(lax.sub(np.int32(depth - 1), lvl), idt)
        first_of_child_level = lax.sub(lax.shift_left(one, lax.convert_element_type(lax.add(lvl, np.int32(1)), idt)), one)
        w_sib = lax.broadcast(lax.convert_element_type(lax.shift_left(one, shift), u.dtype), us.shape)
        below = lax.le(lax.add(level, np.int32(1)), lvl)  # still under the capture level L + 1
        act_s = lax.bitwise_and(below, lax.bitwise_not(_cursor.bit_at(ks, lvl, depth)))  # u_i's node is a left child: append
        act_p = lax.bitwise_and(below, _cursor.bit_at(kt, lvl, depth))  # u_{i+1}'s node is a right child: prepend
        node_s = lax.shift_right_arithmetic(ks, shift)
        node_p = lax.shift_right_arithmetic(kt, shift)
        end = lax.convert_element_type(lax.shift_left(lax.add(node_s, one), shift), u.dtype)
        start = lax.convert_element_type(lax.shift_left(node_p, shift), u.dtype)
        a_s, b_s = _cursor.ratio(lax.sub(end, us), w_sib, u.dtype)
        a_p, b_p = _cursor.ratio(w_sib, lax.sub(ut, start), u.dtype)
        sib_s = lax.clamp(zero, lax.add(lax.add(first_of_child_level, node_s), one), last)
        sib_p = lax.clamp(zero, lax.sub(lax.add(first_of_child_level, node_p), one), last)
        new_s, new_p = [], []
        for s, p, h, (_, dt) in zip(s_acc, p_acc, heap, spec.leaves):
            new_s.append(_pick(act_s, _chen(s, h[:, sib_s], a_s, b_s, dt), s))
            new_p.append(_pick(act_p, _chen(h[:, sib_p], p, a_p, b_p, dt), p))
        return tuple(new_s), tuple(new_p)

    # The loop leaves intervals captured at or below `top` (L + 1 >= top) as they are, so they
    # start from their captures and the loop's result is final.
    use = level + 1 < top
    carry = (
        tuple(_pick(use, x[:, :-1], c) for x, c in zip(suf, cap_s)),
        tuple(_pick(use, x[:, 1:], c) for x, c in zip(pre, cap_p)),
    )
    return lax.fori_loop(0, trips, fold_level, carry)
