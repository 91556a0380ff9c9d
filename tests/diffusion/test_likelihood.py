"""`skd.log_likelihood` against the exact log-density of a Gaussian mixture: exact trace to
1e-3 nats (with the exact prior at t_max), Hutchinson unbiased over 1000 probes, float32 under jit, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd


def _mixture(dtype=float):
    return skd.GaussianMixture(jnp.array([0.3, 0.7], dtype), jnp.array([[-1.0, 0.5], [1.0, 0.0]], dtype),
                               jnp.stack([0.2 * jnp.eye(2, dtype=dtype), jnp.array([[0.3, 0.1], [0.1, 0.2]], dtype)]))


def _exact_prior(gm, sched):
    t = sched.t_max
    return lambda x: gm.log_prob(x, sched.alpha(t), sched.sigma(t))


@pytest.mark.parametrize("make", [skd.VP.linear, skd.EDM], ids=["vp", "edm"])
def test_exact_trace_matches_the_mixture_log_density(make, x64):
    gm, sched = _mixture(), make()
    x0 = gm.sample(jax.random.key(1), 6)
    ll = skd.log_likelihood(gm.model(sched), x0, rtol=1e-7, atol=1e-7, prior_log_prob=_exact_prior(gm, sched))
    exact = gm.log_prob(x0, sched.alpha(sched.t_min), sched.sigma(sched.t_min))
    np.testing.assert_allclose(ll.log_prob, exact, atol=1e-3)
    np.testing.assert_allclose(ll.bits_per_dim, -exact / (2 * np.log(2)), atol=1e-3)
    assert float(jnp.max(jnp.abs(ll.log_prob - exact))) < 1e-5  # far inside the tolerance: the solver's error
    # The default prior N(0, sigma_max^2 I) changes the prior's share only (same solve, cached compile).
    standard = skd.log_likelihood(gm.model(sched), x0, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(standard.log_prob - ll.log_prob, standard.prior_log_prob - ll.prior_log_prob, atol=1e-9)
    assert 1e-5 < float(jnp.max(jnp.abs(standard.log_prob - ll.log_prob))) < 0.05


@pytest.mark.slow
def test_hutchinson_is_unbiased_over_1000_probes(x64):
    gm, sched = _mixture(), skd.VP.linear()
    point = gm.sample(jax.random.key(3), 1)
    x0 = jnp.broadcast_to(point, (1000, 2))  # one probe per row: 1000 independent estimates of one point
    model = gm.model(sched)
    # Against the exact log-density (exact prior at t_max), not a second, exact-trace solve: the
    # solver's own error at rtol 1e-6 (under 1e-5 nats at 1e-7 above) is far below 3 se > 3e-3.
    exact = gm.log_prob(point, sched.alpha(sched.t_min), sched.sigma(sched.t_min))[0]
    est = skd.log_likelihood(model, x0, trace="hutchinson", key=jax.random.key(4), rtol=1e-6, atol=1e-6,
                             prior_log_prob=_exact_prior(gm, sched)).log_prob
    se = float(jnp.std(est)) / np.sqrt(est.shape[0])
    assert se > 1e-3  # the estimator is noisy: the test can tell a bias from it
    assert abs(float(jnp.mean(est)) - float(exact)) < 3 * se, (float(jnp.mean(est)), float(exact), se)


def test_float32_and_jit():
    gm, sched = _mixture(jnp.float32), skd.EDM()
    x0 = gm.sample(jax.random.key(1), 4)
    prior = _exact_prior(gm, sched)
    ll = jax.jit(lambda x: skd.log_likelihood(gm.model(sched), x, rtol=1e-5, atol=1e-5, prior_log_prob=prior))(x0)
    assert ll.log_prob.dtype == jnp.float32 and ll.log_prob.shape == (4,)
    exact = gm.log_prob(x0, 1.0, sched.t_min)
    assert float(jnp.max(jnp.abs(ll.log_prob - exact))) < 1e-2


def test_bad_input():
    gm, sched = _mixture(), skd.VP.linear()
    model, x0 = gm.model(sched), jnp.zeros((2, 2))
    with pytest.raises(ValueError, match="trace must be"):
        skd.log_likelihood(model, x0, trace="jacobian")
    with pytest.raises(ValueError, match="pass key"):
        skd.log_likelihood(model, x0, trace="hutchinson")
    with pytest.raises(ValueError, match="probe must be"):
        skd.log_likelihood(model, x0, trace="hutchinson", key=jax.random.key(0), probe="uniform")
    with pytest.raises(ValueError, match="samples first"):
        skd.log_likelihood(model, jnp.zeros(2))
    with pytest.raises(ValueError, match="t_start < t_end"):
        skd.log_likelihood(model, x0, t_start=1.0, t_end=0.5)
    with pytest.raises(TypeError, match="skd.Model"):
        skd.log_likelihood(lambda x: x, x0)
