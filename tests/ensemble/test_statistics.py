"""`sk.ensemble.mean/variance/quantile` on one device against NumPy (the sharded versions run in
tests/ensemble/test_devices.py), and the ensemble's law: moments of Euler-Maruyama GBM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


@pytest.mark.parametrize("shape", [(101,), (64, 3, 2)])
def test_reductions_match_numpy(dtype, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype) * 3 + 1
    x[5] = x[7]  # ties
    x[:3] = -0.0
    q = np.array([0.0, 0.013, 0.25, 0.5, 0.9, 1.0])
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(sk.ensemble.mean(jnp.asarray(x)), x.mean(0), rtol=50 * eps, atol=50 * eps)
    np.testing.assert_allclose(sk.ensemble.variance(jnp.asarray(x), ddof=1), x.var(0, ddof=1), rtol=50 * eps)
    got = sk.ensemble.quantile(jnp.asarray(x), jnp.asarray(q, dtype))
    np.testing.assert_allclose(got, np.quantile(x, q.astype(dtype), axis=0), rtol=4 * eps, atol=4 * eps)
    exact = sk.ensemble.quantile(jnp.asarray(x), jnp.asarray([0.0, 1.0, 0.5 if shape[0] % 2 else 0.0], dtype))
    assert (exact[0] == x.min(0)).all() and (exact[1] == x.max(0)).all()  # order statistics exactly


def test_quantile_of_a_column_with_nan_is_nan():
    x = jnp.array([[1.0, 2.0], [jnp.nan, 3.0], [0.0, 4.0]])
    out = sk.ensemble.quantile(x, jnp.array(0.5))
    assert jnp.isnan(out[0]) and out[1] == 3.0


@pytest.mark.slow
def test_gbm_moments_of_the_euler_maruyama_scheme(x64):
    """Mean and variance at t = 1 against the discrete scheme's exact moments:
    E[y_n] = (1 + mu h)^n, E[y_n^2] = ((1 + mu h)^2 + sigma^2 h)^n; 24,576 paths in chunks,
    reduced with sk.ensemble (a wrong variance by 5% is a > 4 standard-error miss)."""
    mu, sigma, n_paths, steps = 0.5, 0.3, 24_576, 16
    gbm = sk.SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal")
    sol = sk.sample_paths(gbm, sk.solvers.euler_maruyama(), jnp.ones(()), jnp.array([0.0, 1.0]), jax.random.key(11),
                          n_paths, substeps=steps, batch_size=4096)
    h, a = 1 / steps, 1 + mu / steps
    m1, m2 = a**steps, (a**2 + sigma**2 * h) ** steps
    m3, m4 = (a**3 + 3 * a * sigma**2 * h) ** steps, (a**4 + 6 * a**2 * sigma**2 * h + 3 * sigma**4 * h**2) ** steps
    var = m2 - m1**2
    central4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    mean, variance = sk.ensemble.mean(sol.ys[:, -1]), sk.ensemble.variance(sol.ys[:, -1], ddof=1)
    assert abs(mean - m1) < 4 * np.sqrt(var / n_paths)
    var_se = np.sqrt((central4 - var**2) / n_paths)
    assert abs(variance - var) < 4 * var_se and 4 * var_se < 0.05 * var
