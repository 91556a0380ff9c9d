"""The augmented SDE of fractional noise: its driver's law on the tree, gradients through every
adjoint, the KL term, shapes and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from sdekit import fractional as skf


def _zero(t, x, args):
    return jnp.zeros_like(x)


def _one(t, x, args):
    return jnp.ones_like(x)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["type1", "type2"])
def test_driver_covariance_on_the_tree_matches_the_closed_form(x64, kind):
    """x solves dx = sum_k omega_k dy_k, so x_t is the approximate fBM; its sample covariance at
    three times against omega^T C(s, t) omega, in standard errors of the sample covariance. A 10%
    change of the weights moves the covariance by 21% (about 10 standard errors here)."""
    n = 4000
    fbm = sk.brownian.FractionalBM(0.3, kind=kind, horizon=1.0)
    model = skf.FractionalSDE(_zero, _one, fbm, noise="additive")
    ts = jnp.array([0.25, 0.5, 1.0])

    def one(key):
        key_y, key_w = jax.random.split(key)
        z0 = model.initial_state(jnp.array(0.0), key_y)
        tree = sk.BrownianTree(key_w, 0.0, 1.0, shape=(), tol=2**-8, levy="space-time")
        sol = sk.solve(model.as_sde(), sk.solvers.shark(), 0.0, 1.0, z0, dt0=2**-6, brownian=tree,
                       saveat=sk.SaveAt(ts=ts))
        return sol.ys.x, model.noise_value(sol.ys.y, z0.y)

    xs, driver = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), n))
    np.testing.assert_allclose(xs, driver, atol=1e-10)  # dx = sum omega dy exactly, step by step
    sample = np.cov(np.asarray(xs).T)
    exact = np.asarray(fbm.covariance_matrix(ts))
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / n)
    z = (sample - exact) / se
    assert np.max(np.abs(z)) < 4.0, z
    # ... and a wrong weight would fail: 10% more weight on every OU process.
    wrong = exact * 1.1**2
    assert np.max(np.abs((sample - wrong) / se)) > 5.0


def test_type1_initial_state_is_stationary(x64):
    fbm = sk.brownian.FractionalBM(0.7, kind="type1", n_ou=3)
    model = skf.FractionalSDE(_zero, _one, fbm)
    y0 = jax.vmap(lambda k: model.initial_state(jnp.array(0.0), k).y)(jax.random.split(jax.random.key(0), 20000))
    sigma = np.asarray(fbm.stationary_covariance())
    se = np.sqrt((np.outer(np.diag(sigma), np.diag(sigma)) + sigma**2) / 20000)
    assert np.max(np.abs((np.cov(np.asarray(y0).T) - sigma) / se)) < 4.0
    assert float(jnp.abs(skf.FractionalSDE(_zero, _one, sk.brownian.FractionalBM(0.7, kind="type2"))
                         .initial_state(jnp.zeros(2)).y).max()) == 0.0


def _fou_loss(hurst, theta, adjoint, solver, gamma_max, dt0, n_paths=2):
    """E[x_1^2] over a few fixed paths of the fractional OU dX = -theta X dt + dB^H (type II)."""
    fbm = sk.brownian.FractionalBM(hurst, kind="type2", horizon=1.0, gamma_max=gamma_max)
    model = skf.FractionalSDE(lambda t, x, th: -th * x, _one, fbm, noise="additive", calculus="stratonovich")
    sde = model.as_sde()
    z0 = model.initial_state(jnp.array(0.5))

    def one(key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=dt0 / 2)
        sol = sk.solve(sde, solver, 0.0, 1.0, z0, args=theta, dt0=dt0, brownian=tree, adjoint=adjoint)
        return sol.ys.x[-1] ** 2

    return jnp.mean(jax.vmap(one)(jax.random.split(jax.random.key(7), n_paths)))


def _finite_differences(loss, hurst, theta, step=1e-5):
    dh = (loss(hurst + step, theta) - loss(hurst - step, theta)) / (2 * step)
    dt = (loss(hurst, theta + step) - loss(hurst, theta - step)) / (2 * step)
    return np.array([dh, dt])


@pytest.mark.parametrize("adjoint, solver, gamma_max, dt0, rtol", [
    (sk.adjoint.Checkpointed(), sk.solvers.euler_maruyama(), 20.0, 2**-6, 1e-6),
    (sk.adjoint.Reversible(), sk.solvers.reversible_heun(), 20.0, 2**-6, 1e-6),
    # Backsolve differentiates the continuous problem, so it equals the discrete gradient only up
    # to the solvers' errors; and it rebuilds the OU processes backwards in time, which
    # amplifies every error by up to e^{gamma_max T}: with gamma_max = 20 its gradient is off by
    # orders of magnitude (measured), hence a small gamma_max and a fine step here.
    (sk.adjoint.Backsolve(), sk.solvers.heun_sde(), 4.0, 2**-9, 5e-3),
], ids=["checkpointed", "reversible", "backsolve"])
def test_gradients_in_hurst_and_drift_through_every_adjoint(x64, adjoint, solver, gamma_max, dt0, rtol):
    hurst, theta = jnp.array(0.3), jnp.array(0.8)
    loss = jax.jit(lambda h, th: _fou_loss(h, th, adjoint, solver, gamma_max, dt0))
    grad = np.asarray(jax.jit(jax.grad(loss, argnums=(0, 1)))(hurst, theta))
    # The finite differences of the loss solved without an adjoint of interest (for Checkpointed:
    # the same compiled loss).
    plain = loss if isinstance(adjoint, sk.adjoint.Checkpointed) else jax.jit(
        lambda h, th: _fou_loss(h, th, sk.adjoint.Checkpointed(), solver, gamma_max, dt0))
    fd = _finite_differences(plain, hurst, theta)
    assert np.all(np.abs(fd) > 1e-2), fd  # both gradients are informative
    np.testing.assert_allclose(grad, fd, rtol=rtol)


@pytest.mark.parametrize("dtype, kind", [(jnp.float32, "type1")])
def test_kl_of_a_constant_control_is_half_its_square_times_the_time(dtype, kind):
    with jax.enable_x64(dtype == jnp.float64):
        _check_constant_control_kl(jnp.dtype(dtype), kind)


def _check_constant_control_kl(dtype, kind):
    c = jnp.array([0.7, -1.2], dtype)
    fbm = sk.brownian.FractionalBM(jnp.asarray(0.4, dtype), kind=kind, horizon=1.5)
    model = skf.FractionalSDE(lambda t, x, a: -x, _one, fbm, control=lambda t, x, y, a: c, noise="general")
    ts = jnp.array([0.5, 1.5], dtype)
    obs = jnp.full((2, 2), jnp.nan, dtype)  # nothing observed: the ELBO is -KL
    out = skf.elbo(model, jnp.zeros(2, dtype), 0.0, ts, obs, 0.1, jax.random.key(0), n_samples=4, dt0=2**-5)
    expected = 0.5 * float(jnp.sum(c**2)) * 1.5
    assert out.kl.dtype == dtype
    np.testing.assert_allclose(out.kl, expected, rtol=1e-5 if dtype == jnp.float32 else 1e-12)
    np.testing.assert_allclose(out.value, -expected, rtol=1e-5 if dtype == jnp.float32 else 1e-12)
    assert float(out.log_likelihood) == 0.0


def test_gaussian_log_likelihood_and_control_shift(x64):
    """With s = 0 the path is deterministic: x' = -x + 0 (the control moves only the noise)."""
    fbm = sk.brownian.FractionalBM(0.6, kind="type2", horizon=1.0)
    model = skf.FractionalSDE(lambda t, x, a: -x, _zero, fbm, control=lambda t, x, y, a: jnp.ones_like(x),
                              calculus="stratonovich")
    ts = jnp.array([0.5, 1.0])
    obs = jnp.array([0.3, 0.2])
    out = skf.elbo(model, 1.0, 0.0, ts, obs, 0.2, jax.random.key(0), n_samples=2, dt0=2**-10,
                   solver=sk.solvers.heun_sde())
    x = np.exp(-np.asarray(ts))
    expected = np.sum(-0.5 * ((x - obs) / 0.2) ** 2 - np.log(0.2) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(out.log_likelihood, expected, rtol=1e-5)
    np.testing.assert_allclose(out.kl, 0.5, rtol=1e-12)


def test_the_control_steers_the_path_through_the_shared_brownian_motion(x64):
    """With control u the OU processes see dW + u dt: for b = 0, s = 1, type II, the posterior path
    minus the prior path on the same Brownian motion is u sum_k omega_k (1 - e^{-gamma_k t}) / gamma_k."""
    fbm = sk.brownian.FractionalBM(0.7, kind="type2", horizon=1.0)
    model = skf.FractionalSDE(_zero, _one, fbm, control=lambda t, x, y, a: jnp.ones_like(x), calculus="stratonovich")
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(), tol=2**-11)
    prior = skf.FractionalSDE(_zero, _one, fbm, calculus="stratonovich")
    z0 = model.initial_state(jnp.array(0.0))
    solve = lambda m: sk.solve(m.as_sde(), sk.solvers.heun_sde(), 0.0, 1.0, z0, dt0=2**-10, brownian=tree).ys.x[-1]  # noqa: E731
    gamma, omega = np.asarray(fbm.gamma), np.asarray(fbm.omega)
    shift = np.sum(omega * (1 - np.exp(-gamma)) / gamma)
    np.testing.assert_allclose(solve(model) - solve(prior), shift, rtol=1e-5)


