r"""The grid fast path: all increments over a sorted grid, level by level.

The build reproduces the descent's arithmetic (same node normals, same split, bridge and
Chen functions, same fold orders), only vectorised:

1. *Full levels* $0..l_f$ with $2^{l_f} \approx$ the number of grid points: every node is
   split, children interleaved by a reshape (no gathers).
2. *Deep levels* $l_f..D$: one path per grid point, split per point (a node shared by
   two neighbouring points is drawn twice, identically), then the leaf bridge.
3. *Folds*: per point, the suffix $S_l$ (left fold over right siblings) and prefix $P_l$
   (right fold over left siblings) for $l \ge l_f$; above $l_f$, a segment tree keeps,
   for every node, the suffix of its last grid point and the prefix of its first one.
4. Each interval $[u_i, u_{i+1}]$ with deepest common ancestor at level $L_i$ is
   $S_{L_i+1}(u_i) \oplus P_{L_i+1}(u_{i+1})$, as in `increment`.

Cost: about $2^{l_f+1} + (D - l_f + 1)(N+1)$ node draws for $N$ steps.
"""

import math

import jax
import jax.lax as lax
import jax.numpy as jnp

from .._typing import Array
from .._once import computed_once, opaque_word
from . import _bridge, _cursor, _noise


def _draw_many(tree, tag: int, indices: Array) -> tuple:
    tags = jnp.full(indices.shape, tag, jnp.int32)
    return _draw_nodes(tree, tags, indices)


def _draw_nodes(tree, tags: Array, indices: Array) -> tuple:
    """Normals of many nodes (1-d `tags`, `indices`), `(len, n, *shape)` per shape leaf.

    The build draws through as few calls as it can: each call site inlines the whole hash
    and normal transform, and one per level made compile time grow with the depth. Each call
    is computed once, into buffers (`computed_once`)."""

    # Node identifiers into their own buffer first: left to XLA, their arithmetic (shifts,
    # concatenations) is sunk into the draw and redone for every path under vmap.
    tags, indices = computed_once(lambda: (tags, indices), indices[0].astype(jnp.uint32))

    many = isinstance(tree, PathsAxis)
    leaves = tree._base_shapes if many else tree._leaves  # each tree's own (shape, dtype)

    def words(key, shape, dtype):
        one = lambda k: jax.vmap(lambda g, i: _noise.node_words(k, g, i, tree._n, shape, dtype, tree.depth))(tags, indices)  # noqa: E731
        # Many trees: one seed per path, the words of each path's own draw, path axis last.
        return jax.vmap(one, out_axes=-1)(key) if many else one(key)

    def draw():
        # Per-word parts, put in element order after the loop (see `_noise.word_uniforms`).
        return tuple(
            tuple(_noise.uniform_to_normal(u, d) for u in _noise.word_uniforms(*words(key, s, d), d))
            for key, (s, d) in zip(tree._seeds, leaves)
        )

    drawn = computed_once(draw, jnp.ravel(tree._seeds[0])[0])
    shapes = [s for s, _ in leaves]
    if not many:
        return tuple(_noise.in_element_order(parts, tree._n, s) for parts, s in zip(drawn, shapes))
    # Parts are `(len, count, paths)`: element order along the counter axis, then the path axis
    # after the component axis, `(len, n, paths, *shape)` (no transpose for scalar shapes).
    out = []
    for parts, s in zip(drawn, shapes):
        x = jnp.concatenate(parts, axis=1)[:, : tree._n * math.prod(s)]
        x = jnp.reshape(x, (x.shape[0], tree._n, *s, x.shape[-1]))
        out.append(jnp.moveaxis(x, -1, 2))
    return tuple(out)


class PathsAxis:
    """Many trees that differ only in their key, as one tree for the grid build: each shape
    leaf gets a leading path axis, `(paths, *shape)`, and a node's normals for path b come
    from seed b (bitwise the normals of tree b).

    Under `vmap` over keys the build then runs as for one tree of shape `(paths, *shape)`,
    torchsde's formulation: per-level slices and strided reads of the node arrays act on whole
    rows of paths instead of striding inside each path's row, and the increments come out
    step-major, as a scan over the steps reads them (vmapped Euler-Maruyama on the GBM
    benchmark: 21 -> 8.4 ms)."""

    def __init__(self, tree, seeds: tuple, paths: int):
        self._seeds = seeds
        self._base_shapes = tree._leaves
        self._leaves = tuple(((paths, *s), d) for s, d in tree._leaves)
        self._n = tree._n
        self.depth = tree.depth


def _full_level_ids(depth: int, top: int) -> tuple:
    """Node identifiers of the root's values and the split normals of every node above `top`,
    in heap order: entry 0 is the root (tag 0), entry i >= 1 splits node (l, i - 2**l) at level
    l = floor(log2 i), i.e. tag l + 1 (built from an iota: no 2**top-sized constants)."""
    idt = _noise.index_dtype(depth)
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
    return tags, index


