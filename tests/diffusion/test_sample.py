"""`skd.sample` and samplers through `sk.solve`: jit, vmap, SaveAt, gradients, bad input, and the
orders of DDIM/Euler and EDM Heun against the exact probability-flow solution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd

from . import _orders


@pytest.mark.parametrize("make", [skd.VP.linear, skd.EDM], ids=["vp", "edm"])
@pytest.mark.parametrize("sampler, order, steps", [
    (skd.samplers.ddim, 1, [20, 40, 80, 160]),
    (skd.samplers.heun, 2, [10, 20, 40, 80]),
])
def test_orders_against_the_exact_flow(make, sampler, order, steps, x64):
    model = _orders.mixture().model(make())
    errs = _orders.errors(model, sampler(), _orders.starts(model.schedule), steps)
    assert abs(_orders.fitted_order(steps, errs) - order) < 0.2, errs


def test_sk_solve_runs_a_sampler_with_saveat_and_stats(x64):
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    ts = skd.time_grid(sched, 8)
    x_T = _orders.starts(sched, 4)
    sol = sk.solve(skd.probability_flow(model), skd.samplers.heun(), ts[0], ts[-1], x_T,
                   controller=sk.StepTo(ts), saveat=sk.SaveAt(steps=True))
    np.testing.assert_allclose(sol.ts[: len(ts) - 1], ts[1:])
    assert bool(jnp.all(jnp.isinf(sol.ts[len(ts) - 1 :])))
    np.testing.assert_allclose(sol.ys[len(ts) - 1], skd.sample(model, skd.samplers.heun(), x_T, ts), rtol=1e-12)
    assert int(sol.stats["num_steps"]) == 8


def test_vmap_and_jit_and_float32():
    sched = skd.EDM()
    model = _orders.mixture().model(sched)
    ts = skd.time_grid(sched, 10, "karras", zero_end=True)
    x_T = _orders.starts(sched, 6)
    batched = skd.sample(model, skd.samplers.heun(), x_T, ts)
    assert batched.dtype == jnp.float32
    one_by_one = jax.jit(jax.vmap(lambda x: skd.sample(model, skd.samplers.heun(), x, ts)))(x_T)
    np.testing.assert_allclose(one_by_one, batched, rtol=1e-4, atol=1e-4)


def test_no_retrace_for_a_new_grid_of_the_same_length():
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    traces = []

    @jax.jit
    def run(ts, x):
        traces.append(1)
        return skd.sample(model, skd.samplers.ddim(), x, ts)

    x_T = _orders.starts(sched, 2)
    run(skd.time_grid(sched, 10), x_T)
    run(skd.time_grid(sched, 10, "time_uniform"), x_T)
    assert len(traces) == 1


def test_gradient_through_sampling_matches_finite_differences(x64):
    """d/d(mean shift) of the sample's mean, through Heun on a mixture whose means move."""
    sched = skd.VP.linear()
    ts = skd.time_grid(sched, 6)
    x_T = _orders.starts(sched, 3)

    def loss(shift):
        gm = _orders.mixture()
        gm = skd.GaussianMixture(gm.weights, gm.means + shift, gm.covs)
        return jnp.sum(skd.sample(gm.model(sched), skd.samplers.heun(), x_T, ts) ** 2)

    g = jax.grad(loss)(0.3)
    fd = (loss(0.3 + 1e-6) - loss(0.3 - 1e-6)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6)


@pytest.mark.slow
def test_stochastic_samplers_use_the_tree_and_reach_the_law(x64):
    """DDPM (ddim eta=1) on a single Gaussian: the samples' mean and variance approach the exact
    law at t_end as steps grow (first order: the error at 50 steps is several times the one at
    400, whose bias is ~3% here); a noise scale 10% off would miss the variance by ~20%, beyond
    the tolerance (7%: bias plus 2.5 standard errors of 8000 samples). One key gives the same
    noise on every run."""
    sched = skd.VP.linear()
    gm = skd.GaussianMixture(jnp.ones(1), jnp.array([[1.0, -1.0]]), jnp.array([[[0.25, 0.0], [0.0, 0.04]]]))
    model = gm.model(sched)
    x_T = sched.prior(jax.random.key(0), (8000, 2))
    a, s = sched.alpha(1e-3), sched.sigma(1e-3)
    exact_var = a**2 * jnp.array([0.25, 0.04]) + s**2
    run = jax.jit(lambda ts: skd.sample(model, skd.samplers.ddim(eta=1.0), x_T, ts, key=jax.random.key(1)))
    coarse, fine = (run(skd.time_grid(sched, n, "log_snr")) for n in (50, 400))
    np.testing.assert_allclose(jnp.mean(fine, axis=0), a * jnp.array([1.0, -1.0]), atol=0.02)
    np.testing.assert_allclose(jnp.var(fine, axis=0), exact_var, rtol=0.07)
    assert float(jnp.sum(jnp.abs(jnp.var(coarse, axis=0) - exact_var))) > 3 * float(
        jnp.sum(jnp.abs(jnp.var(fine, axis=0) - exact_var)))
    ts = skd.time_grid(sched, 20)
    key = jax.random.key(5)
    one = skd.sample(model, skd.samplers.euler_ancestral(), x_T[:4], ts, key=key)
    again = skd.sample(model, skd.samplers.euler_ancestral(), x_T[:4], ts, key=key)
    np.testing.assert_array_equal(one, again)


