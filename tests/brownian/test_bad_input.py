"""Bad input: clear errors at construction and for concrete queries; NaN or raise for
traced ones."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(tol=0.0), ValueError, "tol must be positive"),
        (dict(tol=-1.0), ValueError, "tol must be positive"),
        (dict(tol=1.0), ValueError, "smaller than t1 - t0"),
        (dict(tol=float("nan")), ValueError, "tol must be positive"),
        (dict(levy="space-space"), ValueError, "levy must be one of"),
        (dict(shape=(-1,)), ValueError, "non-negative"),
        (dict(shape=[2.5]), TypeError, "tuple of ints or a pytree"),
        (dict(shape=jax.ShapeDtypeStruct((2,), jnp.int32)), TypeError, "floating dtype"),
        (dict(dtype=jnp.int32), TypeError, "floating dtype"),
        (dict(dtype=jnp.float64), ValueError, "jax_enable_x64 is off"),
        (dict(on_error="ignore"), ValueError, "on_error"),
    ],
)
def test_construction_errors(kwargs, exc, match):
    args = dict(shape=(2,), tol=0.1) | kwargs
    with pytest.raises(exc, match=match):
        skb.BrownianTree(KEY, 0.0, 1.0, **args)


def test_interval_and_key_errors():
    with pytest.raises(ValueError, match="t0 < t1"):
        skb.BrownianTree(KEY, 1.0, 1.0, shape=(), tol=0.1)
    with pytest.raises(TypeError, match="PRNG key"):
        skb.BrownianTree(3, 0.0, 1.0, shape=(), tol=0.1)
    with pytest.raises(ValueError, match="single PRNG key"):
        skb.BrownianTree(jax.random.split(KEY, 2), 0.0, 1.0, shape=(), tol=0.1)
    with pytest.raises(ValueError, match="conflicts"):
        skb.BrownianTree(KEY, 0.0, 1.0, shape=jax.ShapeDtypeStruct((2,), jnp.float32),
                         tol=0.1, dtype=jnp.float16)
    with pytest.raises(TypeError, match="pass depth="):
        jax.jit(lambda t1: skb.BrownianTree(KEY, 0.0, t1, shape=(), tol=0.1).t1)(1.0)
    with pytest.raises(ValueError, match="limit"):
        skb.BrownianTree(KEY, 0.0, 1.0, shape=(), tol=1e-12)


def test_concrete_query_errors():
    tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.01, levy="space-time")
    with pytest.raises(ValueError, match="s <= t"):
        tree.increment(0.6, 0.5)
    with pytest.raises(ValueError, match="outside the tree's interval"):
        tree.increment(0.5, 1.2)
    with pytest.raises(ValueError, match="outside the tree's interval"):
        tree.evaluate(-0.1)
    with pytest.raises(ValueError, match="NaN"):
        tree.increment(float("nan"), 0.5)
    with pytest.raises(ValueError, match="s <= t"):
        tree.grid_increments(jnp.asarray([0.0, 0.5, 0.4]))
    with pytest.raises(ValueError, match="scalar times"):
        tree.increment(jnp.zeros(2), jnp.ones(2))
    with pytest.raises(ValueError, match="1-d"):
        tree.grid_increments(jnp.zeros((2, 2)))


BAD = [(0.6, 0.5), (0.5, 1.2), (-0.5, 0.1), (np.nan, 0.3)]  # s > t, outside [t0, t1], NaN


def test_traced_bad_queries_raise_by_default():
    """Issue #18, item 7: under jit a query outside [t0, t1] (or s > t, or a NaN time) raises at
    run time by default, as other traced bad input does (it returned NaN silently before)."""
    tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.01, levy="space-time")
    assert tree.on_error == "raise"
    f = jax.jit(lambda s, t: tree.increment(s, t))
    assert np.all(np.isfinite(f(0.2, 0.3).W))
    for s, t in BAD:
        with pytest.raises(Exception, match="Invalid BrownianTree query"):
            jax.block_until_ready(f(s, t))
    calls = [
        lambda t: tree.evaluate(t),
        lambda t: tree.increment(0.1, t, cursor=tree.cursor())[0].W,
        lambda t: tree.grid_increments(jnp.stack([jnp.zeros_like(t), t / 2, t])).W,
        lambda t: jax.vmap(lambda u: tree.increment(0.0, u).W)(jnp.stack([t / 2, t])),  # one bad lane
    ]
    for call in calls:
        assert np.all(np.isfinite(jax.jit(call)(0.9)))
        with pytest.raises(Exception, match="Invalid BrownianTree query"):
            jax.block_until_ready(jax.jit(call)(1.5))


def test_traced_bad_area_query_raises_by_default():
    tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.1, levy="space-time", area=True)
    with pytest.raises(Exception, match="Invalid BrownianTree query"):
        jax.block_until_ready(jax.jit(lambda s: tree.increment(s, 0.9).A)(jnp.asarray(2.0)))


@pytest.mark.parametrize("opt_in", ["constructor", "with_on_error"])
def test_traced_queries_nan_opt_in(opt_in):
    """`on_error="nan"` (or `with_on_error("nan")`): NaN for bad queries, only on a grid's bad
    steps, and no error."""
    if opt_in == "constructor":
        tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.01, levy="space-time", on_error="nan")
    else:
        tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.01, levy="space-time").with_on_error("nan")
    f = jax.jit(lambda s, t: tree.increment(s, t))
    for s, t in BAD:
        inc = f(s, t)
        assert np.all(np.isnan(inc.W)) and np.all(np.isnan(inc.H))
    assert np.all(np.isfinite(f(0.2, 0.3).W))
    g = jax.jit(lambda ts: tree.grid_increments(ts))(jnp.asarray([0.0, 0.5, 0.4, 0.9]))
    assert np.all(np.isnan(g.W[1])) and np.all(np.isfinite(g.W[0])) and np.all(np.isfinite(g.W[2]))


def test_with_on_error_keeps_the_path():
    tree = skb.BrownianTree(KEY, 0.0, 1.0, shape=(2,), tol=0.01, levy="space-time")
    nan_tree = tree.with_on_error("nan")
    assert nan_tree.on_error == "nan" and tree.on_error == "raise" and tree.with_on_error("raise") is tree
    assert bool((nan_tree.increment(0.2, 0.7).W == tree.increment(0.2, 0.7).W).all())
    with pytest.raises(ValueError, match="on_error"):
        tree.with_on_error("ignore")
