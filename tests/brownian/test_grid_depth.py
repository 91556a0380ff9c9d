"""The grid build on deep trees (issue #18, item 9): past `ROLLED_FROM` levels below the full ones
its per-point loops are rolled, so its program stops growing with the depth (a `tol` of about the
step squared, as the path-consistent area wants, made compile time grow by ~0.1 s a level), and
the values are still the tree's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb
from sdekit.brownian import _grid


def _program_size(tree, ts) -> int:
    """StableHLO operations of the jitted grid build (the build is one primitive in a jaxpr)."""
    text = jax.jit(lambda ts: tree.grid_increments(ts)).lower(ts).as_text()
    return sum(1 for line in text.splitlines() if " = stablehlo." in line)


def test_deep_grid_program_does_not_grow_with_depth():
    ts = jnp.linspace(0.0, 1.0, 65)  # 7 full levels
    sizes = [_program_size(skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2.0**-d,
                                            levy="space-time"), ts)
             for d in (7 + _grid.ROLLED_FROM, 7 + 2 * _grid.ROLLED_FROM)]
    assert sizes[0] == sizes[1], sizes


@pytest.mark.parametrize("levy", ["increment", "space-time", "space-time-time"])
def test_deep_grid_equals_tree(dtype, levy):
    """A uniform grid and an uneven one with steps inside one leaf, 9 and 11 deep levels. Both
    grids have 17 times, so one jitted build (and one jitted vmap of single queries) serves both."""
    tree = skb.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(3,), tol=2.0**-14, levy=levy)
    tdt = tree.t0.dtype
    uneven = np.sort(np.concatenate([[0.0, 1.0, 0.25, 0.25 + 2.0**-16], np.random.default_rng(0).uniform(0, 1, 13)]))
    both = jax.jit(lambda ts: (tree.grid_increments(ts), jax.vmap(tree.increment)(ts[:-1], ts[1:])))
    for ts in (jnp.linspace(0.0, 1.0, 17, dtype=tdt), jnp.asarray(uneven, tdt)):
        grid, single = both(ts)
        eps = float(jnp.finfo(dtype).eps)
        for a, b in zip((grid.W, grid.H, grid.K), (single.W, single.H, single.K)):
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=0, atol=8 * eps * float(jnp.max(jnp.abs(b))))


def test_deep_grid_vmapped_over_keys_equals_each_tree():
    """The batching rule's build (trees vmapped over their keys, path axis inside), rolled."""
    keys = jax.random.split(jax.random.key(2), 4)
    ts = jnp.linspace(0.0, 1.0, 9)
    make = lambda key: skb.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2.0**-12, levy="space-time")  # noqa: E731
    batched = jax.jit(jax.vmap(lambda k: make(k).grid_increments(ts)))(keys)
    for i, key in enumerate(keys):
        single = make(key).grid_increments(ts)
        for a, b in ((batched.W[i], single.W), (batched.H[i], single.H)):
            np.testing.assert_allclose(a, b, rtol=0, atol=8 * float(jnp.finfo(jnp.float32).eps) * float(jnp.max(jnp.abs(b))))
