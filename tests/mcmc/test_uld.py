"""sdekit.mcmc: ULD chains sample a Gaussian target, count their gradients exactly, and report
numpyro's diagnostics."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.mcmc as skm

MEAN = np.array([1.0, -2.0])
COV = np.array([[2.0, 0.9], [0.9, 1.0]])
PRECISION = np.linalg.inv(COV)


def _logdensity(x):
    d = x - jnp.asarray(MEAN, x.dtype)
    return -0.5 * d @ jnp.asarray(PRECISION, x.dtype) @ d


@pytest.mark.slow
@pytest.mark.parametrize("adaptive", [False, True], ids=["quicsort-constant", "align-adaptive"])
def test_gaussian_target_mean_and_covariance(adaptive):
    """256 chains x 100 states (sample_time 1, gamma = 1.5, u = 2, after 10 discarded): the
    pooled mean and covariance within 4 standard errors of the target's, the errors taken from
    the spread of the chains' own estimates (robust to autocorrelation). The errors are small
    enough that a noise scale off by sqrt(2) (covariance halved) would miss by > 10 of them."""
    if adaptive:
        sampler = skm.uld(_logdensity, solver=sk.solvers.align(), step_size=0.25, gamma=1.5, u=2.0,
                          controller=sk.PID(rtol=0.0, atol=0.02, pcoeff=0.1, icoeff=0.4, dtmin=2**-6),
                          brownian_tol=2**-6)
    else:
        sampler = skm.uld(_logdensity, solver=sk.solvers.quicsort(), step_size=0.25, gamma=1.5, u=2.0)
    n_chains = 256
    states = jax.vmap(sampler.init)(jnp.zeros((n_chains, 2)), jax.random.split(jax.random.key(0), n_chains))
    run = jax.jit(skm.sample, static_argnums=(1, 3))
    out = run(jax.random.key(1), sampler.step, states, 110)
    x = np.asarray(out.positions, np.float64)[:, 10:]  # (chains, 100, 2)
    chain_means = x.mean(axis=1)
    se_mean = chain_means.std(axis=0, ddof=1) / np.sqrt(n_chains)
    np.testing.assert_array_less(np.abs(chain_means.mean(axis=0) - MEAN), 4 * se_mean)
    centred = x - MEAN
    chain_covs = np.einsum("cni,cnj->cij", centred, centred) / x.shape[1]
    se_cov = chain_covs.std(axis=0, ddof=1) / np.sqrt(n_chains)
    np.testing.assert_array_less(np.abs(chain_covs.mean(axis=0) - COV), 4 * se_cov)
    assert np.all(0.5 * np.diag(COV) > 10 * np.diag(se_cov))
    if adaptive:
        assert int(out.num_rejected.sum()) > 0 and int(out.num_steps.min()) > 0


def test_gradient_evaluation_counts_are_exact():
    """Constant steps: QUICSORT 2 a step, ShOULD 2 a step + 1 at each solve's start (FSAL),
    ALIGN 1 a step + 1; here 4 steps a transition, 3 kept states, thin 2."""
    samplers = {name: skm.uld(grad_f=lambda x: x, solver=getattr(sk.solvers, name)(), step_size=0.25)
                for name in ("quicsort", "should", "align")}
    states = jax.vmap(skm.init)(jnp.ones((2, 3)))
    out = jax.jit(lambda: {name: skm.sample(jax.random.key(2), s.step, states, 3, thin=2)
                           for name, s in samplers.items()})()
    expected = {"quicsort": 6 * 8, "should": 6 * 9, "align": 6 * 5}
    for name, samples in out.items():
        assert samples.positions.shape == (2, 3, 3)
        assert samples.num_grad_evals.tolist() == [expected[name]] * 2, name
        assert samples.num_steps.tolist() == [24, 24] and samples.num_rejected.tolist() == [0, 0]


def test_chains_do_not_depend_on_how_many_run_beside_them():
    sampler = skm.uld(_logdensity, step_size=0.5)
    states = jax.vmap(sampler.init)(jnp.zeros((3, 2)), jax.random.split(jax.random.key(0), 3))
    run = jax.jit(skm.sample, static_argnums=(1, 3))
    three = run(jax.random.key(4), sampler.step, states, 5)
    two = run(jax.random.key(4), sampler.step, jax.tree.map(lambda a: a[:2], states), 5)
    np.testing.assert_allclose(three.positions[:2], two.positions, rtol=1e-6)


def _ar1(rho, chains, draws, seed, offsets=None):
    rng = np.random.default_rng(seed)
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = np.sqrt(1 - rho**2) * rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x if offsets is None else x + offsets[:, None]


def test_diagnostics_on_an_ar1_chain():
    """AR(1) with rho = 0.8: ESS = N (1 - rho) / (1 + rho) (about 4444 of 40000 draws) within 15%
    (over 20 seeds the estimate had mean 4363 and sd 190, so 15% is 3.5 sd), and numpyro's
    numbers exactly; R-hat near 1, and above 1.1 for chains with shifted means."""
    from numpyro import diagnostics

    rho, chains, draws = 0.8, 8, 5000
    x = _ar1(rho, chains, draws, seed=0)
    ess = float(skm.effective_sample_size(x))
    assert ess == pytest.approx(float(diagnostics.effective_sample_size(x)), rel=1e-12)
    assert ess == pytest.approx(chains * draws * (1 - rho) / (1 + rho), rel=0.15)
    assert abs(float(skm.rhat(x)) - 1.0) < 0.01
    assert float(skm.rhat(_ar1(rho, chains, draws, 1, offsets=np.linspace(-1, 1, chains)))) > 1.1
    tree = skm.effective_sample_size({"a": x, "b": x[..., None]})
    assert tree["b"].shape == (1,)


def test_missing_numpyro_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpyro", None)
    with pytest.raises(ImportError, match=r"sdekit\[mcmc\]"):
        skm.rhat(np.zeros((2, 10)))


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        skm.uld()
    with pytest.raises(ValueError, match="exactly one"):
        skm.uld(_logdensity, grad_f=lambda x: x)
    adaptive_quicsort = skm.uld(_logdensity, controller=sk.PID(rtol=0.0, atol=1e-2))
    with pytest.raises(ValueError, match="no embedded error estimate"):
        adaptive_quicsort.step(jax.random.key(0), adaptive_quicsort.init(jnp.zeros(2)))
