"""BrownianTree API, pytrees, invariances (order, vmap, jit, cursor, grid) and precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb
from sdekit.brownian import _hash

LEVIES = ["increment", "space-time", "space-time-time"]


def _fields(inc):
    return [x for x in (inc.W, inc.H, inc.K) if x is not None]


def _rel(a, b):
    """Error relative to the quantity's own size (its RMS over the batch): W, H and K of
    an interval all scale like sqrt(h), each with its own constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / (np.sqrt(np.mean(b**2)) + 1e-300)


def _times(n, t0, t1, spacing, seed=0):
    """n sorted random (non-dyadic) times from t0 to t1, at least `spacing` apart."""
    rng = np.random.default_rng(seed)
    free = (t1 - t0) - (n - 1) * spacing
    assert free > 0
    gaps = spacing + free * rng.dirichlet(np.ones(n - 1))
    ts = t0 + np.concatenate([[0.0], np.cumsum(gaps)])
    ts[-1] = t1
    return ts


@pytest.mark.parametrize("levy", LEVIES)
def test_shapes_and_fields(levy):
    dtype = jnp.float32
    tree = skb.BrownianTree(jax.random.key(0), 0.5, 2.0, shape=(2, 3), tol=1e-2, levy=levy,
                            dtype=dtype)
    inc = tree.increment(0.7, 1.3)
    assert isinstance(inc, skb.Increment)
    assert inc.W.shape == (2, 3) and inc.W.dtype == dtype
    assert (inc.H is None) == (levy == "increment")
    assert (inc.K is None) == (levy != "space-time-time")
    np.testing.assert_allclose(inc.dt, 0.6, rtol=1e-6)
    assert tree.shape == (2, 3) and tree.levy == levy and tree.tol == 1e-2
    assert tree.depth == 8  # ceil(log2(1.5 / 0.01))


def test_pytree_shape_independent_leaves(x64):
    shape = {"a": jax.ShapeDtypeStruct((3,), jnp.float32),
             "b": (jax.ShapeDtypeStruct((), jnp.float64),)}
    tree = skb.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=shape, tol=2**-6,
                            levy="space-time")
    inc = tree.increment(0.2, 0.9)
    assert inc.W["a"].shape == (3,) and inc.W["a"].dtype == jnp.float32
    assert inc.H["b"][0].shape == () and inc.H["b"][0].dtype == jnp.float64
    single = skb.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(3,), tol=2**-6,
                              levy="space-time", dtype=jnp.float32)
    assert not np.allclose(single.increment(0.2, 0.9).W, inc.W["a"])
    assert tree.shape == shape


@pytest.mark.parametrize("levy", ["increment", "space-time-time"])
def test_cursor_is_bitwise_fresh_descent(dtype, levy):
    """Sequential, random-order and repeated queries: with and without cursor bitwise."""
    tree = skb.BrownianTree(jax.random.key(2), -1.0, 3.0, shape=(4,), tol=2**-9, levy=levy,
                            dtype=dtype)
    ts = _times(40, -1.0, 3.0, 0.0)
    rng = np.random.default_rng(1)
    pairs = [(ts[i], ts[i + 1]) for i in range(len(ts) - 1)]
    pairs += [tuple(sorted(rng.uniform(-1, 3, 2))) for _ in range(20)] + [pairs[3], pairs[3]]
    s, t = (jnp.asarray(x, tree.t0.dtype) for x in zip(*pairs))

    @jax.jit
    def both(s, t):
        def body(cur, st):
            inc, cur = tree.increment(st[0], st[1], cursor=cur)
            return cur, (inc, tree.increment(st[0], st[1]))
        return jax.lax.scan(body, tree.cursor(), (s, t))[1]

    with_cursor, fresh = both(s, t)
    for a, b in zip(_fields(with_cursor), _fields(fresh)):
        np.testing.assert_array_equal(a, b)


