"""Sample quality against the exact law of a 2-D Gaussian mixture: at 10 and 20 model
evaluations the second-order multistep samplers (DPM-Solver++ 2M, UniPC) beat DDIM, and every
sampler approaches the law as evaluations grow (energy distance to exact draws, with the exact
probability-flow map of the same starting points as the floor)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd

from . import _orders

N, M = 2000, 4000


def energy_distance(x, y):
    r"""$2E|X - Y| - E|X - X'| - E|Y - Y'|$ (V-statistics; the same reference for every sampler)."""

    def mean_dist(a, b):
        return jnp.mean(jax.lax.map(lambda row: jnp.mean(jnp.linalg.norm(b - row[None], axis=1)), a))

    return float(2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))


@pytest.mark.slow
def test_multistep_samplers_beat_ddim_and_converge_to_the_law(x64):
    sched = skd.VP.linear()
    gm = _orders.mixture()
    model = gm.model(sched)
    x_T = sched.prior(jax.random.key(0), (N, 2))
    reference = gm.sample(jax.random.key(1), M)
    floor = energy_distance(_orders.exact_pf(model, x_T, sched.t_max, sched.t_min, rtol=1e-8), reference)
    samplers = {"ddim": skd.samplers.ddim(), "dpm++2m": skd.samplers.dpm_solver_pp(order=2),
                "unipc": skd.samplers.unipc(order=2)}
    ed = {}
    for name, sampler in samplers.items():  # one compilation per sampler for the three budgets
        for nfe, x0 in zip((5, 10, 20), _orders.final_states(model, sampler, x_T, (5, 10, 20))):
            ed[name, nfe] = energy_distance(x0, reference) - floor
    table = {k: round(v, 4) for k, v in ed.items()}
    for nfe in (10, 20):
        assert ed["dpm++2m", nfe] < 0.5 * ed["ddim", nfe], table
        assert ed["unipc", nfe] < 0.5 * ed["ddim", nfe], table
    for name in samplers:
        assert ed[name, 5] > ed[name, 10] > ed[name, 20], table
        assert ed[name, 20] < 0.3 * ed[name, 5], table
    assert ed["dpm++2m", 20] < 2e-3 and ed["unipc", 20] < 2e-3, table
