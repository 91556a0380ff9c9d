"""`skd.sample_with_log_density`: the Itô density estimator along reverse-SDE samples converges to
the exact mixture log-density at Euler-Maruyama's strong order 1/2 and Milstein's 1; along
probability-flow samples at the ODE solver's order; one key, one path whatever the batch size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd


def _mixture(dtype=float):
    return skd.GaussianMixture(jnp.array([0.3, 0.7], dtype), jnp.array([[-1.0, 0.5], [1.0, 0.0]], dtype),
                               jnp.stack([0.2 * jnp.eye(2, dtype=dtype), jnp.array([[0.3, 0.1], [0.1, 0.2]], dtype)]))


def _errors(solver, steps, n=200, key=None):
    """Mean |estimate - exact log p_{t_end}(x)| over n samples, one Brownian path per sample shared
    across step counts."""
    gm, sched = _mixture(), skd.VP.linear()
    x_T = sched.prior(jax.random.key(0), (n, 2))
    prior = lambda x: gm.log_prob(x, sched.alpha(sched.t_max), sched.sigma(sched.t_max))
    errs = []
    for steps_ in steps:
        ts = skd.time_grid(sched, steps_, spacing="time_uniform")
        out = skd.sample_with_log_density(gm.model(sched), solver, x_T, ts, key=key, prior_log_prob=prior)
        exact = gm.log_prob(out.x, sched.alpha(ts[-1]), sched.sigma(ts[-1]))
        errs.append(float(jnp.mean(jnp.abs(out.log_density - exact))))
    return np.array(errs)


def _slope(steps, errs):
    return -np.polyfit(np.log(steps), np.log(errs), 1)[0]


@pytest.mark.slow
def test_ito_estimator_converges_at_euler_maruyama_and_milstein_orders(x64):
    key = jax.random.key(1)
    em = _errors(sk.solvers.euler_maruyama(), [100, 200, 400], key=key)
    assert abs(_slope([100, 200, 400], em) - 0.5) < 0.12, em
    mil = _errors(sk.solvers.milstein(), [100, 200], key=key)
    assert abs(_slope([100, 200], mil) - 1.0) < 0.15, mil
    assert mil[1] < em[1] / 2.5, (mil, em)  # the higher-order solver does better at equal steps


def test_ode_estimator_converges_at_the_solver_order(x64):
    errs = _errors(sk.solvers.heun(), [10, 20, 40], n=64)
    assert abs(_slope([10, 20, 40], errs) - 2.0) < 0.15, errs
    assert errs[-1] < 5e-3


def test_same_key_same_path_for_any_batch_size_and_float32():
    gm, sched = _mixture(jnp.float32), skd.VP.linear()
    x_T = sched.prior(jax.random.key(0), (24, 2), jnp.float32)
    ts = skd.time_grid(sched, 20)
    run = lambda x: skd.sample_with_log_density(gm.model(sched), sk.solvers.euler_maruyama(), x, ts,
                                                key=jax.random.key(3))
    small, big = run(x_T[:8]), run(x_T)
    assert small.x.dtype == small.log_density.dtype == jnp.float32
    # The same Brownian paths (float rounding of the batched network aside).
    np.testing.assert_allclose(small.x, big.x[:8], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(small.log_density, big.log_density[:8], rtol=1e-5, atol=1e-5)
    assert bool(jnp.all(jnp.isfinite(big.log_density)))


def test_bad_input():
    gm, sched = _mixture(), skd.VP.linear()
    model, x_T, ts = gm.model(sched), jnp.zeros((2, 2)), skd.time_grid(sched, 4)
    with pytest.raises(TypeError, match="does not step"):
        skd.sample_with_log_density(model, skd.samplers.dpm_solver_pp(), x_T, ts)
    with pytest.raises(ValueError, match="pass key"):
        skd.sample_with_log_density(model, sk.solvers.euler_maruyama(), x_T, ts)
    with pytest.raises(ValueError, match="samples first"):
        skd.sample_with_log_density(model, sk.solvers.heun(), jnp.zeros(2), ts)
    with pytest.raises(ValueError, match="noise to data"):
        skd.sample_with_log_density(model, sk.solvers.heun(), x_T, ts[::-1])
    with pytest.raises(TypeError, match="sk.solvers"):
        skd.sample_with_log_density(model, "euler", x_T, ts)


@pytest.mark.parametrize("solver", [sk.solvers.milstein(), sk.solvers.heun()], ids=["sde", "ode"])
def test_log_density_on_a_padded_grid_equals_the_unpadded(solver, x64):
    gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
    sched = skd.VP.linear()
    x_T = sched.prior(jax.random.key(0), (16, 2))
    kwargs = dict(key=jax.random.key(1))
    padded = skd.sample_with_log_density(gm.model(sched), solver, x_T, skd.time_grid(sched, 20, pad_to=33),
                                         padded=True, **kwargs)
    plain = skd.sample_with_log_density(gm.model(sched), solver, x_T, skd.time_grid(sched, 20), **kwargs)
    np.testing.assert_allclose(padded.x, plain.x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(padded.log_density, plain.log_density, rtol=1e-12, atol=1e-12)
