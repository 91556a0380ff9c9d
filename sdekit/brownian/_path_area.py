r"""Path-consistent space-space Lévy area (`BrownianTree(..., area=True)`).

A per-call approximation (`space_space_area`) draws fresh noise for every interval, so a
coarse step's area is not the Chen product of its fine steps' areas, and a solver using it
sees a different path at every resolution: strong order stays 1/2 on non-commutative noise.
Here the area is a function of the *path*:

1. Every leaf $k$ of the tree (width $\delta = 2^{-D}$ in rescaled time) gets Foster's
   approximation $A_k = H_k \wedge W_k + \lambda_k$ from its exact $(W_k, H_k)$ and the
   leaf's own normals (node tag `depth + 2`, the stream `area_normals` uses), where
   $(x \wedge y)_{ij} = x_i y_j - y_i x_j$.
2. Inside leaf $k = [c, d]$, the path up to $r$ gets
   $X_{c,r} = (W_{c,r},\; H_{c,r} \wedge W_{c,r} + a\,\lambda_k)$, $a = (r - c)/\delta$,
   with $(W_{c,r}, H_{c,r})$ the tree's exact any-point bridge. At $a = 1$ this is the
   leaf's value; its area has the right variance $(a\delta)^2/4$.
3. Pairs $X = (W, A)$ form a group under Chen's product
   $(W_1, A_1)(W_2, A_2) = (W_1 + W_2, A_1 + A_2 + \tfrac12(W_1 W_2^T - W_2 W_1^T))$, with
   inverse $(-W, -A)$; the value of $[s, t]$ is the product, in time order, of the
   partial leaf $X_{c_s,s}^{-1} X_k$, the whole leaves strictly between, and $X_{c_t,t}$
   (or $X_{c,s}^{-1}X_{c,t}$ inside one leaf). Every interval is thus a product of one
   group-valued path's pieces, so **Chen's relation holds exactly** (to rounding) across
   resolutions, grids and query orders, and the pieces all lie inside $[s, t]$ (no
   cancellation against the path's absolute value).

Properties. $W$ is the tree's exact $W$; the area has mean 0, the exact variance
$h^2/4$ of $A_{ij}$ for intervals that are unions of leaves, and is exactly Chen-consistent.
It is *not* the Brownian motion's true Lévy area: each leaf's $\lambda_k$ differs from
the true residual by an independent error of variance $\delta^2/6$, so over $[s, t]$ the
area differs from the true one by $O(\sqrt{(t - s)\,\delta})$. A solver on steps $h$
therefore converges with strong order 1 to the solution driven by this (W, A) path,
which lies within $O(\sqrt{\mathrm{tol}})$ of the true SDE solution: take
$\mathrm{tol} \lesssim h^2$ for order 1 against the true solution (the Clark--Cameron
bound says no method using $O(1/\mathrm{tol})$ path samples can do better than
$\sqrt{\mathrm{tol}}$).

Cost. An interval $[s, t]$ costs $O((t - s)/\mathrm{tol})$ leaf evaluations. `increment`
walks them one by one with a cursor (amortised O(1) tree levels per leaf); the grid build
draws all $2^D$ leaves once, then folds each step's leaves left to right, all steps
together (one rolled loop over the longest step's leaves; $O(2^D m^2)$ memory per path).
"""

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp

from .._typing import Array
from . import _cursor, _grid, _hash
from ._space_space_area import residual, wedge

# ----------------------------------------------------------------------------- the group


def mul(x: tuple, y: tuple) -> tuple:
    """Chen's product of `(W, A)` pairs (W `(..., m)`, A `(..., m, m)`)."""
    (w1, a1), (w2, a2) = x, y
    cross = w1[..., :, None] * w2[..., None, :]
    return w1 + w2, a1 + a2 + 0.5 * (cross - jnp.swapaxes(cross, -1, -2))


def inv(x: tuple) -> tuple:
    return -x[0], -x[1]


def _where(c: Array, x: tuple, y: tuple) -> tuple:
    return tuple(jnp.where(jnp.reshape(c, c.shape + (1,) * (a.ndim - c.ndim)), a, b) for a, b in zip(x, y))


# ----------------------------------------------------------------------------- leaves


def leaf_area_normals(spec, j: int, k: Array) -> Array:
    """The area normals of leaf `k` for shape leaf `j`, `(*shape, m)` (node tag `depth + 2`:
    a stream of their own, apart from the path's)."""
    shape, d = spec.leaves[j]
    return _hash.node_normals(spec.seeds[j], spec.depth + 2, k, 1, (*shape, shape[-1]), d, spec.depth)[0]


