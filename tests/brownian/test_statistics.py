"""Statistical battery: moments, conditional laws (KS + pooled variance), negative controls.

Sample sizes: 20,000 paths, so a 5% variance error is about 5 standard errors per
quantity (and far more when pooled), and a wrong bridge coefficient fails the pooled test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import sdekit.brownian as skb
from sdekit.brownian import _bridge

N_PATHS = 20_000
VAR = np.array([1.0, 1 / 12, 1 / 720])


def _keys(seed):
    return jax.random.split(jax.random.key(seed), N_PATHS)


def _chen_np(p1, p2, h1, h2):
    """Chen's relation on normalised (W, H, K) arrays of shape (3, N), in float64."""
    a, b = h1 / (h1 + h2), h2 / (h1 + h2)
    w1, x1, k1 = p1
    w2, x2, k2 = p2
    w = w1 + w2
    hh = a * x1 + b * x2 + 0.5 * (b * w1 - a * w2)
    k = a * a * k1 + b * b * k2 + 0.5 * a * b * (x1 - x2) + (a - b) / 12 * (a * w2 - b * w1)
    return np.stack([w, hh, k])


def _exact_left_law(a):
    """Exact mean map and covariance (h = 1) of the normalised left piece given the whole."""
    b = 1.0 - a
    A = np.array([[1, 0, 0], [b / 2, 1, 0], [-(a - b) * b / 12, b / 2, 1]])
    B = np.array([[1, 0, 0], [-a / 2, 1, 0], [(a - b) * a / 12, -a / 2, 1]])
    var = lambda h: np.diag([h, h**3 / 12, h**5 / 720])  # noqa: E731
    S = np.block([[var(a), np.zeros((3, 3))], [np.zeros((3, 3)), var(b)]])
    M = np.hstack([A, B])
    G = S @ M.T @ np.linalg.inv(M @ S @ M.T)
    cov = (S - G @ M @ S)[:3, :3]
    norm = np.diag([1, 1 / a, 1 / a**2])
    return norm @ G[:3], norm @ cov @ norm


@pytest.mark.slow
def test_moments_of_increments(dtype):
    """Means, variances and cross-covariances of (W, H, K) over random intervals, and
    independence of disjoint intervals, on an interval that is not [0, 1]."""
    t0, t1 = -1.5, 3.7
    intervals = [(t0, t1), (0.1234, 0.9876), (2.0, 2.0 + 0.013), (-1.5, -1.0), (0.9876, 2.5)]

    def sample(key):
        tree = skb.BrownianTree(key, t0, t1, shape=(), tol=2**-8, levy="space-time-time",
                                dtype=dtype)
        out = [tree.increment(s, t) for s, t in intervals]
        return jnp.stack([jnp.stack([o.W, o.H, o.K]) for o in out])

    x = np.asarray(jax.jit(jax.vmap(sample))(_keys(0)), np.float64)  # (N, I, 3)
    n = x.shape[0]
    for i, (s, t) in enumerate(intervals):
        h = t - s
        z = x[:, i] / np.sqrt(h * VAR)  # standardised W, H, K
        assert np.all(np.abs(z.mean(0)) < 4 / np.sqrt(n))
        assert np.all(np.abs(z.var(0) - 1) < 4 * np.sqrt(2 / n))
        corr = np.corrcoef(z.T)
        assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 4 / np.sqrt(n))
        for j in range(3):
            assert scipy.stats.kstest(z[:, j], "norm").pvalue > 1e-4
    # Disjoint intervals (2 and 4 are adjacent) are independent.
    for i, j in [(1, 3), (1, 4), (2, 3)]:
        for c in range(3):
            assert abs(np.corrcoef(x[:, i, c], x[:, j, c])[0, 1]) < 4 / np.sqrt(n)


