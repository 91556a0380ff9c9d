"""SDE-DPM-Solver++ (1/2M/3M/2S) against k-diffusion's `sample_dpmpp_2m_sde`, `sample_dpmpp_3m_sde`,
`sample_dpmpp_sde` and diffusers' `DPMSolverSDEScheduler`, step by step, driven by the same
Brownian path: the fixtures (tests/diffusion/fixtures/sde_*.npz, written by
benchmarks/diffusion_references/sde_fixtures.py) fed the references the increments of the tree
that `skd.sample(..., key=jax.random.key(noise_seed))` builds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd
from sdekit.diffusion._sample import TREE_DEPTH, _tree_tol

from . import _fixtures

S = skd.samplers
CASES = {
    "sde_dpmpp_2m_midpoint": lambda: S.dpm_solver_pp_sde(2, eta=1.0, solver_type="midpoint"),
    "sde_dpmpp_2m_heun_eta05": lambda: S.dpm_solver_pp_sde(2, eta=0.5, solver_type="heun"),
    "sde_dpmpp_3m": lambda: S.dpm_solver_pp_sde(3, eta=1.0, third_order="reference"),
    "sde_dpmpp_2s": lambda: S.dpm_solver_pp_sde(2, method="singlestep"),
    "sde_diffusers_dpmsolver_sde": lambda: S.dpm_solver_pp_sde(2, method="singlestep"),
    "sde_vp_dpmpp_2m": lambda: S.dpm_solver_pp_sde(2),
    "sde_vp_dpmpp_2s": lambda: S.dpm_solver_pp_sde(2, method="singlestep"),
}


def _model(f, schedule):
    gm = skd.GaussianMixture(jnp.asarray(f["weights"]), jnp.asarray(f["means"]), jnp.asarray(f["covs"]))
    return gm.model(schedule)


def _setup(name):
    f = _fixtures.load(name)
    vp = name.startswith("sde_vp")
    sched = skd.VP.linear() if vp else skd.EDM()
    grid = jnp.asarray(f["grid"])
    s = -grid
    assert f["tree_depth"] == TREE_DEPTH
    tree = sk.BrownianTree(jax.random.key(f["noise_seed"]), s[0], s[-1], shape=f["x_T"].shape, dtype=jnp.float64,
                           tol=_tree_tol(s), depth=TREE_DEPTH, levy="increment")
    return f, sched, grid, tree


@pytest.mark.parametrize("name", sorted(CASES))
def test_sde_sampler_against_reference(name, x64):
    f, sched, grid, tree = _setup(name)
    # The fixture's noise is this tree's path on the grid.
    np.testing.assert_allclose(tree.grid_increments(-grid).W, f["dW"], rtol=0, atol=1e-14)
    model = _model(f, sched)
    x_T = jnp.asarray(f["x_T"])
    sampler = CASES[name]()
    sol = sk.solve(skd.reverse_sde(model), sampler, -grid[0], -grid[-1], x_T, controller=sk.StepTo(-grid),
                   brownian=tree, saveat=sk.SaveAt(steps=True))
    states = jnp.concatenate([x_T[None], sol.ys[: len(grid) - 1]])
    if len(f["traj"]) != len(states):  # k-diffusion's 2S reports the outer grid: every other point, and the end
        states = jnp.concatenate([states[:-1:2], states[-1:]])
    scale = np.max(np.abs(f["traj"]))
    np.testing.assert_allclose(states, f["traj"], rtol=0, atol=1e-10 * scale)


def test_sample_builds_the_fixtures_tree(x64):
    """`skd.sample(..., key=jax.random.key(noise_seed))` draws the fixture's path: its end point is the reference's."""
    f, sched, grid, _ = _setup("sde_dpmpp_2m_midpoint")
    x0 = skd.sample(_model(f, sched), CASES["sde_dpmpp_2m_midpoint"](), jnp.asarray(f["x_T"]), grid,
                    key=jax.random.key(f["noise_seed"]))
    np.testing.assert_allclose(x0, f["traj"][-1], rtol=0, atol=1e-10 * np.max(np.abs(f["traj"])))


def test_midpoint_grid_is_the_references(x64):
    f = _fixtures.load("sde_dpmpp_2s")
    np.testing.assert_allclose(S.midpoint_grid(skd.EDM(), jnp.asarray(f["sigmas"])), f["grid"], rtol=1e-14)
    f = _fixtures.load("sde_vp_dpmpp_2s")
    np.testing.assert_allclose(S.midpoint_grid(skd.VP.linear(), jnp.asarray(f["ts"])), f["grid"], rtol=1e-12)