def test_bad_input():
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    x_T = jnp.zeros((2, 2))
    ts = skd.time_grid(sched, 5)
    with pytest.raises(ValueError, match="from noise to data"):
        skd.sample(model, skd.samplers.ddim(), x_T, ts[::-1])
    with pytest.raises(ValueError, match="built for another schedule"):
        skd.sample(model, skd.samplers.ddim(), x_T, skd.time_grid(skd.EDM(), 5))
    with pytest.raises(ValueError, match="same schedule"):
        skd.guided(model, _orders.mixture().model(skd.VP.linear(beta_max=10.0)), 2.0)
    with pytest.raises(ValueError, match="pass key="):
        skd.sample(model, skd.samplers.ddim(eta=1.0), x_T, ts)
    with pytest.raises(ValueError, match="eta >= 0"):
        skd.samplers.ddim(eta=-1.0)
    with pytest.raises(ValueError, match="needs steps=N"):
        skd.samplers.heun(churn=10.0)
    with pytest.raises(TypeError, match="solves skd.probability_flow"):
        sk.solve(sk.ODE(lambda t, y, a: -y), skd.samplers.ddim(), ts[0], ts[-1], x_T, controller=sk.StepTo(ts))
    with pytest.raises(TypeError, match="skd.Model"):
        skd.sample(lambda x, t, a: x, skd.samplers.ddim(), x_T, ts)


@pytest.mark.slow
def test_backsolve_adjoint_through_a_sampler(x64):
    """The continuous adjoint (Backsolve, its backward ODE by Tsit5) of a 40-step Heun sampling
    agrees with the exact gradient of the discrete sampler to the sampler's discretisation error."""
    sched = skd.VP.linear()
    ts = skd.time_grid(sched, 40)
    x_T = _orders.starts(sched, 3)

    def loss(shift, adjoint):
        gm = _orders.mixture()
        gm = skd.GaussianMixture(gm.weights, gm.means + shift, gm.covs)
        return jnp.sum(skd.sample(gm.model(sched), skd.samplers.heun(), x_T, ts, adjoint=adjoint) ** 2)

    exact = jax.grad(loss)(0.3, None)
    backsolve = jax.grad(loss)(0.3, sk.adjoint.Backsolve(solver=sk.solvers.tsit5(), controller=sk.PID(rtol=1e-8, atol=1e-8)))
    np.testing.assert_allclose(backsolve, exact, rtol=1e-3)
    assert abs(float(backsolve - exact)) > 1e-8  # a different method, not the same computation


@pytest.mark.parametrize("sampler", [skd.samplers.dpm_solver_pp(order=3), skd.samplers.dpm_solver_pp_sde(order=2)],
                         ids=["pp3M", "sde-pp2M"])
def test_padded_grids_sample_as_unpadded_from_one_compilation(sampler, x64):
    """Grids of 10, 20 and 40 steps padded to 40 (`pad_to`, `padded=True`) give the unpadded
    grids' samples (the same noise for the stochastic sampler) from one trace of a jitted sample."""
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 8)
    traces = []

    @jax.jit
    def padded(ts):
        traces.append(None)
        return skd.sample(model, sampler, x_T, ts, key=jax.random.key(5), padded=True)

    samples = []
    for n in (10, 20, 40):
        ts = skd.time_grid(sched, n, pad_to=40)
        assert ts.shape == (41,) and bool(jnp.all(ts[n:] == ts[n]))
        samples.append(padded(ts))
        plain = skd.sample(model, sampler, x_T, skd.time_grid(sched, n), key=jax.random.key(5))
        np.testing.assert_allclose(samples[-1], plain, rtol=1e-12, atol=1e-12)
    assert len(traces) == 1
    assert float(jnp.max(jnp.abs(samples[0] - samples[2]))) > 1e-4  # the step counts did differ


def test_bad_padded_sampling_grids():
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 4)
    with pytest.raises(ValueError, match="pad_to must be an int >= steps = 10"):
        skd.time_grid(sched, 10, pad_to=8)
    with pytest.raises(ValueError, match="repeated times need padded=True"):
        skd.sample(model, skd.samplers.ddim(), x_T, skd.time_grid(sched, 10, pad_to=12))
    sup = skd.superpose([model, model], mode="or")
    with pytest.raises(ValueError, match="padded grids are not supported"):
        skd.sample(sup, skd.samplers.ddim(), x_T, skd.time_grid(sched, 10, pad_to=12), padded=True)