def _full_levels(tree, top: int, xi_all: tuple | None = None) -> list:
    """Node values of every node at levels 0..top (`xi_all`: the normals of `_full_level_ids`,
    drawn here if not given): `levels[l][j]` has shape `(2**l, n, *shape)`."""
    depth = tree.depth
    if xi_all is None:
        xi_all = _draw_nodes(tree, *_full_level_ids(depth, top))
    levels = [tuple(_bridge.root(x[0])[None] for x in xi_all)]
    for lvl in range(top):
        nxt = []
        for j, (_, dt) in enumerate(tree._leaves):
            xi = xi_all[j][2**lvl : 2 ** (lvl + 1)]
            sq = _cursor.sqrt_width_table(depth, dt)[lvl]
            lo, hi = jax.vmap(_bridge.split, in_axes=(0, 0, None))(levels[-1][j], xi, sq)
            both = jnp.stack([lo, hi], axis=1)
            nxt.append(jnp.reshape(both, (2 ** (lvl + 1), *lo.shape[1:])))
        levels.append(tuple(nxt))
    return levels


def _deep_paths(tree, top_nodes, k: Array, top: int, xi_all: tuple):
    """Per point: node at level D, siblings at levels top+1..D, and the leaf's bridge
    normals (`xi_all`: the normals of `_deep_ids`)."""
    depth = tree.depth
    m = k.shape[0]
    node = tuple(x[k >> (depth - top)] for x in top_nodes)
    siblings = {}
    for i, lvl in enumerate(range(top, depth)):
        right = _cursor.bit_at(k, lvl, depth)
        nn, ss = [], []
        for j, (_, dt) in enumerate(tree._leaves):
            xi = xi_all[j][i * m : (i + 1) * m]
            sq = _cursor.sqrt_width_table(depth, dt)[lvl]
            lo, hi = jax.vmap(_bridge.split, in_axes=(0, 0, None))(node[j], xi, sq)
            r = jnp.reshape(right, (-1,) + (1,) * (lo.ndim - 1))
            nn.append(jnp.where(r, hi, lo))
            ss.append(jnp.where(r, lo, hi))
        node, siblings[lvl + 1] = tuple(nn), tuple(ss)
    leaf_normals = tuple(x[(depth - top) * m :] for x in xi_all)
    return node, siblings, leaf_normals


def _bcast(mask: Array, x: Array) -> Array:
    return jnp.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))


def grid_pieces(tree, u: Array) -> tuple:
    """Pieces (component axis first, shape `(n, N, *shape)`) of all grid intervals; `tree` is a
    `BrownianTree` or a `PathsAxis`."""
    depth = tree.depth
    m = u.shape[0]
    top = min(depth, max(1, math.ceil(math.log2(m))))
    k = _cursor.leaf_index(u, depth)
    # All normals in one draw: each draw inlines the whole hash and normal transform.
    full_tags, full_index = _full_level_ids(depth, top)
    deep_tags, deep_index = _deep_ids(depth, top, k)
    xi = _draw_nodes(tree, jnp.concatenate([full_tags, deep_tags]), jnp.concatenate([full_index, deep_index]))
    levels = _full_levels(tree, top, tuple(x[: 2**top] for x in xi))
    node, siblings, normals = _deep_paths(tree, levels[top], k, top, tuple(x[2**top :] for x in xi))
    prefix_d, suffix_d = jax.vmap(lambda v, x, uu, kk: _cursor.leaf_pieces(tree, v, x, uu, kk))(
        node, normals, u, k
    )

    # Interval structure, computed once per interval (left to XLA, it is fused into the
    # final per-element kernel and redone for every path).
    ks, kt, us, ut = k[:-1], k[1:], u[:-1], u[1:]
    level, weights = computed_once(
        lambda: (lv := _cursor.common_level(ks, kt, depth), _cursor.combine_weights(us, ut, ks, kt, lv, depth)),
        opaque_word(u),
    )

    # Per-point folds for levels depth..top, capturing S_{L+1}(u_i) and P_{L+1}(u_{i+1}).
    suf, pre = suffix_d, prefix_d
    cap_s = tuple(x[:-1] for x in suf)
    cap_p = tuple(x[1:] for x in pre)
    for lvl in range(depth - 1, top - 1, -1):
        shift = depth - lvl - 1
        w_sib = jnp.asarray(2.0**shift, u.dtype)
        end = (((k >> shift) + 1) << shift).astype(u.dtype)
        start = ((k >> shift) << shift).astype(u.dtype)
        right = _cursor.bit_at(k, lvl, depth)
        a_s, b_s = _cursor.ratio(end - u, jnp.broadcast_to(w_sib, u.shape), u.dtype)
        a_p, b_p = _cursor.ratio(jnp.broadcast_to(w_sib, u.shape), u - start, u.dtype)
        new_s, new_p = [], []
        for j, (_, dt) in enumerate(tree._leaves):
            sib = siblings[lvl + 1][j]
            ms = jax.vmap(_bridge.chen)(suf[j], sib, a_s.astype(dt), b_s.astype(dt))
            mp = jax.vmap(_bridge.chen)(sib, pre[j], a_p.astype(dt), b_p.astype(dt))
            new_s.append(jnp.where(_bcast(right, ms), suf[j], ms))
            new_p.append(jnp.where(_bcast(right, mp), mp, pre[j]))
        suf, pre = tuple(new_s), tuple(new_p)
        hit = level + 1 == lvl
        cap_s = tuple(jnp.where(_bcast(hit, c), x[:-1], c) for c, x in zip(cap_s, suf))
        cap_p = tuple(jnp.where(_bcast(hit, c), x[1:], c) for c, x in zip(cap_p, pre))

    if top > 1:
        cap_s, cap_p = _shallow(tree, levels, top, u, k, suf, pre, level, cap_s, cap_p)

    pieces = jax.vmap(lambda a, b, c, d, w: _cursor.combine(tree, a, b, c, d, w))(
        cap_s, cap_p, tuple(x[:-1] for x in prefix_d), tuple(x[1:] for x in prefix_d), weights
    )
    return tuple(jnp.moveaxis(p, 1, 0) for p in pieces)


