"""The fusion barrier (`sdekit._once`) and the walk's batch bound (`sdekit._batch.batch_min`)."""

import jax
import jax.numpy as jnp
import numpy as np

from sdekit._once import ONCE_MAX_ELEMENTS, computed_once_differentiable, materialised, opaque_word
from sdekit._batch import batch_min


def _f(inputs):
    x, p = inputs
    return jnp.sin(3.0 * x) * p + x**3, jnp.cos(x * p)


def _once(x, p):
    return computed_once_differentiable(_f, (x, p), opaque_word(x))


def test_values_and_gradients_match_the_plain_function():
    x, p = jnp.linspace(-1.0, 1.0, 5), jnp.asarray(0.7)
    for a, b in zip(_once(x, p), _f((x, p))):
        np.testing.assert_allclose(a, b, rtol=1e-6)

    def loss(fn, x, p):
        y, z = fn(x, p)
        return jnp.sum(y**2) + jnp.sum(z)

    g_once = jax.grad(lambda x, p: loss(_once, x, p), argnums=(0, 1))(x, p)
    g_plain = jax.grad(lambda x, p: loss(lambda a, b: _f((a, b)), x, p), argnums=(0, 1))(x, p)
    for a, b in zip(g_once, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # Against central differences in p, so that a wrong (e.g. zero) JVP cannot pass.
    eps = 1e-3
    fd = (loss(_once, x, p + eps) - loss(_once, x, p - eps)) / (2 * eps)
    np.testing.assert_allclose(g_once[1], fd, rtol=1e-3)


def test_values_under_vmap_and_jit():
    xs = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    got = jax.jit(jax.vmap(lambda x: _once(x, 0.5)))(xs)
    want = jax.vmap(lambda x: _f((x, 0.5)))(xs)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_barrier_is_a_loop_only_for_small_outputs():
    small = jax.make_jaxpr(lambda x: _once(x, 0.5))(jnp.zeros(3))
    large = jax.make_jaxpr(lambda x: _once(x, 0.5))(jnp.zeros(ONCE_MAX_ELEMENTS))
    assert "while" in str(small)
    assert "while" not in str(large)


def test_batch_min_is_identity_alone_and_the_batch_minimum_under_vmap():
    assert int(batch_min(jnp.asarray(5))) == 5
    x = jnp.array([7, 3, 9, 4])
    out = jax.vmap(batch_min)(x)
    np.testing.assert_array_equal(out, [3, 3, 3, 3])
    nested = jax.vmap(jax.vmap(batch_min))(jnp.array([[7, 3], [9, 4]]))
    np.testing.assert_array_equal(nested, [[3, 3], [3, 3]])


def test_materialised_is_bitwise_the_identity_and_a_buffer_of_its_own():
    """Exact for every uint32 and int32 (the whole range, signs included) and for floats across
    the normal range; under jit, the seed-like value it guards is computed in a kernel of its own
    (the division at its root), not inside the kernel that reads it broadcast."""
    ints = jnp.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 123456789], jnp.uint32)
    signed = jnp.array([-(2**31), -1, 0, 1, 2**31 - 1], jnp.int32)
    floats = jnp.array([-3.5, -1e-30, 0.0, 1e-30, 2.0**-24, 7.25e30], jnp.float32)
    word = jnp.asarray(0xDEADBEEF, jnp.uint32)
    got = jax.jit(materialised)((ints, signed, floats), word)
    for a, b in zip(got, (ints, signed, floats)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    def f(seed, word):
        mixed = materialised(seed * jnp.uint32(2654435761) ^ (seed >> 7), word)
        return (mixed[:, None] + jnp.arange(1000, dtype=jnp.uint32)[None, :]).sum()

    hlo = jax.jit(f).lower(jnp.arange(8, dtype=jnp.uint32), word).compile().as_text()
    # The hash (its multiply) lives only in the fusion that ends in the division.
    fused = [c for c in hlo.split("\n%") if " multiply(" in c]
    assert fused and all(" divide(" in c for c in fused)
