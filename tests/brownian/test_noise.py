"""Node randomness: the fused Threefry hash and the normal transform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.extend.random import threefry_2x32

from sdekit.brownian import BrownianTree, _hash


def test_threefry_matches_jax():
    key = np.array([0x12345678, 0x9ABCDEF0], np.uint32)
    count = np.arange(2 * 1000, dtype=np.uint32) * np.uint32(2654435761)
    expected = np.asarray(threefry_2x32(key, count))
    x0, x1 = _hash.threefry2x32(jnp.uint32(key[0]), jnp.uint32(key[1]), count[:1000], count[1000:])
    np.testing.assert_array_equal(np.concatenate([x0, x1]), expected)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_normals_marginal_and_independence(dtype, n):
    seed = _hash.seed_words(jax.random.key(3))
    z = _hash.node_normals(seed, 5, 7, n, (40_000,), dtype, 10)
    assert z.shape == (n, 40_000) and z.dtype == dtype
    z = np.asarray(z, np.float64)
    for row in z:
        assert scipy.stats.kstest(row, "norm").pvalue > 1e-3
    # A neighbouring node and a neighbouring component are uncorrelated.
    z2 = np.asarray(_hash.node_normals(seed, 5, 8, n, (40_000,), dtype, 10), np.float64)
    assert abs(np.corrcoef(z[0], z2[0])[0, 1]) < 4 / np.sqrt(40_000)
    if n > 1:
        assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 4 / np.sqrt(40_000)


def test_node_identifiers_distinct():
    seed = _hash.seed_words(jax.random.key(0))
    ids = [(0, 0), (1, 0), (2, 0), (2, 1), (3, 0), (12, 5)]
    draws = [np.asarray(_hash.node_normals(seed, g, i, 1, (4,), jnp.float32, 10)) for g, i in ids]
    for a in range(len(draws)):
        for b in range(a):
            assert not np.array_equal(draws[a], draws[b])


def test_deep_identifiers(x64):
    seed = _hash.seed_words(jax.random.key(0))
    a = _hash.node_normals(seed, 41, jnp.int64(2**39 + 5), 2, (3,), jnp.float64, 40)
    b = _hash.node_normals(seed, 41, jnp.int64(5), 2, (3,), jnp.float64, 40)
    assert a.shape == (2, 3) and not np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("levy", ["increment", "space-time-time"])
@pytest.mark.parametrize("shape", [(), (3,)])
def test_grid_batched_draw_matches_single_node_draws(dtype, levy, shape):
    """The grid's batched draw (hash words kept apart, put in element order after a one-trip
    loop) gives bitwise the normals of each node drawn alone, under vmap over trees too."""
    from sdekit.brownian import BrownianTree, _grid

    tags = jnp.asarray([0, 1, 2, 2, 5, 11, 11], jnp.int32)
    indices = jnp.asarray([0, 0, 0, 1, 9, 3, 1023], jnp.int32)

    def both(key):
        tree = BrownianTree(key, 0.0, 1.0, shape=shape, tol=2.0**-10, levy=levy, dtype=dtype)
        ids = _grid.node_ids(tree.depth, tags, indices)
        batched = jnp.moveaxis(_grid.draw_nodes(tree.spec, ids)[0], 0, 1)  # (n, len) -> (len, n)
        single = jax.vmap(lambda g, i: _hash.node_normals(tree.spec.seeds[0], g, i, tree.spec.n, shape, dtype, tree.depth))(
            tags, indices
        )
        return batched, single

    batched, single = jax.jit(jax.vmap(both))(jax.random.split(jax.random.key(4), 3))
    assert batched.shape == (3, 7, {"increment": 1, "space-time-time": 3}[levy], *shape)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(single))


def _words(seed, count):
    ident = jnp.full((count,), (1 << 2) | 2, jnp.uint32)  # node (tag 3, index 2), packed
    return [np.asarray(w) for w in _hash.threefry2x32(seed[0], seed[1], ident, jnp.arange(count, dtype=jnp.uint32))]


def test_float32_element_order():
    """float32: piece c of element j of row r (the shape's leading axis) takes the top 24 bits of
    the first word of counter r * n * size + c * size + j, the bits on top of float64's."""
    seed = _hash.seed_words(jax.random.key(1))
    n, rows, size = 2, 3, 2
    u = np.asarray(_hash.node_uniforms(seed, 3, 2, n, (rows, size), jnp.float32, 10))  # (n, rows, size)
    w0 = _words(seed, rows * n * size)[0]
    expected = np.empty((n, rows, size), np.float32)
    for c in range(n):
        for r in range(rows):
            for j in range(size):
                w = w0[r * n * size + c * size + j]
                expected[c, r, j] = np.float32(2 * int(w >> 8) + 1 - 2**24) * np.float32(2.0**-24)
    np.testing.assert_array_equal(u, expected)


@pytest.mark.parametrize("levy", ["increment", "space-time", "space-time-time"])
def test_a_float32_path_is_the_float64_path_rounded(x64, levy):
    """One key, two dtypes: the same path, to float32 rounding (both read the same counters)."""
    trees = [BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(5, 3), tol=2.0**-12, levy=levy, dtype=d)
             for d in (jnp.float32, jnp.float64)]
    grid = jnp.linspace(0.0, 1.0, 17)
    for query in (lambda t: t.increment(0.1, 0.7), lambda t: t.grid_increments(grid.astype(t.dtype))):
        low, high = (query(t) for t in trees)
        for field in ("W", "H", "K"):
            if getattr(high, field) is not None:
                np.testing.assert_allclose(getattr(low, field), getattr(high, field), rtol=2e-5, atol=2e-6)


