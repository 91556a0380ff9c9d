"""The fusion barrier (`sdekit._once`) and the walk's batch bound (`sdekit._batch.batch_min`)."""

import jax
import jax.numpy as jnp
import numpy as np

from sdekit._once import ONCE_MAX_ELEMENTS, computed_once_differentiable, opaque_word
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


def test_no_barrier_around_a_function_that_runs_loops_of_its_own():
    """A loop's results are buffers already (an implicit solver's Newton iterations): the
    barrier would only add a one-trip loop, its copies and kernels."""

    def newton_like(inputs):
        x, p = inputs
        root = jax.lax.fori_loop(0, jnp.int32(8) + (p > 9).astype(jnp.int32), lambda _, z: z - (z**2 - p) / (2 * z), x)
        return root * 2.0, jnp.cos(root)

    wrapped = jax.jit(newton_like)  # a loop inside a call is found too
    barrier = jax.make_jaxpr(lambda x: computed_once_differentiable(wrapped, (x, jnp.asarray(2.0)), opaque_word(x)))(jnp.ones(3))
    plain = jax.make_jaxpr(lambda x: newton_like((x, jnp.asarray(2.0))))(jnp.ones(3))
    assert str(barrier).count("while") == str(plain).count("while") == 1
    got = computed_once_differentiable(wrapped, (jnp.ones(3), jnp.asarray(2.0)), opaque_word(jnp.ones(3)))
    np.testing.assert_allclose(got[0], 2 * np.sqrt(2.0) * np.ones(3), rtol=1e-6)


def test_batch_min_is_identity_alone_and_the_batch_minimum_under_vmap():
    assert int(batch_min(jnp.asarray(5))) == 5
    x = jnp.array([7, 3, 9, 4])
    out = jax.vmap(batch_min)(x)
    np.testing.assert_array_equal(out, [3, 3, 3, 3])
    nested = jax.vmap(jax.vmap(batch_min))(jnp.array([[7, 3], [9, 4]]))
    np.testing.assert_array_equal(nested, [[3, 3], [3, 3]])