def _leaf_residual(spec, j: int, vals: Array, k: Array) -> Array:
    """Foster's $\\lambda_k$ of leaf `k` for shape leaf `j` (scalar `k`; vmap for many)."""
    d = spec.leaves[j][1]
    xi = leaf_area_normals(spec, j, k)
    width = jnp.asarray(2.0 ** -spec.depth, d)
    return residual(vals[0], vals[1], xi, width, "foster")


def _leaf(vals: Array, lam: Array) -> tuple:
    return vals[0], wedge(vals[1], vals[0]) + lam


def _prefix(piece: Array, lam: Array, a: Array) -> tuple:
    """$X_{c,r}$ from the bridge's prefix piece $[c, r]$ and the leaf's $\\lambda$."""
    a = jnp.reshape(a, a.shape + (1,) * (lam.ndim - a.ndim))
    return piece[0], wedge(piece[1], piece[0]) + a * lam


# ----------------------------------------------------------------------------- one interval


def interval_area(spec, us: Array, ut: Array) -> list:
    """Areas (rescaled time, one per shape leaf) of $[u_s, u_t]$ in leaf units, `us <= ut`.

    $X_{s,t} = X_{c_s,s}^{-1}\\,(X_{k_s} \\cdots X_{k_t - 1})\\,X_{c_t,t}$: one loop over the
    leaves $k_s..k_t$ with a private cursor (one descent, then amortised O(1) levels per
    leaf), keeping the first and last leaf for the partial pieces.
    """
    depth = spec.depth
    ks, kt = _cursor.leaf_index(us, depth), _cursor.leaf_index(ut, depth)
    nj = len(spec.leaves)
    zeros = lambda: [jnp.zeros((spec.n, *s), d) for s, d in spec.leaves]  # noqa: E731
    ident = [(jnp.zeros(s, d), jnp.zeros((*s, s[-1]), d)) for s, d in spec.leaves]

    def body(k, carry):
        cur, acc, first, last = carry
        cur = _cursor.move(spec, cur, k.astype(us.dtype))
        vals = [cur.path[j][depth, 0] for j in range(nj)]
        inner = k < kt
        acc = [_where(inner, mul(acc[j], _leaf(vals[j], _leaf_residual(spec, j, vals[j], k))), acc[j])
               for j in range(nj)]
        first = [jnp.where(k == ks, v, f) for v, f in zip(vals, first)]
        last = [jnp.where(k == kt, v, f) for v, f in zip(vals, last)]
        return cur, acc, first, last

    init = (_cursor.empty_cursor(spec), ident, zeros(), zeros())
    _, acc, first, last = lax.fori_loop(ks, kt + 1, body, init)

    def partial(vals, u, k):
        pre, _ = _cursor.leaf_pieces(spec, vals, _cursor.draw(spec, depth + 1, k), u, k)
        a = u - k.astype(u.dtype)
        return [_prefix(pre[j], _leaf_residual(spec, j, vals[j], k), a.astype(pre[j].dtype)) for j in range(nj)]

    p_s, p_t = partial(first, us, ks), partial(last, ut, kt)
    return [mul(mul(inv(p_s[j]), acc[j]), p_t[j])[1] for j in range(nj)]


# ----------------------------------------------------------------------------- grids


def _fold_leaves(sig: tuple, ks: Array, count: Array) -> tuple:
    """Per interval i, the Chen product $X_{k_i} X_{k_i + 1} \\cdots X_{k_i + c_i - 1}$ of its
    `count[i]` leaves from `ks[i]` on (the identity where the count is 0), folded left to right
    as `interval_area` folds them, so grid and single queries associate alike.

    One rolled loop over the longest run of leaves, vectorised over the intervals: a few
    kernels to compile, where a segmented associative scan over all leaves compiled about ten
    per tree level (most of an area grid's compile time). A uniform grid of N steps runs
    about `2**depth / N` iterations; a very uneven one up to `2**depth`, each over all
    intervals."""
    last = sig[0].shape[0] - 1
    some = count > 0
    first = tuple(x[ks] for x in sig)
    acc = _where(some, first, tuple(jnp.zeros_like(x) for x in first))

    def body(i, acc):
        idx = jnp.minimum(ks + i.astype(ks.dtype), last)
        return _where(i < count, mul(acc, tuple(x[idx] for x in sig)), acc)

    runs = jnp.max(count, initial=0).astype(jnp.int32)
    return lax.fori_loop(1, runs, body, acc)