def _conditional_residuals(dtype, levy_bridge=None, seed=1):
    """Standardised residuals of each query point's left piece given its neighbours, on
    [0, 8.7] with one query per leaf (tol 1.1: depth 3) at non-dyadic positions, queried
    in a permuted order through a cursor."""
    t1 = 8.7
    rng = np.random.default_rng(seed)
    leaf = t1 / 8
    inner = (np.arange(8) + rng.uniform(0.15, 0.85, 8)) * leaf
    ts = np.concatenate([[0.0], inner, [t1]])
    order = rng.permutation(len(ts) - 1)

    def sample(key):
        tree = skb.BrownianTree(key, 0.0, t1, shape=(), tol=1.1, levy="space-time-time",
                                dtype=dtype)
        tt = jnp.asarray(ts, tree.t0.dtype)

        def body(cur, i):
            inc, cur = tree.increment(tt[i], tt[i + 1], cursor=cur)
            return cur, jnp.stack([inc.W, inc.H, inc.K])

        _, out = jax.lax.scan(body, tree.cursor(), jnp.asarray(order))
        return out[jnp.argsort(jnp.asarray(order))]

    pieces = np.asarray(jax.jit(jax.vmap(sample))(_keys(seed)), np.float64)  # (N, I, 3)
    zs = []
    for i in range(len(ts) - 2):
        s, r, u = ts[i], ts[i + 1], ts[i + 2]
        left, right = pieces[:, i].T, pieces[:, i + 1].T
        whole = _chen_np(left, right, r - s, u - r)
        mean_map, cov = _exact_left_law((r - s) / (u - s))
        resid = left - mean_map @ whole
        chol = np.linalg.cholesky((u - s) * cov)
        zs.append(np.linalg.solve(chol, resid))
    return np.stack(zs)  # (triples, 3, N)


def _pooled_variance_z(z):
    m = z.size
    return (np.mean(z**2) - 1) / np.sqrt(2 / m)


@pytest.mark.slow
def test_conditional_law_at_non_dyadic_times(dtype):
    z = _conditional_residuals(dtype)
    n_tests = z.shape[0] * z.shape[1]
    pvals = [scipy.stats.kstest(z[i, c], "norm").pvalue for i in range(z.shape[0]) for c in range(3)]
    assert min(pvals) > 0.01 / n_tests  # Bonferroni
    assert np.mean(pvals) > 0.25
    assert abs(_pooled_variance_z(z)) < 4


def _wrong_variance_bridge(leaf, xi, a, b, sqrt_h):
    return _bridge_orig(leaf, xi * np.sqrt(1.05).astype(xi.dtype), a, b, sqrt_h)


def _wrong_mean_bridge(leaf, xi, a, b, sqrt_h):
    """The H term of the bridge mean dropped (W given W only)."""
    return _bridge_orig(leaf.at[1].set(0.0).at[2].set(0.0), xi, a, b, sqrt_h)


_bridge_orig = _bridge.bridge


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [_wrong_variance_bridge, _wrong_mean_bridge])
def test_negative_controls_fail(monkeypatch, wrong):
    """The same statistics reject a bridge with 5% too much variance, or without H."""
    monkeypatch.setattr(_bridge, "bridge", wrong)
    jax.clear_caches()  # retrace: compiled descents would otherwise keep the right bridge
    try:
        z = _conditional_residuals(jnp.float32, seed=2)
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    n_tests = z.shape[0] * z.shape[1]
    pvals = [scipy.stats.kstest(z[i, c], "norm").pvalue for i in range(z.shape[0]) for c in range(3)]
    assert abs(_pooled_variance_z(z)) > 6 or min(pvals) < 1e-3 / n_tests


def test_chen_relation_exact_on_grid(dtype):
    """Sub-increments recombine into the increment of their union (deterministic)."""
    tree = skb.BrownianTree(jax.random.key(5), 0.0, 1.0, shape=(50,), tol=2**-6,
                            levy="space-time-time", dtype=dtype)
    ts = jnp.asarray([0.11, 0.2, 0.2003, 0.5, 0.77], tree.t0.dtype)
    g = tree.grid_increments(ts)
    acc = np.stack([np.asarray(g.W[0]), np.asarray(g.H[0]), np.asarray(g.K[0])]).astype(np.float64)
    for i in range(1, 4):
        nxt = np.stack([np.asarray(g.W[i]), np.asarray(g.H[i]), np.asarray(g.K[i])]).astype(np.float64)
        acc = _chen_np(acc, nxt, float(ts[i] - ts[0]), float(ts[i + 1] - ts[i]))
    whole = tree.increment(ts[0], ts[-1])
    ref = np.stack([whole.W, whole.H, whole.K]).astype(np.float64)
    tol = 2e-6 if dtype == jnp.float32 else 1e-12
    assert np.max(np.abs(acc - ref)) / np.sqrt(0.66) < tol * 10
