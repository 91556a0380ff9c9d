"""Path-consistent space-space Lévy area (`BrownianTree(..., area=True)`): Chen's relation across
resolutions and query orders, the area's law, its coupling to the path's own W, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb
from _program_size import equations

T = 2.0
DEPTH_TOL = 2.0**-5  # depth 6 on [0, 2]: 64 leaves


def _tree(key, dtype=None, tol=DEPTH_TOL, shape=(3,), levy="space-time"):
    return skb.BrownianTree(key, 0.0, T, shape=shape, tol=tol, levy=levy, area=True, dtype=dtype)


def _chen(first, second):
    """(W, A) of the concatenation of two intervals."""
    (w1, a1), (w2, a2) = first, second
    cross = w1[..., :, None] * w2[..., None, :]
    return w1 + w2, a1 + a2 + 0.5 * (cross - jnp.swapaxes(cross, -1, -2))


def test_chen_exact_across_resolutions_grids_and_query_orders(dtype):
    tree = _tree(jax.random.key(3), dtype)
    tdt = tree.t0.dtype
    eps = float(jnp.finfo(dtype).eps)
    # Leaf-aligned coarse times, plus arbitrary ones (some two in one leaf).
    aligned = np.linspace(0.0, T, 9)
    extra = np.array([0.013, 0.3, 0.31, 0.7071, 1.1, 1.52, 1.53])
    ts = np.union1d(aligned, extra)
    grid = tree.grid_increments(jnp.asarray(ts, tdt))
    whole = tree.increment(0.0, T)
    scale = float(jnp.max(jnp.abs(whole.A)))
    tol = 50 * eps * scale

    def product(lo, hi):
        acc = (grid.W[lo], grid.A[lo])
        for i in range(lo + 1, hi):
            acc = _chen(acc, (grid.W[i], grid.A[i]))
        return acc[1]

    # The whole path is the Chen product of the grid's steps (a different code path).
    assert float(jnp.max(jnp.abs(product(0, len(ts) - 1) - whole.A))) < tol
    # Each coarse step is the Chen product of the fine steps inside it.
    idx = np.searchsorted(ts, aligned)
    for lo, hi in zip(idx[:-1], idx[1:]):
        coarse = tree.increment(ts[lo], ts[hi])
        assert float(jnp.max(jnp.abs(product(lo, hi) - coarse.A))) < tol
    # Each grid step equals the single query, queried in any order.
    for i in np.random.default_rng(0).permutation(len(ts) - 1):
        inc = tree.increment(ts[i], ts[i + 1])
        assert float(jnp.max(jnp.abs(inc.A - grid.A[i]))) < tol


def test_exact_antisymmetry_w_h_unchanged_reversal_and_leaf_value():
    key = jax.random.key(5)
    tree = _tree(key)
    plain = skb.BrownianTree(key, 0.0, T, shape=(3,), tol=DEPTH_TOL, levy="space-time")
    inc, ref = tree.increment(0.3, 1.1), plain.increment(0.3, 1.1)
    assert plain.increment(0.3, 1.1).A is None
    assert bool((inc.W == ref.W).all()) and bool((inc.H == ref.H).all())  # bitwise
    assert bool((inc.A == -inc.A.T).all())
    assert bool((tree.reversed_increment(1.1, 0.3).A == -inc.A).all())
    assert bool((tree.increment(0.5, 0.5).A == 0).all())
    # One whole leaf: Foster's approximation with the tree's own area normals.
    width = T * 2.0**-tree.depth
    leaf = tree.increment(5 * width, 6 * width)
    foster = skb.space_space_area(leaf, tree.area_normals(5.5 * width))
    assert float(jnp.max(jnp.abs(leaf.A - foster))) < 1e-6


def test_area_law_over_many_leaves(x64):
    """Var A_ij = h^2/4, mean 0, uncorrelated with W, and the kurtosis 5 of the exact Lévy area
    (its law is hyperbolic secant), over intervals of 24 leaves not starting on a leaf boundary."""
    n = 20000
    h = 24 * T * 2.0**-6
    s, t = 0.47, 0.47 + h
    keys = jax.random.split(jax.random.key(0), n)
    incs = jax.jit(jax.vmap(lambda k: _tree(k).increment(s, t)))(keys)
    a = np.asarray(incs.A[:, 0, 1]) / h
    w = np.asarray(incs.W) / np.sqrt(h)
    se = 1 / np.sqrt(n)
    assert abs(a.mean()) < 4 * 0.5 * se
    assert abs(a.var() / 0.25 - 1) < 4 * 2 * se  # sd of the estimate: sqrt(kurtosis - 1) / sqrt(n)
    kurt = np.mean(a**4) / np.mean(a**2) ** 2
    assert 4.4 < kurt < 5.6, kurt
    for i in range(3):
        assert abs(np.corrcoef(a, w[:, i])[0, 1]) < 4 * se
    # Uncorrelated with W_0 W_1 too, but correlated with its own path's area (next test).
    assert abs(np.corrcoef(a, w[:, 0] * w[:, 1])[0, 1]) < 4 * se


def test_area_is_the_paths_own_area(x64):
    """Over 32 leaves, the tree's area differs from the piecewise-linear area of its own leaf
    increments by the 32 leaf areas only: E|A - A_pl|^2 = 32 * (leaf width)^2 / 4, against
    (32 * width)^2 / 4 for the area itself. A sign error in the Chen term would break this."""
    n, leaves = 2000, 32
    width = T * 2.0**-6
    ts = jnp.arange(leaves + 1, dtype=jnp.float64) * width

    def one(k):
        tree = _tree(k)
        g = tree.grid_increments(ts)
        return g.W, g.A, tree.increment(ts[0], ts[-1]).A

    w, a_leaf, a = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), n))
    c = jnp.cumsum(w, axis=1) - w  # path before each leaf
    cross = c[..., :, None] * w[..., None, :]
    piecewise = 0.5 * jnp.sum(cross - jnp.swapaxes(cross, -1, -2), axis=1)
    mse = float(jnp.mean((a - piecewise)[:, 0, 1] ** 2))
    assert abs(mse / (leaves * width**2 / 4) - 1) < 0.15
    assert float(jnp.mean(a[:, 0, 1] ** 2)) > 20 * mse


def test_bad_input():
    with pytest.raises(ValueError, match="levy='space-time'"):
        skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=0.1, area=True)
    with pytest.raises(ValueError, match="Brownian dimension"):
        skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=0.1, levy="space-time", area=True)
    with pytest.raises(TypeError, match="True or False"):
        skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=0.1, levy="space-time", area=1)
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=0.1, levy="space-time", area=True)
    with pytest.raises(ValueError, match="s <= t"):
        tree.increment(0.5, 0.2)
    bad = jax.jit(lambda s: tree.with_on_error("nan").increment(s, 0.9).A)(jnp.asarray(2.0))
    assert bool(jnp.isnan(bad).all())


def test_grid_area_on_uneven_grid_equals_increments(dtype):
    """Steps over many leaves beside steps inside one leaf and empty ones: the grid folds each
    step's whole leaves (runs of 0 to 60 leaves, all steps in one loop) as `increment` does."""
    tree = _tree(jax.random.key(8), dtype)
    tdt = tree.t0.dtype
    width = T * 2.0**-tree.depth
    ts = jnp.asarray([0.0, 0.3 * width, 0.3 * width, 0.6 * width, 60.5 * width, 61.0 * width, T], tdt)
    grid = tree.grid_increments(ts)
    scale = float(jnp.max(jnp.abs(tree.increment(0.0, T).A)))
    for i in range(len(ts) - 1):
        inc = tree.increment(ts[i], ts[i + 1])
        assert float(jnp.max(jnp.abs(inc.A - grid.A[i]))) < 50 * float(jnp.finfo(dtype).eps) * scale, i
    assert bool((grid.A[1] == 0).all())


def test_area_grid_program_does_not_grow_with_depth():
    """Compile-time guard (issue #18, item 9): the area grid is a few rolled loops, so its program
    has the same size at any depth, and a small one. The segmented associative scan and unrolled
    leaf levels it replaces grew by about 100 equations per level (1810 at depth 10), most of
    the first call of a general-noise solve."""
    sizes = []
    for tol in (2.0**-6, 2.0**-14):
        tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=tol, levy="space-time", area=True)
        jaxpr = jax.make_jaxpr(lambda ts: tree.grid_increments(ts).A)(jnp.linspace(0.0, 1.0, 65))
        sizes.append(equations(jaxpr.jaxpr))
    assert sizes[0] == sizes[1] and sizes[0] < 800, sizes