def test_cursor_node_and_sibling_are_the_halves_of_each_parent(x64):
    """The cursor's `node` and `sibling` views of its packed `path`: at every level the node on
    the path and its sibling are the two halves of the level above (Chen's relation with equal
    widths gives the parent back), the node on the side of the cached point's leaf."""
    from sdekit.brownian import _bridge, _cursor

    tree = skb.BrownianTree(jax.random.key(14), 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time-time")
    _, cur = tree.increment(0.3, 0.61, cursor=tree.cursor())
    node, sibling = cur.node, cur.sibling
    assert node[0].shape == sibling[0].shape == (tree.depth + 1, 3, 3)
    k = int(_cursor.leaf_index(cur.position, tree.depth))
    half = jnp.asarray(0.5)
    for lvl in range(1, tree.depth + 1):
        right = (k >> (tree.depth - lvl)) & 1
        left_half, right_half = (sibling[0][lvl], node[0][lvl]) if right else (node[0][lvl], sibling[0][lvl])
        np.testing.assert_allclose(_bridge.chen(left_half, right_half, half, half), node[0][lvl - 1], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(node[0], cur.path[0][:, 0])


@pytest.mark.parametrize("tol", [2.0**-8, 2.0**-31], ids=["packed", "deep"])
def test_fresh_descent_draws_the_root_node(x64, tol):
    """An empty cursor holds the root drawn from node (0, 0)'s normals: the whole interval's W
    and H are that node's, and the cursor holds it at level 0. (A root drawn from
    another node's normals would keep the law and change every path.) Trees deeper than 29
    levels hash node identities differently."""
    from sdekit.brownian import _cursor

    tree = skb.BrownianTree(jax.random.key(4), 0.0, 4.0, shape=(3,), tol=tol, levy="space-time")
    assert (tree.depth > _hash.PACKED_DEPTH) == (tol < 2.0**-28)
    xi = _cursor.draw(tree.spec, 0, 0)[0]
    whole = tree.increment(0.0, 4.0)
    np.testing.assert_allclose(whole.W, 2.0 * xi[0], rtol=1e-13)
    np.testing.assert_allclose(whole.H, 2.0 * xi[1] / np.sqrt(12.0), rtol=1e-13)
    _, cur = tree.increment(1.0, 3.0, cursor=tree.cursor())
    np.testing.assert_allclose(cur.node[0][0], jnp.stack([xi[0], xi[1] / np.sqrt(12.0)]), rtol=1e-14)


def test_cursor_move_and_walk_share_one_compiled_walk():
    """The move to s and the walk to t are two trips of one loop around one walk (a separate
    move, with its conditional and its own walk, was about a fifth of an SDE solve's compile time),
    and the empty cursor already holds the root: two loops and no conditional."""
    tree = skb.BrownianTree(jax.random.key(4), 0.0, 4.0, shape=(3,), tol=2**-8, levy="space-time")
    unchecked = tree.with_on_error("nan")
    text = jax.jit(lambda s, t, cur: unchecked.increment(s, t, cursor=cur)).lower(0.1, 0.2, tree.cursor()).as_text()
    assert text.count("stablehlo.while") == 2
    assert text.count("stablehlo.case") + text.count("stablehlo.if") == 0


def test_eager_cursor_holds_the_root_bitwise(dtype):
    """`tree.cursor()` draws the root: made eagerly or under jit, it holds bitwise the same
    root, and increments through either are bitwise a fresh descent's."""

    @jax.jit
    def queries(tree, cur):
        return tree.increment(0.3, 0.7, cursor=cur)[0].W, tree.increment(0.3, 0.7).W, tree.cursor().path[0][0, 0]

    for seed in range(20):
        tree = skb.BrownianTree(jax.random.key(seed), 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time-time", dtype=dtype)
        eager = tree.cursor()
        with_cursor, fresh, jitted_root = queries(tree, eager)
        np.testing.assert_array_equal(eager.path[0][0, 0], jitted_root)
        np.testing.assert_array_equal(with_cursor, fresh)


def test_query_order_vmap_and_jit_invariance():
    """64 random query times: permuted order, vmap batch sizes, jit/no jit agree."""
    tree = skb.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(), tol=2**-12,
                            levy="space-time-time", dtype=jnp.float32)
    ts = jnp.asarray(_times(65, 0.0, 1.0, 2**-12), tree.t0.dtype)
    s, t = ts[:-1], ts[1:]
    ref = [tree.increment(s[i], t[i]) for i in range(len(s))]  # no outer jit
    ref = [np.stack([np.asarray(getattr(r, f)) for r in ref]) for f in "WHK" if getattr(ref[0], f) is not None]

    @jax.jit
    def in_order(order):
        def body(cur, i):
            out, cur = tree.increment(s[i], t[i], cursor=cur)
            return cur, out
        out = jax.lax.scan(body, tree.cursor(), order)[1]
        back = jnp.argsort(order)
        return jax.tree.map(lambda x: x[back], out)

    perm = jnp.asarray(np.random.default_rng(0).permutation(len(s)))
    candidates = [in_order(jnp.arange(len(s))), in_order(perm), in_order(perm[::-1])]
    candidates.append(jax.vmap(tree.increment)(s, t))
    half = len(s) // 2
    parts = [jax.vmap(tree.increment)(s[:half], t[:half]), jax.vmap(tree.increment)(s[half:], t[half:])]
    candidates.append(jax.tree.map(lambda a, b: jnp.concatenate([a, b]), *parts))
    for cand in candidates:
        for a, b in zip(_fields(cand), ref):
            b = b[: a.shape[0]]
            assert _rel(a, b) < 1e-6
            # Per interval, against the interval's own scale sqrt(t - s) (a value that is near
            # zero by chance is a sum of larger pieces: its own relative error is not bounded).
            scale = np.sqrt(np.asarray(t - s, np.float64))[: a.shape[0]]
            assert np.max(np.abs(a - b) / scale) < 1e-5


@pytest.mark.parametrize("levy,tol,wide", [("increment", 1e-3, False), ("space-time", 2**-6, True),
                                           ("space-time-time", 1e-3, False)])
def test_grid_equals_tree(levy, tol, wide):
    with jax.enable_x64(wide):
        _grid_equals_tree(levy, tol, jnp.float64 if wide else jnp.float32)


def _grid_equals_tree(levy, tol, dtype):
    tree = skb.BrownianTree(jax.random.key(4), 0.0, 2.0, shape=(3,), tol=tol, levy=levy,
                            dtype=dtype)
    ts = jnp.asarray(_times(101, 0.0, 2.0, tol), tree.t0.dtype)
    grid = tree.grid_increments(ts)
    single = jax.vmap(tree.increment)(ts[:-1], ts[1:])
    assert grid.W.shape == (100, 3)
    np.testing.assert_allclose(grid.dt, ts[1:] - ts[:-1])
    for a, b in zip(_fields(grid), _fields(single)):
        assert _rel(a, b) < 1e-5


@pytest.mark.parametrize("levy", LEVIES)
def test_grid_with_long_runs_of_whole_nodes(levy, x64):
    """Dense clusters of times joined by long gaps: the gaps span runs of whole nodes up to
    half the tree (the levels above the dense part are folded in a loop whose trip count is
    the longest run's), and the dense part goes below the full levels (per-point paths)."""
    tree = skb.BrownianTree(jax.random.key(9), 0.0, 1.0, shape=(2,), tol=2.0**-12, levy=levy)
    dense = np.linspace(0.3, 0.3 + 2.0**-9, 40)
    ts = np.concatenate([[0.0, 0.001], dense, [0.5, 0.5 + 3e-4, 0.999, 1.0]])
    ts = jnp.asarray(ts)
    grid = tree.grid_increments(ts)
    single = jax.vmap(tree.increment)(ts[:-1], ts[1:])
    for a, b in zip(_fields(grid), _fields(single)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # The same with each time nudged off the dyadic grid, and under vmap over keys.
    keys = jax.random.split(jax.random.key(10), 3)
    shifted = ts.at[1:-1].add(1e-7)
    make = lambda k: skb.BrownianTree(k, 0.0, 1.0, shape=(2,), tol=2.0**-12, levy=levy)  # noqa: E731
    batched = jax.vmap(lambda k: make(k).grid_increments(shifted))(keys)
    for i, key in enumerate(keys):
        want = jax.vmap(make(key).increment)(shifted[:-1], shifted[1:])
        for a, b in zip(_fields(batched), _fields(want)):
            np.testing.assert_allclose(a[i], b, rtol=1e-9, atol=1e-12)


def test_grid_with_repeated_and_sub_leaf_times(x64):
    tree = skb.BrownianTree(jax.random.key(5), 0.0, 1.0, shape=(2,), tol=0.1,
                            levy="space-time-time")
    ts = jnp.asarray([0.0, 0.01, 0.01, 0.02, 0.5, 0.5 + 1e-9, 0.97, 1.0])
    grid = tree.grid_increments(ts)
    single = jax.vmap(tree.increment)(ts[:-1], ts[1:])
    for a, b in zip(_fields(grid), _fields(single)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert np.all(np.asarray(grid.W[1]) == 0)


def _grid_per_tree_and_vmapped(make_tree, keys, ts, **vmap_kw):
    """Grid increments of each key's tree one at a time, and of all of them under one vmap."""
    one = lambda key: make_tree(key).grid_increments(ts)  # noqa: E731
    singles = [jax.jit(one)(k) for k in keys]
    batched = jax.jit(jax.vmap(one, **vmap_kw))(keys)
    return singles, batched


@pytest.mark.parametrize("levy", LEVIES)
@pytest.mark.parametrize("shape", [(), (2, 3)])
def test_grid_vmapped_over_keys_builds_trees_as_one(levy, shape):
    """Under vmap over keys the grid build runs for all trees at once (path axis inside); each
    path's increments are still its own tree's, bitwise up to FMA contraction. (A scalar and a
    two-axis shape: a one-axis shape takes the same trailing-axes code as the two-axis one.)"""
    keys = jax.random.split(jax.random.key(11), 5)
    ts = jnp.asarray(_times(61, 0.0, 1.0, 2**-8, seed=3), jnp.float32)
    make = lambda key: skb.BrownianTree(key, 0.0, 1.0, shape=shape, tol=2**-8, levy=levy)  # noqa: E731
    singles, batched = _grid_per_tree_and_vmapped(make, keys, ts)
    for name in ("W", "H", "K"):
        got = getattr(batched, name)
        if got is None:
            continue
        want = np.stack([np.asarray(getattr(s, name)) for s in singles])
        assert got.shape == (5, 60, *shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=3 * float(np.finfo(np.float32).eps) * np.abs(want).max())
        # Different keys give different paths: no path axis was broadcast or mixed up.
        assert np.all(np.abs(want[0] - want[1]).max() > 0.01)
    np.testing.assert_allclose(batched.dt, np.broadcast_to(np.diff(np.asarray(ts)), (5, 60)))


def test_grid_vmapped_pytree_shape_and_fallbacks(x64):
    """Pytree shapes (one seed per leaf) take the batched build; vmaps that batch the times or
    the interval fall back to a plain vmap; nested vmaps compose."""
    keys = jax.random.split(jax.random.key(12), 4)
    ts = jnp.linspace(0.0, 1.0, 33)
    shape = {"a": jax.ShapeDtypeStruct((2,), jnp.float32), "b": jax.ShapeDtypeStruct((), jnp.float64)}
    make = lambda key, t1=1.0: skb.BrownianTree(key, 0.0, t1, shape=shape, tol=2**-6, levy="space-time", depth=8)  # noqa: E731
    singles, batched = _grid_per_tree_and_vmapped(make, keys, ts)
    for leaf in ("a", "b"):
        want = np.stack([np.asarray(s.H[leaf]) for s in singles])
        np.testing.assert_allclose(batched.H[leaf], want, rtol=1e-5, atol=1e-6)
        assert batched.H[leaf].dtype == shape[leaf].dtype

    # Batched times (each path its own grid) and batched intervals: plain vmap.
    grids = jnp.stack([ts, ts**2, jnp.sqrt(ts), ts])
    out = jax.jit(jax.vmap(lambda k, g: make(k).grid_increments(g)))(keys, grids)
    for i in range(4):
        np.testing.assert_allclose(out.W["a"][i], make(keys[i]).grid_increments(grids[i]).W["a"], rtol=1e-5, atol=1e-6)
    t1s = jnp.asarray([1.0, 2.0, 0.5, 1.0])
    out = jax.jit(jax.vmap(lambda k, t1: make(k, t1).grid_increments(ts * t1)))(keys, t1s)
    for i in range(4):
        want = make(keys[i], float(t1s[i])).grid_increments(ts * t1s[i])
        np.testing.assert_allclose(out.W["b"][i], want.W["b"], rtol=1e-9, atol=1e-12)

    # vmap of vmap over keys: (2, 2) paths, each its own tree.
    nested = jax.jit(jax.vmap(jax.vmap(lambda k: make(k).grid_increments(ts))))(keys.reshape(2, 2))
    np.testing.assert_allclose(nested.W["a"].reshape(4, 32, 2), batched.W["a"], rtol=1e-5, atol=1e-6)


def test_grid_vmapped_invalid_times_follow_policy():
    keys = jax.random.split(jax.random.key(13), 3)
    bad = jnp.asarray([0.0, 0.5, 0.25, 1.0])  # not sorted: the middle interval is invalid

    def f(key, on_error):
        tree = skb.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-6, on_error=on_error)
        return tree.grid_increments(bad).W

    w = jax.jit(jax.vmap(lambda k: f(k, "nan")))(keys)
    assert np.all(np.isnan(w[:, 1])) and np.all(np.isfinite(w[:, [0, 2]]))
    with pytest.raises(Exception, match="outside"):
        jax.block_until_ready(jax.jit(jax.vmap(lambda k: f(k, "raise")))(keys))


@pytest.mark.parametrize("levy", ["space-time", "space-time-time"])
def test_chen_and_evaluate(dtype, levy):
    tree = skb.BrownianTree(jax.random.key(6), 0.0, 3.0, shape=(5,), tol=1e-3, levy=levy,
                            dtype=dtype)
    s, r, u = 0.37, 1.234, 2.9
    a, b, c = tree.increment(s, r), tree.increment(r, u), tree.increment(s, u)
    h1, h2 = r - s, u - r
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == jnp.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.W + b.W, c.W, **tol)
    if levy != "increment":
        hbar = h1 * a.H + h2 * b.H + 0.5 * (h2 * a.W - h1 * b.W)
        np.testing.assert_allclose(hbar / (h1 + h2), c.H, **tol)
    if levy == "space-time-time":
        kbar = (h1**2 * a.K + h2**2 * b.K + 0.5 * (h2 * h1 * a.H - h1 * h2 * b.H)
                + ((h1 - h2) / 12) * (h1 * b.W - h2 * a.W))
        np.testing.assert_allclose(kbar / (h1 + h2) ** 2, c.K, **tol)
    np.testing.assert_allclose(tree.evaluate(r) - tree.evaluate(s), a.W, **tol)
    np.testing.assert_array_equal(tree.evaluate(0.0), 0.0)
    np.testing.assert_array_equal(tree.increment(1.0, 1.0).W, 0.0)


def test_reversed_increment(dtype):
    tree = skb.BrownianTree(jax.random.key(7), 0.0, 1.0, shape=(2,), tol=1e-3,
                            levy="space-time-time", dtype=dtype)
    fwd, rev = tree.increment(0.2, 0.6), tree.reversed_increment(0.6, 0.2)
    np.testing.assert_allclose(rev.dt, -fwd.dt)
    np.testing.assert_array_equal(rev.W, -fwd.W)
    np.testing.assert_array_equal(rev.H, fwd.H)
    np.testing.assert_array_equal(rev.K, -fwd.K)


def test_vmap_over_keys_and_jit_pytree():
    keys = jax.random.split(jax.random.key(8), 7)

    def f(key, s, t):
        tree = skb.BrownianTree(key, 0.0, 1.0, shape=(3,), tol=1e-2, levy="space-time")
        return tree.increment(s, t)

    out = jax.jit(jax.vmap(f, in_axes=(0, None, None)))(keys, 0.1, 0.4)
    assert out.W.shape == (7, 3)
    one = f(keys[2], 0.1, 0.4)
    assert _rel(out.W[2], one.W) < 1e-5

    tree = skb.BrownianTree(keys[0], 0.0, 1.0, shape=(3,), tol=1e-2, levy="space-time")
    g = jax.jit(lambda tr, s, t: tr.increment(s, t).H)
    np.testing.assert_allclose(g(tree, 0.1, 0.4), tree.increment(0.1, 0.4).H, rtol=1e-6)


def test_traced_t0_t1_with_depth():
    def f(t1):
        tree = skb.BrownianTree(jax.random.key(0), 0.0, t1, shape=(), tol=0.01, depth=10)
        return tree.increment(0.0, t1 / 2).W

    a = jax.jit(f)(2.0)
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 2.0, shape=(), tol=0.01, depth=10)
    np.testing.assert_allclose(a, tree.increment(0.0, 1.0).W, rtol=1e-6)


def test_float64_times_not_truncated(x64):
    """Adjacent float64 times give distinct values (diffrax #733)."""
    tree = skb.BrownianTree(jax.random.key(9), 0.0, 1.0, shape=(), tol=2**-45,
                            dtype=jnp.float64)
    t = 0.3
    t_next = np.nextafter(t, 1.0)
    w1, w2 = tree.evaluate(t), tree.evaluate(t_next)
    assert w1 != w2
    assert abs(float(w2 - w1)) < 1e-6
    assert tree.t0.dtype == jnp.float64


def _replay_in_float64(monkeypatch):
    """Make float64 trees draw the float32 normals, cast: the same path in float64."""
    orig = _hash.node_uniforms

    def f32_uniforms(seed, tag, index, n, shape, dtype, depth):
        # float32 uniforms: `uniform_to_normal` then transforms in float32 and casts.
        return orig(seed, tag, index, n, shape, jnp.float32, depth)

    monkeypatch.setattr(_hash, "node_uniforms", f32_uniforms)


@pytest.mark.parametrize("where", [0.0, 0.5 - 2e-5, 1.0 - 3e-5])
def test_float32_precision_of_short_intervals(x64, monkeypatch, where):
    """Short float32 intervals are accurate to a few ulps of their own size, anywhere;
    differencing absolute path values (the negative control) is not."""
    _replay_in_float64(monkeypatch)
    key = jax.random.key(10)
    kw = dict(shape=(200,), tol=2**-20, levy="space-time-time")
    t32 = skb.BrownianTree(key, jnp.float32(0), jnp.float32(1), dtype=jnp.float32, **kw)
    t64 = skb.BrownianTree(key, 0.0, 1.0, dtype=jnp.float64, **kw)
    s = np.float32(where + 1e-6)
    t = np.float32(s + np.float32(2e-5))
    a, b = t32.increment(s, t), t64.increment(float(s), float(t))
    scale = np.sqrt(float(t) - float(s))
    for x, y in zip(_fields(a), _fields(b)):
        assert np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y))) / scale < 2e-6
    diffed = np.asarray(t32.evaluate(t), np.float64) - np.asarray(t32.evaluate(s), np.float64)
    if where > 0.1:
        assert np.max(np.abs(diffed - np.asarray(b.W))) / scale > 1e-5