def _shallow(tree, levels, top, u, k, suf, pre, level, cap_s, cap_p):
    """Segment tree above level `top`: suffix of each node's last grid point and prefix
    of its first, then picked for intervals whose common ancestor is above `top - 1`."""
    depth = tree.depth
    g = k >> (depth - top)
    nodes = jnp.arange(2**top, dtype=k.dtype)
    # First and last grid point under each node, by scatter (O(N); a searchsorted's binary
    # search is a while loop that costs compile time, and compare-all is O(N 2**top)).
    point = jnp.arange(u.shape[0], dtype=jnp.int32)
    first = jnp.full(nodes.shape, u.shape[0], jnp.int32).at[g].min(point)
    last = jnp.full(nodes.shape, -1, jnp.int32).at[g].max(point)
    has = first <= last
    first_c = jnp.clip(first, 0, u.shape[0] - 1)
    last_c = jnp.clip(last, 0, u.shape[0] - 1)
    last_s = tuple(x[last_c] for x in suf)
    first_p = tuple(x[first_c] for x in pre)
    last_u, first_u = u[last_c], u[first_c]
    heap_s, heap_p = [None] * top, [None] * top
    for lvl in range(top - 1, -1, -1):
        w = 2.0 ** (depth - lvl - 1)  # child width in leaf units
        has_l, has_r = has[0::2], has[1::2]
        idx = jnp.arange(2**lvl, dtype=k.dtype)
        end_l = ((2 * idx + 1) << (depth - lvl - 1)).astype(u.dtype)
        start_r = end_l
        lu, fu = last_u[0::2], first_u[1::2]
        w_b = jnp.broadcast_to(jnp.asarray(w, u.dtype), lu.shape)
        a_s, b_s = _cursor.ratio(end_l - lu, w_b, u.dtype)
        a_p, b_p = _cursor.ratio(w_b, fu - start_r, u.dtype)
        new_s, new_p = [], []
        for j, (_, dt) in enumerate(tree._leaves):
            child = levels[lvl + 1][j]
            whole_l, whole_r = child[0::2], child[1::2]
            ms = jax.vmap(_bridge.chen)(last_s[j][0::2], whole_r, a_s.astype(dt), b_s.astype(dt))
            mp = jax.vmap(_bridge.chen)(whole_l, first_p[j][1::2], a_p.astype(dt), b_p.astype(dt))
            new_s.append(jnp.where(_bcast(has_r, ms), last_s[j][1::2], ms))
            new_p.append(jnp.where(_bcast(has_l, mp), first_p[j][0::2], mp))
        last_s, first_p = tuple(new_s), tuple(new_p)
        last_u = jnp.where(has_r, last_u[1::2], last_u[0::2])
        first_u = jnp.where(has_l, first_u[0::2], first_u[1::2])
        has = has_l | has_r
        heap_s[lvl], heap_p[lvl] = last_s, first_p
    # Intervals whose suffix/prefix level L+1 is above `top`.
    lp1 = jnp.clip(level + 1, 0, top - 1)
    offset = (jnp.asarray(1, k.dtype) << lp1.astype(k.dtype)) - 1
    shift = (depth - lp1).astype(k.dtype)
    idx_s = offset + (k[:-1] >> shift)
    idx_p = offset + (k[1:] >> shift)
    use = level + 1 < top
    out_s, out_p = [], []
    for j in range(len(tree._leaves)):
        hs = jnp.concatenate([heap_s[lvl][j] for lvl in range(top)])
        hp = jnp.concatenate([heap_p[lvl][j] for lvl in range(top)])
        out_s.append(jnp.where(_bcast(use, cap_s[j]), hs[idx_s], cap_s[j]))
        out_p.append(jnp.where(_bcast(use, cap_p[j]), hp[idx_p], cap_p[j]))
    return tuple(out_s), tuple(out_p)