def test_float64_element_order(x64):
    """float64: piece c of row r (one element per row here) takes counter r * n + c (53 bits of
    its two words)."""
    seed = _hash.seed_words(jax.random.key(1))
    u = np.asarray(_hash.node_uniforms(seed, 3, 2, 3, (2,), jnp.float64, 10))  # (3, 2)
    w0, w1 = (w.astype(np.uint64) for w in _words(seed, 6))
    bits = (w0 << np.uint64(21)) | (w1 >> np.uint64(11))  # 53 bits, the first word's on top
    expected = (2 * bits.astype(np.int64) + (1 - 2**53)).astype(np.float64) * 2.0**-53
    np.testing.assert_array_equal(u, expected.reshape(2, 3).T)


@pytest.mark.parametrize("levy", ["increment", "space-time", "space-time-time"])
def test_an_elements_draws_do_not_depend_on_the_array_size(dtype, levy):
    """The first rows of a batch of 3 and of a batch of 8 get bitwise the same normals from every
    node (through the descent and the grid build's batched draw), for every number of pieces."""
    from sdekit.brownian import BrownianTree, _grid

    tags = jnp.asarray([0, 1, 2, 11], jnp.int32)
    indices = jnp.asarray([0, 0, 1, 1023], jnp.int32)
    draws = []
    for rows in (3, 8):
        tree = BrownianTree(jax.random.key(2), 0.0, 1.0, shape=(rows, 2), tol=2.0**-10, levy=levy, dtype=dtype)
        batched = _grid.draw_nodes(tree.spec, _grid.node_ids(tree.depth, tags, indices))[0]  # (n, nodes, rows, 2)
        single = jax.vmap(lambda g, i: _hash.node_normals(tree.spec.seeds[0], g, i, tree.spec.n, (rows, 2), dtype,
                                                          tree.depth))(tags, indices)  # (nodes, n, rows, 2)
        np.testing.assert_array_equal(np.asarray(batched), np.moveaxis(np.asarray(single), 1, 0))
        draws.append(np.asarray(batched))
    np.testing.assert_array_equal(draws[0], draws[1][:, :, :3])


def test_seed_words_are_a_threefry_keys_data_and_random_bits_otherwise():
    """A Threefry key (typed or raw) seeds the node hash with its own data, as it keys
    jax.random's draws; an rbg key falls back to jax.random.bits; distinct keys under vmap give
    distinct seeds."""
    for seed in range(4):
        key = jax.random.key(seed)
        np.testing.assert_array_equal(_hash.seed_words(key), jax.random.key_data(key))
        np.testing.assert_array_equal(_hash.seed_words(jax.random.PRNGKey(seed)), jax.random.PRNGKey(seed))
        rbg = jax.random.key(seed, impl="rbg")
        np.testing.assert_array_equal(_hash.seed_words(rbg), jax.random.bits(rbg, (2,), jnp.uint32))
        assert _hash.seed_words(rbg).shape == (2,) and _hash.seed_words(rbg).dtype == jnp.uint32
    keys = jax.random.split(jax.random.key(7), 5)
    got = jax.jit(jax.vmap(_hash.seed_words))(keys)
    np.testing.assert_array_equal(got, jax.random.key_data(keys))
    assert len({tuple(np.asarray(g)) for g in got}) == 5


def test_deep_tree_grid_draws_unpacked_identifiers(x64):
    """Past `PACKED_DEPTH` node identifiers do not fit one word: the grid's draw takes the
    (tag, index) route, and still gives the cursor's increments (which hash the same way)."""
    from sdekit.brownian import BrownianTree

    tree = BrownianTree(jax.random.key(8), 0.0, 1.0, shape=(2,), tol=2.0**-34, levy="space-time")
    assert tree.depth > _hash.PACKED_DEPTH
    ts = jnp.asarray([0.0, 0.1, 0.1 + 2.0**-33, 0.5, 0.9, 1.0])
    grid = tree.grid_increments(ts)
    for i in range(ts.shape[0] - 1):
        one = tree.increment(ts[i], ts[i + 1])
        np.testing.assert_allclose(grid.W[i], one.W, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(grid.H[i], one.H, rtol=1e-9, atol=1e-14)
