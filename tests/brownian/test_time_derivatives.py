"""Derivatives in time (issue #18, item 1): a Brownian path is not differentiable in time, so every
query's random parts (W, H, K, A, the cursor) have derivative exactly zero in the query times, the
grid and the tree's t0/t1, in forward and reverse mode, under jit and vmap; `dt` keeps its
derivative. (Differentiating the bridge formulas gave NaN at dyadic times and at the ends, and
reverse mode failed through the grid build's loops.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb

# 0.5 and 0.25 are leaf (dyadic) boundaries, 1.0 the tree's end, 0.3 inside a leaf.
TIMES = [0.25, 0.3, 0.5, 1.0]


def _tree(levy="space-time-time", area=False, shape=(2,)):
    return skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=shape, tol=2**-8, levy=levy, area=area)


def _random(inc):
    return [x for x in (inc.W, inc.H, inc.K, inc.A) if x is not None]


def _assert_zero(tangents):
    for x in jax.tree.leaves(tangents):
        x = np.asarray(x)
        if x.dtype == jax.dtypes.float0:  # tangents of integer and boolean parts: no values
            continue
        assert np.all(np.isfinite(x)) and np.all(x == 0), x


def _total(xs):
    return sum(jnp.sum(x) for x in xs)


@pytest.mark.parametrize("levy", ["increment", "space-time", "space-time-time"])
def test_increment_has_zero_time_derivatives(dtype, levy):
    tree = _tree(levy)
    grad = jax.grad(lambda s, t: _total(_random(tree.increment(s, t))), argnums=(0, 1))
    for t in TIMES:
        _assert_zero(grad(0.0, t))
        _assert_zero(jax.jit(grad)(0.0, t))
        _, tangent = jax.jvp(lambda s, t: tree.increment(s, t), (0.1, t), (1.0, 1.0))
        _assert_zero(_random(tangent))
        # dt is deterministic: d(t - s) = dt - ds.
        assert float(jax.grad(lambda t: tree.increment(0.1, t).dt)(t)) == 1.0
        assert float(jax.grad(lambda s: tree.increment(s, t).dt)(0.1)) == -1.0


def test_vmapped_and_jitted_gradients_are_zero():
    tree = _tree()
    grads = jax.jit(jax.vmap(jax.grad(lambda t: _total(_random(tree.increment(0.0, t))))))(jnp.asarray(TIMES))
    _assert_zero(grads)
    keys = jax.random.split(jax.random.key(1), 3)
    per_key = jax.vmap(lambda k, t: jax.grad(lambda t: skb.BrownianTree(k, 0.0, 1.0, shape=(), tol=2**-8)
                                                 .increment(0.0, t).W)(t))(keys, jnp.asarray([0.5, 0.5, 1.0]))
    _assert_zero(per_key)


def test_cursor_evaluate_and_reversed_queries_have_zero_time_derivatives():
    tree = _tree()

    def sequential(t):
        cur = tree.cursor()
        first, cur = tree.increment(0.0, t / 2, cursor=cur)
        second, cur = tree.increment(t / 2, t, cursor=cur)
        floats = [x for x in jax.tree.leaves(cur) if jnp.issubdtype(x.dtype, jnp.floating)]
        return _total(_random(first) + _random(second) + floats)

    for t in TIMES:
        _assert_zero(jax.grad(sequential)(t))
        _assert_zero(jax.grad(lambda t: jnp.sum(tree.evaluate(t)))(t))
        _assert_zero(jax.grad(lambda t: _total(_random(tree.reversed_increment(t, 0.0))))(t))
        assert float(jax.grad(lambda t: tree.reversed_increment(t, 0.0).dt)(t)) == -1.0
    _, tangent = jax.jvp(lambda t: tree.increment(0.0, t, cursor=tree.cursor()), (0.5,), (1.0,))
    _assert_zero([tangent[0].W, tangent[0].H, tangent[0].K, jax.tree.leaves(tangent[1])])


def test_grid_increments_have_zero_derivatives_in_the_grid(dtype):
    tree = _tree()
    ts = jnp.asarray([0.0, 0.25, 0.3, 0.5, 0.5, 1.0], tree.t0.dtype)
    _assert_zero(jax.grad(lambda ts: _total(_random(tree.grid_increments(ts))))(ts))
    _assert_zero(jax.jit(jax.grad(lambda ts: _total(_random(tree.grid_increments(ts)))))(ts))
    _, tangent = jax.jvp(tree.grid_increments, (ts,), (jnp.ones_like(ts),))
    _assert_zero(_random(tangent))
    # dt = ts[1:] - ts[:-1] keeps its derivative.
    weights = jnp.arange(1.0, 6.0, dtype=ts.dtype)
    grad = jax.grad(lambda ts: jnp.sum(weights * tree.grid_increments(ts).dt))(ts)
    np.testing.assert_array_equal(grad, jnp.concatenate([-weights, jnp.zeros(1, ts.dtype)])
                                  + jnp.concatenate([jnp.zeros(1, ts.dtype), weights]))


def test_grid_of_trees_vmapped_over_keys_has_zero_derivatives():
    """The batching rule's build (trees vmapped over their keys) too."""
    ts = jnp.linspace(0.0, 1.0, 5)

    def paths(ts):
        keys = jax.random.split(jax.random.key(2), 3)
        return jax.vmap(lambda k: skb.BrownianTree(k, 0.0, 1.0, shape=(), tol=2**-8, levy="space-time")
                        .grid_increments(ts))(keys)

    _assert_zero(jax.grad(lambda ts: _total(_random(paths(ts))))(ts))
    _, tangent = jax.jvp(paths, (ts,), (jnp.ones_like(ts),))
    _assert_zero(_random(tangent))


def test_area_has_zero_time_derivatives():
    tree = _tree("space-time", area=True)
    for t in TIMES:
        _assert_zero(jax.grad(lambda t: jnp.sum(tree.increment(0.1, t).A))(t))
        _assert_zero(jax.grad(lambda t: jnp.sum(tree.grid_increments(jnp.stack([jnp.zeros_like(t), t])).A))(t))
    _assert_zero(jax.grad(lambda s: jnp.sum(tree.area_normals(s)))(0.5))


def test_traced_interval_has_zero_derivatives():
    """The tree's own t0 and t1, traced and differentiated (depth given)."""

    def w(t0, t1):
        tree = skb.BrownianTree(jax.random.key(3), t0, t1, shape=(2,), tol=2**-8, depth=8, levy="space-time")
        grid = tree.grid_increments(jnp.linspace(t0, t1, 5))
        return _total(_random(tree.increment(t0, 0.5)) + _random(grid))

    _assert_zero(jax.grad(w, argnums=(0, 1))(0.0, 1.0))
    _assert_zero(jax.jit(jax.grad(w, argnums=(0, 1)))(0.0, 1.0))
