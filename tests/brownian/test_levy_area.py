"""Space-space Lévy area approximations (Davie, Foster)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.brownian as skb

N_PATHS = 20_000


def test_shape_antisymmetry_and_determinism():
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2, 4), tol=2**-8,
                            levy="space-time")
    inc = tree.increment(0.3, 0.55)
    for method in ("foster", "davie"):
        A = skb.space_space_area(inc, tree.area_normals(0.3), method=method)
        assert A.shape == (2, 4, 4)
        np.testing.assert_array_equal(A, -jnp.swapaxes(A, -1, -2))
        B = skb.space_space_area(inc, tree.area_normals(0.3), method=method)
        np.testing.assert_array_equal(A, B)
    other = tree.area_normals(0.9)
    assert not np.allclose(other, tree.area_normals(0.3))
    A_key = skb.space_space_area(inc, jax.random.key(1))
    assert A_key.shape == (2, 4, 4)


def test_bad_inputs():
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=0.1)
    with pytest.raises(ValueError, match="space-time Lévy area H"):
        skb.space_space_area(tree.increment(0.1, 0.2), jax.random.key(0))
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=0.1, levy="space-time")
    with pytest.raises(ValueError, match="Brownian dimension axis"):
        skb.space_space_area(tree.increment(0.1, 0.2), jax.random.key(0))
    tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=0.1, levy="space-time")
    with pytest.raises(ValueError, match="method"):
        skb.space_space_area(tree.increment(0.1, 0.2), jax.random.key(0), method="exact")


def _sample(method, s=0.2, t=0.45):
    def one(key):
        tree = skb.BrownianTree(key, 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time")
        inc = tree.increment(s, t)
        return inc.W, inc.H, skb.space_space_area(inc, tree.area_normals(s), method=method)

    keys = jax.random.split(jax.random.key(3), N_PATHS)
    return [np.asarray(x, np.float64) for x in jax.jit(jax.vmap(one))(keys)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["foster", "davie"])
def test_area_moments(method):
    h = 0.25
    W, H, A = _sample(method)
    iu = np.triu_indices(3, 1)
    a = A[:, iu[0], iu[1]]  # (N, 3 pairs)
    n = a.shape[0]
    assert np.all(np.abs(a.mean(0)) < 4 * a.std(0) / np.sqrt(n))
    second = a**2
    se = second.std(0) / np.sqrt(n)
    assert np.all(np.abs(second.mean(0) - h**2 / 4) < 4 * se)
    # The residual b = A - (H W - W H) against H_i^2 + H_j^2: Foster's conditional
    # variance h^2/20 + (h/5)(H_i^2 + H_j^2); Davie's constant h^2/12.
    outer = H[:, :, None] * W[:, None, :] - W[:, :, None] * H[:, None, :]
    b2 = ((A - outer)[:, iu[0], iu[1]] ** 2).ravel()
    x = (H[:, iu[0]] ** 2 + H[:, iu[1]] ** 2).ravel()
    slope, intercept = np.polyfit(x, b2, 1)
    if method == "foster":
        assert abs(slope - h / 5) < 0.1 * h / 5 and abs(intercept - h**2 / 20) < 0.1 * h**2 / 20
    else:
        assert abs(slope) < 0.02 * h and abs(intercept - h**2 / 12) < 0.1 * h**2 / 12
    # Uncorrelated with W.
    assert np.all(np.abs([np.corrcoef(a[:, p], W[:, 0])[0, 1] for p in range(3)]) < 4 / np.sqrt(n))


@pytest.mark.slow
def test_constants_against_fine_grid_area():
    """The true Lévy area (from 512 fine steps of the tree, Chen's relation for A) has
    E[b^2 | H] = h^2/20 + (h/5)(H_i^2 + H_j^2), the law Foster's method reproduces."""
    fine = 512

    def one(key):
        tree = skb.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=1 / fine, levy="space-time")
        inc = tree.grid_increments(jnp.linspace(0.0, 1.0, fine + 1))
        path = jnp.cumsum(inc.W, 0) - inc.W  # W at the left end of each step
        area = 0.5 * jnp.sum(path[:, 0] * inc.W[:, 1] - path[:, 1] * inc.W[:, 0])
        whole = tree.increment(0.0, 1.0)
        return whole.W, whole.H, area

    keys = jax.random.split(jax.random.key(4), 4000)
    W, H, area = [np.asarray(x, np.float64) for x in jax.jit(jax.vmap(one))(keys)]
    b = area - (H[:, 0] * W[:, 1] - W[:, 0] * H[:, 1])
    assert abs(np.mean(area**2) - 0.25) < 4 * np.std(area**2) / np.sqrt(len(area))
    slope, intercept = np.polyfit(H[:, 0] ** 2 + H[:, 1] ** 2, b**2, 1)
    assert abs(slope - 0.2) < 0.04 and abs(intercept - 0.05) < 0.01
