"""DDIM, Euler, Euler-ancestral and EDM Heun (with and without churn) against k-diffusion and
diffusers, step by step, on the fixtures' exact Gaussian-mixture denoiser (float64)."""

import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd

from . import _fixtures
from ._drive import trajectory


def _model(f, schedule):
    return skd.GaussianMixture(jnp.asarray(f["weights"]), jnp.asarray(f["means"]), jnp.asarray(f["covs"])).model(schedule)


def _tolerance(f):
    return 1e-10 if f.get("float64_inside", True) else 1e-4


@pytest.mark.parametrize("name, sampler", [
    ("edm_euler", lambda: skd.samplers.euler()),
    ("edm_heun", lambda: skd.samplers.heun()),
])
def test_edm_deterministic_against_k_diffusion(name, sampler, x64):
    f = _fixtures.load(name)
    got = trajectory(sampler(), _model(f, skd.EDM()), f["sigmas"], jnp.asarray(f["x_T"]))
    np.testing.assert_allclose(got, f["traj"], rtol=0, atol=_tolerance(f) * np.max(np.abs(f["traj"])))


def test_euler_ancestral_against_k_diffusion(x64):
    f = _fixtures.load("edm_euler_ancestral")
    got = trajectory(skd.samplers.euler_ancestral(eta=1.0), _model(f, skd.EDM()), f["sigmas"],
                     jnp.asarray(f["x_T"]), zs=f["z"])
    np.testing.assert_allclose(got, f["traj"], rtol=0, atol=1e-10 * np.max(np.abs(f["traj"])))


def test_heun_churn_against_k_diffusion(x64):
    f = _fixtures.load("edm_heun_churn")
    cfg = f["config"]
    sampler = skd.samplers.heun(churn=cfg["s_churn"], steps=len(f["sigmas"]) - 1, s_tmin=cfg["s_tmin"],
                                s_tmax=cfg["s_tmax"], s_noise=cfg["s_noise"])
    got = trajectory(sampler, _model(f, skd.EDM()), f["sigmas"], jnp.asarray(f["x_T"]), zs=f["z"])
    np.testing.assert_allclose(got, f["traj"], rtol=0, atol=1e-10 * np.max(np.abs(f["traj"])))


def test_ddim_against_diffusers(x64):
    f = _fixtures.load("vp_ddim")
    sched = skd.VP.linear()
    np.testing.assert_allclose(sched.alpha(jnp.asarray(f["ts"])), f["alphas"], rtol=1e-14)
    got = trajectory(skd.samplers.ddim(), _model(f, sched), f["ts"], jnp.asarray(f["x_T"]))
    np.testing.assert_allclose(got, f["traj"], rtol=0, atol=_tolerance(f) * np.max(np.abs(f["traj"])))


def test_sample_equals_the_stepwise_drive(x64):
    """`skd.sample` (one `sk.solve` scan) gives the same end point as stepping by hand."""
    f = _fixtures.load("edm_heun")
    model = _model(f, skd.EDM())
    x0 = skd.sample(model, skd.samplers.heun(), jnp.asarray(f["x_T"]), jnp.asarray(f["sigmas"]))
    np.testing.assert_allclose(x0, f["traj"][-1], rtol=0, atol=1e-10 * np.max(np.abs(f["traj"])))
