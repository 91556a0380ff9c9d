"""Model parameterisations: exact round trips between every form, thresholding, guidance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd

from ._orders import mixture


def _truth(sched, x, t):
    """Every form of the exact mixture model at (x, t)."""
    gm = mixture()
    a, s = sched.alpha(t), sched.sigma(t)
    x0 = gm.denoise(x, a, s)
    eps = (x - a * x0) / s
    da, ds = sched.derivatives(jnp.asarray(t))
    return {"x0": x0, "eps": eps, "score": -eps / s, "v": a * eps - s * x0, "velocity": da * x0 + ds * eps}


SCHEDULES = {"vp": skd.VP.linear, "cosine": skd.VP.cosine, "edm": skd.EDM, "flow": skd.Flow, "ve": skd.VE}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction", skd.PREDICTIONS)
def test_every_form_from_every_prediction(name, prediction, x64):
    sched = SCHEDULES[name]()
    t = 0.6 * float(sched.t_max) + 0.4 * float(sched.t_min)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    truth = _truth(sched, x, t)
    model = skd.Model(lambda x_, t_, a: _truth(sched, x_, t_)[prediction], sched, prediction=prediction)
    got = {"x0": model.x0(x, t), "eps": model.eps(x, t), "score": model.score(x, t), "v": model.v(x, t),
           "velocity": model.velocity(x, t)}
    for k in got:
        np.testing.assert_allclose(got[k], truth[k], rtol=1e-9, atol=1e-9, err_msg=k)


def test_velocity_is_the_probability_flow(x64):
    """The probability-flow drift f x - g^2/2 score equals the velocity form."""
    sched = skd.VP.linear()
    model = mixture().model(sched)
    x, t = jax.random.normal(jax.random.key(2), (4, 2)), 0.4
    pf = sched.drift_coefficient(t) * x - 0.5 * sched.diffusion_squared(t) * model.score(x, t)
    np.testing.assert_allclose(model.velocity(x, t), pf, rtol=1e-10, atol=1e-12)


def test_threshold_clips_per_sample():
    x0 = jnp.stack([jnp.linspace(-3.0, 3.0, 100), jnp.linspace(-0.5, 0.5, 100)])
    th = skd.Threshold(ratio=0.9, max_value=2.0)(x0)
    assert float(jnp.max(jnp.abs(th[0]))) == pytest.approx(1.0)  # clipped to s=2 then / 2
    np.testing.assert_allclose(th[1], x0[1])  # s = max(1, q) = 1: unchanged
    model = skd.Model(lambda x, t, a: 5 * x, skd.VP.linear(), prediction="x0", threshold=skd.Threshold(0.995, 1.0))
    assert float(jnp.max(jnp.abs(model.x0(jnp.ones((2, 3)), 0.5)))) <= 1.0


def test_guidance():
    sched = skd.VP.linear()
    c = skd.Model(lambda x, t, a: x, sched)
    u = skd.Model(lambda x, t, a: 2 * x, sched)
    x = jnp.arange(3.0)
    np.testing.assert_allclose(skd.guided(c, u, 1.0).eps(x, 0.3), x)
    np.testing.assert_allclose(skd.guided(c, u, 0.0).eps(x, 0.3), 2 * x)
    np.testing.assert_allclose(skd.guided(c, u, 4.0).eps(x, 0.3), 2 * x + 4 * (x - 2 * x))


def test_edm_preconditioning(x64):
    sched = skd.EDM(sigma_data=0.5)
    model = skd.edm_denoiser(lambda x, c_noise, a: jnp.zeros_like(x), sched)
    x = jnp.ones(2)
    np.testing.assert_allclose(model.x0(x, 1.0), 0.25 / 1.25 * x)


def test_bad_models():
    with pytest.raises(ValueError, match="prediction must be one of"):
        skd.Model(lambda x, t, a: x, skd.VP.linear(), prediction="noise")
    with pytest.raises(TypeError, match="schedule"):
        skd.Model(lambda x, t, a: x, "vp")
    bad = skd.Model(lambda x, t, a: x[:1], skd.VP.linear())
    with pytest.raises(ValueError, match="must return the input's shape"):
        bad.x0(jnp.ones(3), 0.5)
