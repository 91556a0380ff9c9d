"""Gradient-checking helpers shared by the adjoint tests."""

import jax
import jax.numpy as jnp
import numpy as np


def finite_differences(fn, x, eps=1e-6):
    """Central differences of a scalar function over every element of every leaf of `x`."""
    fn = jax.jit(fn)
    leaves, treedef = jax.tree.flatten(x)
    out = []
    for i, leaf in enumerate(leaves):
        flat = np.asarray(leaf, float).ravel()
        g = np.zeros_like(flat)
        for j in range(flat.size):
            def at(d):
                new = flat.copy()
                new[j] += d
                ls = list(leaves)
                ls[i] = jnp.asarray(new.reshape(np.shape(leaf)))
                return float(fn(jax.tree.unflatten(treedef, ls)))
            g[j] = (at(eps) - at(-eps)) / (2 * eps)
        out.append(g.reshape(np.shape(leaf)))
    return jax.tree.unflatten(treedef, out)


def assert_trees_close(a, b, **kw):
    """`np.testing.assert_allclose` leaf by leaf."""
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw), a, b)
