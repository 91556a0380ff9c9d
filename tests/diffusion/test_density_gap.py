"""`skd.ode_sde_gap` and `skd.sliced_wasserstein`: no gap beyond the samplers' error with the exact
score, a large one with an inconsistent score; the distance of a pure shift; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd


def test_sliced_wasserstein_of_a_shift_and_of_itself(x64):
    a = jax.random.normal(jax.random.key(0), (500, 3))
    shift = jnp.array([1.0, -2.0, 2.0])
    sw = skd.sliced_wasserstein(a, a + shift[None], jax.random.key(1), n_projections=20000)
    np.testing.assert_allclose(sw, 3.0 / np.sqrt(3.0), rtol=0.02)  # |m| / sqrt(d)
    assert float(skd.sliced_wasserstein(a, a[::-1], jax.random.key(1))) == 0.0  # order does not matter
    with pytest.raises(ValueError, match="one shape"):
        skd.sliced_wasserstein(a, a[:10], jax.random.key(1))


@pytest.mark.slow
def test_the_gap_is_small_for_the_exact_score_and_large_for_an_inconsistent_one(x64):
    gm = skd.GaussianMixture(jnp.array([0.3, 0.7]), jnp.array([[-1.0, 0.5], [1.0, 0.0]]),
                             jnp.stack([0.2 * jnp.eye(2), 0.3 * jnp.eye(2)]))
    sched = skd.VP.linear()
    exact = gm.model(sched)
    # A score shrunk by 0.8 is the score of no family of marginals of this SDE: ODE and SDE disagree.
    shrunk = skd.Model(lambda x, t, a: 0.8 * exact.eps(x, t, a), sched, prediction="eps")
    x_T, ts = sched.prior(jax.random.key(0), (1000, 2)), skd.time_grid(sched, 100)
    good = skd.ode_sde_gap(exact, x_T, ts, key=jax.random.key(1))
    bad = skd.ode_sde_gap(shrunk, x_T, ts, key=jax.random.key(1))
    assert float(good.sliced_wasserstein) < 0.1
    assert float(bad.sliced_wasserstein) > 5 * float(good.sliced_wasserstein), (good.sliced_wasserstein,
                                                                                bad.sliced_wasserstein)
    assert good.ode.shape == good.sde.shape == (1000, 2) and float(good.mean_distance) > 0.1  # paths differ


def test_bad_input():
    gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
    sched = skd.VP.linear()
    with pytest.raises(ValueError, match="deterministic"):
        skd.ode_sde_gap(gm.model(sched), jnp.zeros((4, 2)), skd.time_grid(sched, 4), key=jax.random.key(0),
                        ode_sampler=skd.samplers.euler_ancestral())
    with pytest.raises(TypeError, match="skd.Model"):
        skd.ode_sde_gap(gm, jnp.zeros((4, 2)), skd.time_grid(sched, 4), key=jax.random.key(0))