def test_vector_state_with_general_noise(x64):
    fbm = sk.brownian.FractionalBM(0.3, kind="type2", n_ou=4, horizon=1.0)
    model = skf.FractionalSDE(_zero, lambda t, x, a: jnp.array([1.0, 2.0]), fbm, noise="general")
    z0 = model.initial_state(jnp.zeros(2))
    assert z0.y.shape == (2, 4) and model.brownian_shape(z0.x) == (2,)
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8)
    sol = sk.solve(model.as_sde(), sk.solvers.euler_maruyama(), 0.0, 1.0, z0, dt0=2**-6, brownian=tree)
    noise = model.noise_value(sol.ys.y[-1])
    np.testing.assert_allclose(sol.ys.x[-1], noise * np.array([1.0, 2.0]), rtol=1e-10)
    # Component 0 is driven by W_0 only.
    np.testing.assert_allclose(sol.ys.y[-1][0], z0.y[0] + 0 * sol.ys.y[-1][0] + sol.ys.y[-1][0], rtol=0)


def test_bad_input_is_refused():
    fbm = sk.brownian.FractionalBM(0.3, kind="type1")
    with pytest.raises(TypeError, match="FractionalBM"):
        skf.FractionalSDE(_zero, _one, 0.3)
    with pytest.raises(ValueError, match="noise must be one of"):
        skf.FractionalSDE(_zero, _one, fbm, noise="diagonal")
    model = skf.FractionalSDE(_zero, _one, fbm)
    with pytest.raises(ValueError, match="pass key="):
        model.initial_state(jnp.array(0.0))
    with pytest.raises(ValueError, match="scalar or a vector"):
        model.initial_state(jnp.zeros((2, 2)), jax.random.key(0))
    z0 = model.initial_state(jnp.zeros(2), jax.random.key(0))
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-8)
    with pytest.raises(ValueError, match="noise='general'"):
        sk.solve(model.as_sde(), sk.solvers.euler_maruyama(), 0.0, 1.0, z0, dt0=2**-6, brownian=tree)
    with pytest.raises(ValueError, match="observations must have shape"):
        skf.elbo(model, 0.0, 0.0, jnp.array([1.0]), jnp.array([1.0, 2.0]), 0.1, jax.random.key(0),
                 n_samples=2, dt0=0.1)
    with pytest.raises(ValueError, match="n_samples"):
        skf.elbo(model, 0.0, 0.0, jnp.array([1.0]), jnp.array([1.0]), 0.1, jax.random.key(0), n_samples=0, dt0=0.1)


def test_public_surface():
    assert sorted(dir(skf)) == sorted(skf.__all__) == ["AugmentedState", "Elbo", "FractionalSDE", "elbo"]
    assert "FractionalBM" in sk.brownian.__all__


def test_elbo_refuses_traced_times():
    model = skf.FractionalSDE(_zero, _one, sk.brownian.FractionalBM(0.3, kind="type2"))
    with pytest.raises(ValueError, match="must be known"):
        jax.jit(lambda ts: skf.elbo(model, 0.0, 0.0, ts, jnp.ones(1), 0.1, jax.random.key(0),
                                    n_samples=1, dt0=0.1).value)(jnp.ones(1))