def _grid_normals(spec, k: Array) -> tuple:
    """All the normals an area grid needs, in one draw (each draw inlines the whole hash): the
    split normals of every node in heap order, the leaf bridges' of the grid points' leaves
    `k`, and every leaf's area normals (`(2**D, *shape, m)` per shape leaf)."""
    depth = spec.depth
    n_leaves = 2**depth
    all_k = jnp.arange(n_leaves, dtype=_hash.index_dtype(depth))
    ids = [
        _grid.full_level_ids(depth, depth),
        _grid.node_ids(depth, jnp.full(k.shape, depth + 1, jnp.int32), k),
        _grid.node_ids(depth, jnp.full(all_k.shape, depth + 2, jnp.int32), all_k),
    ]
    ids = jax.tree.map(lambda *x: jnp.concatenate(x), *ids)
    same = lambda shape: shape  # noqa: E731
    groups = ((n_leaves, spec.n, same), (k.shape[0], spec.n, same), (n_leaves, 1, lambda s: (*s, s[-1])))
    heap, bridge, area = _grid.draw_nodes(spec, ids, groups)
    return heap, bridge, tuple(x[0] for x in area)


def grid_area(spec, u: Array) -> list:
    """Areas (rescaled time, one per shape leaf, leading axis N) of all intervals of a sorted
    grid `u` (N + 1 positions in leaf units)."""
    depth = spec.depth
    k = _cursor.leaf_index(u, depth)
    heap_xi, bridge_xi, area_xi = _grid_normals(spec, k)
    leaves = tuple(jnp.moveaxis(x, 0, 1) for x in _grid.all_leaves(spec, heap_xi))  # (2**D, n, *shape)
    bridge_xi = tuple(jnp.moveaxis(x, 0, 1) for x in bridge_xi)
    prefix, _ = jax.vmap(lambda v, x, uu, kk: _cursor.leaf_pieces(spec, v, x, uu, kk))(
        tuple(x[k] for x in leaves), bridge_xi, u, k
    )
    a = u - k.astype(u.dtype)
    ks, kt = k[:-1], k[1:]
    width = lambda d: jnp.asarray(2.0**-depth, d)  # noqa: E731
    out = []
    for j, (_, d) in enumerate(spec.leaves):
        v = leaves[j]
        lam = residual(v[:, 0], v[:, 1], area_xi[j], width(d), "foster")
        sig = _leaf(jnp.moveaxis(v, 1, 0), lam)
        # X_{c_s,s}^{-1} (X_{k_s} ... X_{k_t - 1}) X_{c_t,t}, as `interval_area` (inside one leaf
        # the product is empty, the identity, and this is X_{c_s,s}^{-1} X_{c_t,t}).
        whole = _fold_leaves(sig, ks, kt - ks)
        p = _prefix(jnp.moveaxis(prefix[j], 1, 0), lam[k], a.astype(lam.dtype))
        p_s, p_t = tuple(x[:-1] for x in p), tuple(x[1:] for x in p)
        out.append(mul(mul(inv(p_s), whole), p_t)[1])
    return out


# ----------------------------------------------------------------------------- jitted entries
# Separate jits from the W/H/K cores, so trees with and without areas give bitwise the same
# W, H and K when called eagerly.


def _finish(spec, areas: list, bad: Array):
    scale = spec.t1 - spec.t0
    out = []
    for (_, d), x in zip(spec.leaves, areas):
        # Exactly antisymmetric (FMA contraction can leave last-bit asymmetries).
        x = (0.5 * scale.astype(d)) * (x - jnp.swapaxes(x, -1, -2))
        out.append(spec.guard(x, jnp.reshape(bad, bad.shape + (1,) * (x.ndim - bad.ndim))))
    return spec.unflatten(out)


@eqx.filter_jit
def increment_area(spec, s: Array, t: Array):
    us, ut = spec.position(s), spec.position(t)
    us = jnp.minimum(us, ut)
    areas = interval_area(spec, us, ut)
    areas = [jnp.where(ut == us, jnp.zeros_like(x), x) for x in areas]
    bad = spec.bad(s, t)
    return _finish(spec, areas, bad)


@eqx.filter_jit
def grid_increment_area(spec, ts: Array):
    u = spec.position(ts)
    areas = grid_area(spec, u)
    empty = u[1:] == u[:-1]
    areas = [jnp.where(empty[(...,) + (None,) * (x.ndim - 1)], jnp.zeros_like(x), x) for x in areas]
    bad = spec.bad(ts[:-1], ts[1:])
    return _finish(spec, areas, bad)
