"""Time grids: each spacing against its definition and the references' grids; bad grids."""

import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd

from . import _fixtures


def test_karras_grid_is_k_diffusions(x64):
    f = _fixtures.load("edm_euler")
    ts = skd.time_grid(skd.EDM(), len(f["sigmas"]) - 1, "karras", zero_end=True)
    np.testing.assert_allclose(ts, f["sigmas"], rtol=1e-13, atol=0)


def test_log_snr_grid_is_the_fixtures(x64):
    f = _fixtures.load("vp_ddim")
    ts = skd.time_grid(skd.VP.linear(), len(f["ts"]) - 1, "log_snr")
    np.testing.assert_allclose(ts, f["ts"], rtol=1e-13)


@pytest.mark.parametrize("spacing", skd.SPACINGS)
@pytest.mark.parametrize("make", [skd.VP.linear, skd.VP.cosine, skd.EDM, skd.VE], ids=["vp", "cosine", "edm", "ve"])
def test_spacings(spacing, make, x64):
    sched = make()
    ts = skd.time_grid(sched, 12, spacing)
    assert ts.shape == (13,)
    assert float(ts[0]) == pytest.approx(float(sched.t_max)) and float(ts[-1]) == pytest.approx(float(sched.t_min))
    assert bool(jnp.all(jnp.diff(ts) < 0))
    u = {"time_uniform": ts, "time_quadratic": jnp.sqrt(ts), "log_snr": sched.log_snr(ts),
         "karras": (sched.sigma(ts) / sched.alpha(ts)) ** (1 / 7), "exponential": jnp.log(sched.sigma(ts))}[spacing]
    np.testing.assert_allclose(jnp.diff(u), jnp.full(12, (u[-1] - u[0]) / 12), rtol=1e-8)


def test_zero_end_and_bad_grids():
    ts = skd.time_grid(skd.Flow(), 5, "time_uniform", t_end=0.1, zero_end=True)
    assert float(ts[-1]) == 0.0 and ts.shape == (6,)
    with pytest.raises(ValueError, match="never reaches sigma = 0"):
        skd.time_grid(skd.VP.linear(), 5, zero_end=True)
    with pytest.raises(ValueError, match="spacing must be one of"):
        skd.time_grid(skd.EDM(), 5, "linear")
    with pytest.raises(ValueError, match="steps must be an int"):
        skd.time_grid(skd.EDM(), 0)
    with pytest.raises(ValueError, match="t_start > t_end"):
        skd.time_grid(skd.EDM(), 5, t_start=0.1, t_end=1.0)
