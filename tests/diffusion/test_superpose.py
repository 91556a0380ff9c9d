"""`skd.superpose`: OR of two mixtures samples their union with the mixture's mode weights (to 3
standard errors), AND samples the product's high-density region (against the exact product of
the mixtures), with SDE samplers, an sk SDE solver and an ODE sampler; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd



def _or_pair():
    eye = jnp.eye(2)
    a = skd.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-2.0, 1.0], [-1.0, -1.5]]), 0.1 * jnp.stack([eye, eye]))
    b = skd.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[2.0, 0.0], [1.5, 2.0]]), 0.15 * jnp.stack([eye, eye]))
    return a, b


def _and_pair():
    eye = jnp.eye(2)
    a = skd.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.5, 0.0], [1.0, 0.0]]), 0.25 * jnp.stack([eye, eye]))
    b = skd.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[1.0, 0.5], [1.0, 2.5]]), 0.25 * jnp.stack([eye, eye]))
    return a, b


def _product(a, b):
    """The normalised product p_a p_b of two Gaussian mixtures: a mixture of the pairwise products."""
    logw, means, covs = [], [], []
    for i in range(a.weights.shape[0]):
        for j in range(b.weights.shape[0]):
            cov = jnp.linalg.inv(jnp.linalg.inv(a.covs[i]) + jnp.linalg.inv(b.covs[j]))
            means.append(cov @ (jnp.linalg.solve(a.covs[i], a.means[i]) + jnp.linalg.solve(b.covs[j], b.means[j])))
            covs.append(cov)
            overlap = jax.scipy.stats.multivariate_normal.logpdf(a.means[i], b.means[j], a.covs[i] + b.covs[j])
            logw.append(jnp.log(a.weights[i]) + jnp.log(b.weights[j]) + overlap)
    return skd.GaussianMixture(jax.nn.softmax(jnp.stack(logw)), jnp.stack(means), jnp.stack(covs))


@pytest.mark.slow
def test_or_samples_the_union_with_the_mixture_weights(x64):
    a, b = _or_pair()
    sched, n = skd.VP.linear(), 2000
    both = skd.superpose([a.model(sched), b.model(sched)], mode="or")
    x0 = skd.sample(both, skd.samplers.ddim(eta=1.0), sched.prior(jax.random.key(0), (n, 2)), skd.time_grid(sched, 100),
                    key=jax.random.key(1))
    means = jnp.concatenate([a.means, b.means])
    counts = jnp.bincount(jnp.argmin(jnp.sum((x0[:, None] - means[None]) ** 2, -1), axis=1), length=4)
    exact = jnp.concatenate([a.weights, b.weights]) / 2
    se = jnp.sqrt(exact * (1 - exact) / n)
    assert bool(jnp.all(jnp.abs(counts / n - exact) < 3 * se)), (counts / n, exact, se)


@pytest.mark.slow
def test_and_samples_the_product_high_density_region(x64):
    a, b = _and_pair()
    sched, n = skd.VP.linear(), 1000
    log_ab = lambda x: a.log_prob(x) + b.log_prob(x)
    threshold = jnp.quantile(log_ab(_product(a, b).sample(jax.random.key(9), 20000)), 0.05)  # its 95% region
    both = skd.superpose([a.model(sched), b.model(sched)], mode="and")
    out = skd.sample_superposed(both, sk.solvers.euler_maruyama(), sched.prior(jax.random.key(0), (n, 2)),
                                skd.time_grid(sched, 100), key=jax.random.key(1))
    inside = float(jnp.mean(log_ab(out.x) > threshold))
    alone = float(jnp.mean(log_ab(a.sample(jax.random.key(3), n)) > threshold))
    assert inside > 0.7 and alone < 0.45, (inside, alone)  # (binomial standard error 0.015)
    # Equal density: the two models agree on where the samples are, unlike a mixture's samples.
    gap = jnp.mean(jnp.abs(a.log_prob(out.x) - b.log_prob(out.x)))
    assert float(gap) < 0.5
    np.testing.assert_allclose(jnp.sum(out.weights, axis=0), 1.0, rtol=1e-12)
    # (The tracked log-densities agree by construction; AND's weights use the step's own noise, so
    # the estimator is not a left-point Itô sum along AND paths and they are no estimate of log p.)
    np.testing.assert_allclose(out.log_densities[0], out.log_densities[1], rtol=1e-8, atol=1e-8)


def test_or_with_an_ode_sampler_and_float32():
    a, b = _or_pair()
    a, b = (jax.tree.map(lambda v: v.astype(jnp.float32), m) for m in (a, b))
    sched = skd.VP.linear()
    both = skd.superpose([a.model(sched), b.model(sched)])
    out = skd.sample_superposed(both, skd.samplers.dpm_solver_pp(order=2),
                                sched.prior(jax.random.key(0), (400, 2), jnp.float32), skd.time_grid(sched, 20))
    assert out.x.dtype == jnp.float32 and out.log_densities.shape == (2, 400)
    left = float(jnp.mean(out.x[:, 0] < 0))
    assert abs(left - 0.5) < 0.1, left
    np.testing.assert_allclose(jnp.sum(out.weights, axis=0), 1.0, rtol=1e-5)


def test_bad_input():
    a, b = _or_pair()
    sched = skd.VP.linear()
    with pytest.raises(ValueError, match="mode must be"):
        skd.superpose([a.model(sched), b.model(sched)], mode="xor")
    with pytest.raises(TypeError, match="two or more"):
        skd.superpose([a.model(sched)])
    with pytest.raises(ValueError, match="share one schedule"):
        skd.superpose([a.model(sched), b.model(skd.VP.linear(beta_max=10.0))])
    both = skd.superpose([a.model(sched), b.model(sched)])
    with pytest.raises(ValueError, match="pass key"):
        skd.sample(both, skd.samplers.ddim(eta=1.0), jnp.zeros((2, 2)), skd.time_grid(sched, 4))
