"""Schedules: closed forms against their definitions, inverses, the forward SDE's marginals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd

SCHEDULES = {
    "vp_linear": lambda: skd.VP.linear(),
    "vp_cosine": lambda: skd.VP.cosine(),
    "vp_discrete": lambda: skd.VP.discrete(np.linspace(1e-4, 0.02, 1000)),
    "ve": lambda: skd.VE(0.01, 50.0),
    "edm": lambda: skd.EDM(),
    "flow": lambda: skd.Flow(),
}


def _interior(sched, n=7):
    lo, hi = float(sched.t_min), float(sched.t_max)
    lo = lo + 1e-3 * (hi - lo) if lo == 0 else lo
    return jnp.linspace(lo, hi * (1 - 1e-3), n)


@pytest.mark.parametrize("name", SCHEDULES)
def test_log_snr_inverse_and_definition(name, x64):
    sched = SCHEDULES[name]()
    ts = _interior(sched)
    lam = sched.log_snr(ts)
    np.testing.assert_allclose(lam, jnp.log(sched.alpha(ts) / sched.sigma(ts)), rtol=1e-12, atol=1e-12)
    assert bool(jnp.all(jnp.diff(lam) < 0)), "log-SNR must decrease in t"
    np.testing.assert_allclose(sched.t_of_log_snr(lam), ts, rtol=1e-9, atol=1e-12)


def test_vp_definitions(x64):
    lin, cos = skd.VP.linear(0.1, 20.0), skd.VP.cosine(0.008)
    t = jnp.linspace(0.01, 0.99, 9)
    # beta(t) = -2 d/dt log alpha
    beta = -2 * jax.vmap(jax.grad(lin.log_alpha))(t)
    np.testing.assert_allclose(beta, 0.1 + t * 19.9, rtol=1e-12)
    np.testing.assert_allclose(lin.alpha(t) ** 2 + lin.sigma(t) ** 2, 1.0, rtol=1e-12)
    abar = jnp.cos((t + 0.008) / 1.008 * jnp.pi / 2) ** 2 / jnp.cos(0.008 / 1.008 * jnp.pi / 2) ** 2
    np.testing.assert_allclose(cos.alpha(t) ** 2, abar, rtol=1e-12)


def test_vp_discrete_matches_the_table(x64):
    betas = np.linspace(1e-4, 0.02, 1000)
    sched = skd.VP.discrete(betas)
    abar = np.cumprod(1 - betas)
    n = np.array([1, 10, 500, 1000])
    np.testing.assert_allclose(sched.alpha(n / 1000.0) ** 2, abar[n - 1], rtol=1e-10)
    mid = (np.array([10, 500]) + 0.5) / 1000
    la = 0.5 * np.log(abar)
    np.testing.assert_allclose(sched.log_alpha(mid), (la[[9, 499]] + la[[10, 500]]) / 2, rtol=1e-10)


@pytest.mark.parametrize("name", ["vp_linear", "ve", "edm"])
def test_forward_sde_has_the_schedules_marginal(name, x64):
    """Euler-Maruyama on the forward SDE from a point mass: mean alpha_t/alpha_s x, variance
    sigma_t^2 - (alpha_t/alpha_s)^2 sigma_s^2, to Monte-Carlo accuracy (4000 paths)."""
    sched = SCHEDULES[name]()
    s, t = (0.2, 0.8) if name != "edm" else (0.5, 2.0)
    x = jnp.full((4000,), 0.7)
    tree = sk.BrownianTree(jax.random.key(3), s, t, shape=(4000,), tol=2**-12 * (t - s))
    sol = sk.solve(sched.forward_sde(), sk.solvers.euler_maruyama(), s, t, x, dt0=(t - s) / 400, brownian=tree)
    ratio = sched.alpha(t) / sched.alpha(s)
    var = sched.sigma(t) ** 2 - ratio**2 * sched.sigma(s) ** 2
    y = sol.ys[-1]
    se_mean = np.sqrt(var / 4000)
    assert abs(float(jnp.mean(y)) - float(ratio) * 0.7) < 4 * se_mean + 0.01 * abs(float(ratio) * 0.7)
    np.testing.assert_allclose(float(jnp.var(y)), float(var), rtol=0.1)


def test_prior_scale_and_dtype(dtype):
    sched = skd.EDM()
    x = sched.prior(jax.random.key(0), (20000,), dtype)
    assert x.dtype == dtype
    np.testing.assert_allclose(float(jnp.std(x)), 80.0, rtol=0.03)


def test_bad_schedules():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        skd.VE(1.0, 0.5)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        skd.EDM(sigma_min=0.0)
    with pytest.raises(ValueError, match="1-D table"):
        skd.VP.discrete([0.1])
