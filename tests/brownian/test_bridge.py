"""The Gaussian rules of `_bridge` against exact conditioning, computed independently.

The exact law: the pieces of [0, a] and [a, 1] are independent with diagonal
covariances (h, h^3/12, h^5/720) for (W, Hbar, Kbar); the whole is their image under
Chen's relation. Conditioning that 6-dim Gaussian on the whole gives the exact mean map
and covariance, which the rules (linear in the normals) must reproduce exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdekit.brownian import _bridge


def _chen_matrices(a, b):
    A = np.array([[1, 0, 0], [b / 2, 1, 0], [-(a - b) * b / 12, b / 2, 1]])
    B = np.array([[1, 0, 0], [-a / 2, 1, 0], [(a - b) * a / 12, -a / 2, 1]])
    return A, B


def _exact(a, n):
    """Mean map (pieces from whole) and covariance of normalised (left, right) pieces."""
    b = 1.0 - a
    A, B = _chen_matrices(a, b)
    A, B = A[:n, :n], B[:n, :n]
    var = lambda h: np.diag([h, h**3 / 12, h**5 / 720][:n])  # noqa: E731
    S = np.block([[var(a), np.zeros((n, n))], [np.zeros((n, n)), var(b)]])
    M = np.hstack([A, B])
    G = S @ M.T @ np.linalg.inv(M @ S @ M.T)
    cov = S - G @ M @ S
    norm = np.diag([1, 1 / a, 1 / a**2][:n] + [1, 1 / b, 1 / b**2][:n])
    whole_norm = np.diag([1, 1, 1][:n])  # h = 1: normalised whole = unnormalised
    return norm @ G @ whole_norm, norm @ cov @ norm


def _ours(rule, a, n):
    """Mean map and covariance of our rule, from its Jacobians (it is linear)."""
    def f(whole, xi):
        left, right = rule(whole, xi, jnp.float64(a))
        return jnp.concatenate([left, right])

    zero = jnp.zeros(n, jnp.float64)
    mean_map = np.asarray(jax.jacobian(f, 0)(zero, zero))
    noise = np.asarray(jax.jacobian(f, 1)(zero, zero))
    return mean_map, noise @ noise.T


def _bridge_rule(whole, xi, a):
    return _bridge.bridge(whole, xi, a, 1.0 - a, jnp.float64(1.0))


def _split_rule(whole, xi, a):
    return _bridge.split(whole, xi, jnp.float64(1.0))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("a", [0.5, 0.3, 0.01, 0.93, 0.999])
def test_bridge_is_exact_conditional_law(x64, n, a):
    mean_ex, cov_ex = _exact(a, n)
    mean, cov = _ours(_bridge_rule, a, n)
    np.testing.assert_allclose(mean, mean_ex, atol=1e-12)
    np.testing.assert_allclose(cov, cov_ex, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_midpoint_split_is_exact_conditional_law(x64, n):
    mean_ex, cov_ex = _exact(0.5, n)
    mean, cov = _ours(_split_rule, 0.5, n)
    np.testing.assert_allclose(mean, mean_ex, atol=1e-12)
    np.testing.assert_allclose(cov, cov_ex, atol=1e-12)


def test_wrong_rule_is_detected(x64):
    """Negative control: scaling one noise coefficient by sqrt(1.05) breaks the check."""
    def wrong(whole, xi, a):
        return _bridge_rule(whole, xi.at[1].multiply(np.sqrt(1.05)), a)

    _, cov_ex = _exact(0.3, 3)
    _, cov = _ours(wrong, 0.3, 3)
    assert np.max(np.abs(cov - cov_ex)) > 1e-4


@pytest.mark.parametrize("n", [1, 2, 3])
def test_chen_recombines_bridge_and_split(x64, n):
    rng = np.random.default_rng(0)
    for a in [0.5, 0.2, 1e-6, 0.999999]:
        whole = jnp.asarray(rng.normal(size=(n, 5)))
        xi = jnp.asarray(rng.normal(size=(n, 5)))
        left, right = _bridge.bridge(whole, xi, jnp.float64(a), jnp.float64(1 - a), 0.7)
        np.testing.assert_allclose(_bridge.chen(left, right, a, 1 - a), whole, atol=1e-12)
        back = _bridge.unchen(whole, left, jnp.float64(a), jnp.float64(1 - a))
        if a < 0.99:
            np.testing.assert_allclose(back, right, atol=1e-9)
    left, right = _bridge.split(whole, xi, 0.7)
    np.testing.assert_allclose(_bridge.chen(left, right, 0.5, 0.5), whole, atol=1e-12)


def test_bridge_endpoints(x64):
    whole = jnp.asarray([[1.3], [0.2], [-0.05]])
    xi = jnp.ones((3, 1))
    left, right = _bridge.bridge(whole, xi, jnp.float64(0.0), jnp.float64(1.0), 1.0)
    np.testing.assert_allclose(left, 0.0, atol=1e-15)
    np.testing.assert_allclose(right, whole, atol=1e-15)


def test_short_side_has_no_cancellation():
    """float32: the short side of a bridge is accurate to a few ulps of its own size."""
    rng = np.random.default_rng(1)
    whole = rng.normal(size=(3, 1000))
    xi = rng.normal(size=(3, 1000))
    b = 1e-5
    with jax.enable_x64(True):
        _, ref = _bridge.bridge(jnp.asarray(whole), jnp.asarray(xi), 1 - b, b, 1.0)
        ref = np.asarray(ref)
    _, got = _bridge.bridge(
        jnp.asarray(whole, jnp.float32), jnp.asarray(xi, jnp.float32),
        jnp.float32(1 - b), jnp.float32(b), jnp.float32(1.0),
    )
    scale = np.sqrt(b)
    assert np.max(np.abs(np.asarray(got) - ref)) / scale < 1e-5
