"""The SDE-sampler fixtures (tests/diffusion/fixtures/sde_*.npz), written by make_fixtures.py.

k-diffusion's `sample_dpmpp_sde`, `sample_dpmpp_2m_sde`, `sample_dpmpp_3m_sde` and diffusers'
`DPMSolverSDEScheduler` driven by the *same Brownian path* that `skd.sample(..., key=...)`
uses: sdekit's `BrownianTree` is built here exactly as `skd.sample` builds it (over
s = -t, depth `TREE_DEPTH`), its increments on the grid are stored (`dW`), and each reference
gets a noise sampler that returns, for a call (sigma_a, sigma_b), the path's increment between
those grid points divided by sqrt(|s_b - s_a|): the standard normal k-diffusion's own
`BrownianTreeNoiseSampler` returns (its tree runs in sigma, which is t for EDM).
"""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch

SEED_X = 20240603  # z0 of the SDE fixtures (x_T = sigma_max * z0)
ROOT = pathlib.Path(__file__).resolve().parents[2]
NOISE_SEED = 21  # jax.random.key(NOISE_SEED) is the Brownian path
SDE_N = 24  # Karras steps: SDE samplers need more than the ODE fixtures' 12 to pass the sanity check


_TREE_SCRIPT = """
import sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import sdekit as sk
from sdekit.diffusion._sample import TREE_DEPTH, _tree_tol
path, seed = sys.argv[1], int(sys.argv[2])
data = np.load(path)
s = jnp.asarray(data["s"], jnp.float64)
tree = sk.BrownianTree(jax.random.key(seed), s[0], s[-1], shape=tuple(int(n) for n in data["shape"]), dtype=jnp.float64,
                       tol=_tree_tol(s), depth=TREE_DEPTH, levy="increment")
np.savez(path, dW=np.asarray(tree.grid_increments(s).W), depth=TREE_DEPTH)
"""


def _tree_increments(s_grid: np.ndarray, shape):
    """sdekit's tree as `skd.sample` builds it, and its increments on `s_grid` (float64). Run in
    sdekit's own environment (`SDEKIT_PYTHON`, default the repository's .venv): this torch
    environment need not have sdekit's dependencies."""
    python = os.environ.get("SDEKIT_PYTHON") or str(ROOT / ".venv" / "bin" / "python")
    if not pathlib.Path(python).exists():
        python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "tree.npz"
        np.savez(path, s=np.asarray(s_grid, np.float64), shape=np.array(shape))
        done = subprocess.run([python, "-c", _TREE_SCRIPT, str(path), str(NOISE_SEED)], capture_output=True, text=True,
                              env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert done.returncode == 0, done.stderr[-2000:]
        with np.load(path) as data:
            return data["dW"], int(data["depth"])


class GridNoise:
    """noise_sampler(sigma_a, sigma_b) -> the stored path's normalised increment between two grid
    points, located by their reference sigmas (`keys`, one per grid point)."""

    def __init__(self, keys: np.ndarray, s_grid: np.ndarray, dW: np.ndarray):
        self.keys, self.s = keys, s_grid
        self.W = np.concatenate([np.zeros_like(dW[:1]), np.cumsum(dW, axis=0)])
        self.calls = []

    def _index(self, sigma):
        sigma = float(sigma)
        i = int(np.argmin(np.abs(self.keys - sigma)))
        assert abs(self.keys[i] - sigma) <= 1e-12 * max(sigma, 1e-300), (sigma, self.keys[i])
        return i

    def __call__(self, sigma_a, sigma_b):
        i, j = self._index(sigma_a), self._index(sigma_b)
        self.calls.append((i, j))
        return torch.from_numpy((self.W[j] - self.W[i]) / math.sqrt(abs(self.s[j] - self.s[i])))


def _midpoints(sigmas: np.ndarray) -> np.ndarray:
    """The grid with sqrt(sigma_i sigma_{i+1}) (r = 1/2 in lambda = -log sigma) inserted, except in
    the last step to 0: `skd.samplers.midpoint_grid` for EDM."""
    out = []
    for a, b in zip(sigmas[:-2], sigmas[1:-1]):
        out += [a, math.exp(-(-math.log(a) - math.log(b)) / 2)]
    return np.array(out + list(sigmas[-2:]))


def run(out, M):
    """Write the SDE fixtures with the helpers of make_fixtures.py (the module `M`)."""
    K = M.K
    rng = np.random.default_rng(SEED_X)
    sigmas_t = K.get_sigmas_karras(SDE_N, M.EDM_SMIN, M.EDM_SMAX, rho=M.EDM_RHO)
    sigmas = M.to_np(sigmas_t)
    z0 = rng.standard_normal((M.N_SAMPLES, 2))
    x_T = sigmas[0] * z0
    shape = (M.N_SAMPLES, 2)
    sizes = {}
    meta = {
        "convention": "EDM/k-diffusion: alpha=1, sigma=t; model D(x, sigma) = exact mixture denoiser. Brownian path: "
                      "sdekit.BrownianTree(jax.random.key(noise_seed), s[0], s[-1], shape=(32, 2), float64, depth=tree_depth, "
                      "tol=|s[-1]-s[0]| 2**-tree_depth, levy='increment') over s = -t, as skd.sample builds it; dW = its "
                      "grid_increments(s).W. The reference's noise_sampler(sigma_a, sigma_b) returned "
                      "(W(s_b) - W(s_a)) / sqrt(|s_b - s_a|) from these increments.",
        "grid_description": f"k_diffusion.sampling.get_sigmas_karras(n={SDE_N}, sigma_min={M.EDM_SMIN}, sigma_max={M.EDM_SMAX}, "
                f"rho={M.EDM_RHO}) (float64, ends with 0)",
        "float64_inside": True,
        "noise_seed": NOISE_SEED,
    }

    def k_run(name, fn, kwargs, grid, *, midpoints):
        s_grid = -grid
        dW, depth = _tree_increments(s_grid, shape)
        noise = GridNoise(grid, s_grid, dW)
        model, cb = M.KModel(), M.TrajCallback()
        final = M.to_np(fn(model, torch.from_numpy(x_T.copy()), sigmas_t, callback=cb, disable=True,
                           noise_sampler=noise, **kwargs))
        traj = np.stack(cb.xs + [final])
        assert np.array_equal(traj[0], x_T)
        M.sanity(name, final)
        arrays = dict(sigmas=sigmas, grid=grid, s_grid=s_grid, dW=dW, x_T=x_T, z0=z0, traj=traj,
                      model_sigmas=np.array(model.sigmas), noise_calls=np.array(noise.calls))
        cfg = {k: v for k, v in kwargs.items()}
        sizes[name] = M.save(out, name, arrays, dict(meta, sampler=name, reference=f"k_diffusion.sampling.{fn.__name__}",
                                                     config=cfg, tree_depth=depth, nfe=len(model.sigmas),
                                                     midpoint_grid=midpoints,
                                                     note="traj: the state at each point of `sigmas` (k-diffusion's "
                                                          "callbacks); the sampler's own grid is `grid`"))
        return traj

    k_run("sde_dpmpp_2m_midpoint", K.sample_dpmpp_2m_sde, {"eta": 1.0, "solver_type": "midpoint"}, sigmas, midpoints=False)
    k_run("sde_dpmpp_2m_heun_eta05", K.sample_dpmpp_2m_sde, {"eta": 0.5, "solver_type": "heun", "s_noise": 1.0},
          sigmas, midpoints=False)
    k_run("sde_dpmpp_3m", K.sample_dpmpp_3m_sde, {"eta": 1.0}, sigmas, midpoints=False)
    mid = _midpoints(sigmas)
    k_traj = k_run("sde_dpmpp_2s", K.sample_dpmpp_sde, {"eta": 1.0, "r": 0.5}, mid, midpoints=True)

    # diffusers' DPMSolverSDEScheduler: the same 2S method on an interleaved sigma table (ours in
    # float64, written over its float32 one), with its noise sampler replaced by ours.
    from diffusers import DPMSolverSDEScheduler

    sched = DPMSolverSDEScheduler(prediction_type="epsilon")
    n = len(sigmas) - 1
    sched.set_timesteps(n)
    table = np.concatenate([sigmas[:1], np.repeat(sigmas[1:-1], 2), sigmas[-1:]])
    assert len(sched.sigmas) == len(table), (len(sched.sigmas), len(table))
    sched.sigmas = torch.from_numpy(table.copy())
    s_grid = -mid
    dW, depth = _tree_increments(s_grid, shape)
    noise = GridNoise(mid, s_grid, dW)
    sched.noise_sampler = noise
    x = torch.from_numpy(x_T.copy())
    traj = [x_T.copy()]
    sigma_inputs = []
    for t in sched.timesteps:
        index = 0 if sched.step_index is None else sched.step_index
        sigma_in = float(sched.sigmas[index]) if sched.state_in_first_order else float(sched.mid_point_sigma)
        sigma_inputs.append(sigma_in)
        d = M.denoiser(M.to_np(x), 1.0, sigma_in)
        eps = torch.from_numpy((M.to_np(x) - d) / sigma_in)
        x = sched.step(eps, t, x).prev_sample
        assert x.dtype == torch.float64
        traj.append(M.to_np(x).copy())
    traj = np.stack(traj)
    assert traj.shape[0] == len(mid), (traj.shape, len(mid))
    err = np.abs(np.concatenate([traj[:-1:2], traj[-1:]]) - k_traj).max()
    print(f"sde_dpmsolver_sde_diffusers vs k-diffusion sample_dpmpp_sde: max |diff| = {err:.1e}")
    assert err < 1e-12 * np.abs(k_traj).max(), err
    name = "sde_diffusers_dpmsolver_sde"
    M.sanity(name, traj[-1])
    sizes[name] = M.save(
        out, name,
        dict(sigmas=sigmas, grid=mid, s_grid=s_grid, dW=dW, x_T=x_T, z0=z0, traj=traj,
             model_sigmas=np.array(sigma_inputs), noise_calls=np.array(noise.calls)),
        dict(meta, sampler=name, reference="diffusers.DPMSolverSDEScheduler", config={"prediction_type": "epsilon"},
             tree_depth=depth, nfe=len(sigma_inputs), midpoint_grid=True,
             note="sigma table overwritten with the float64 interleaved Karras table; model output eps = (x - D(x, "
                  "sigma_in)) / sigma_in at the scheduler's own input sigma (the midpoint on second-order steps); "
                  "traj: every step() output (one per point of `grid`)."))
    sizes.update(vp_run(out, M, rng))
    return sizes


VP_SDE_N = 20


def vp_run(out, M, rng):
    """VP linear in k-diffusion's VE variables (y = x/alpha, rho = sigma/alpha): 2M SDE and 2S on a
    grid uniform in lambda from t = 1 to 1e-3; the stored trajectories are VP-scaled (x = alpha y)."""
    K = M.K
    lam = np.linspace(M.vp_lambda(1.0), M.vp_lambda(1e-3), VP_SDE_N + 1)
    ts = M.vp_t_of_lambda(lam)
    ts[0], ts[-1] = 1.0, 1e-3
    alphas = np.exp(M.vp_log_alpha(ts))
    sigmas = np.sqrt(-np.expm1(2 * M.vp_log_alpha(ts)))
    ve = sigmas / alphas
    z0 = rng.standard_normal((M.N_SAMPLES, 2))
    x_T = sigmas[0] * z0
    shape = (M.N_SAMPLES, 2)
    sizes = {}
    for name, fn, kwargs, midpoints in [
        ("sde_vp_dpmpp_2m", K.sample_dpmpp_2m_sde, {"eta": 1.0, "solver_type": "midpoint"}, False),
        ("sde_vp_dpmpp_2s", K.sample_dpmpp_sde, {"eta": 1.0, "r": 0.5}, True),
    ]:
        if midpoints:  # t at the lambda midpoints: M.vp_t_of_lambda of the mean lambda
            lam_grid = np.stack([lam[:-1], (lam[:-1] + lam[1:]) / 2], axis=1).reshape(-1)
            t_grid = np.concatenate([M.vp_t_of_lambda(lam_grid), [1e-3]])
            t_grid[0] = 1.0
            t_grid[::2] = ts
        else:
            t_grid = ts
        a_grid = np.exp(M.vp_log_alpha(t_grid))
        ve_grid = np.sqrt(-np.expm1(2 * M.vp_log_alpha(t_grid))) / a_grid
        s_grid = -t_grid
        dW, depth = _tree_increments(s_grid, shape)
        noise = GridNoise(ve_grid, s_grid, dW)
        model, cb = M.KModel(), M.TrajCallback()
        y_end = M.to_np(fn(model, torch.from_numpy(x_T / alphas[0]), torch.from_numpy(ve.copy()), callback=cb,
                           disable=True, noise_sampler=noise, **kwargs))
        traj = np.stack(cb.xs + [y_end]) * alphas[:, None, None]
        M.sanity(name, traj[-1] / alphas[-1])
        sizes[name] = M.save(
            out, name,
            dict(ts=ts, alphas=alphas, sigmas=sigmas, sigmas_ve=ve, grid=t_grid, s_grid=s_grid, dW=dW, x_T=x_T, z0=z0,
                 traj=traj, model_sigmas=np.array(model.sigmas), noise_calls=np.array(noise.calls)),
            {"convention": "VP linear (beta0=0.1, beta1=20), t from 1 to 1e-3 uniform in lambda; k-diffusion run in VE "
                           "variables y = x/alpha on sigmas_ve = sigma/alpha; traj = alpha_i y_i (VP-scaled, at `ts`). "
                           "Brownian path over s = -t as skd.sample builds it (see the sde_dpmpp_* files); the noise "
                           "sampler returned (W(s_b) - W(s_a)) / sqrt(|s_b - s_a|) for the grid points of sigma_a, sigma_b.",
             "float64_inside": True, "noise_seed": NOISE_SEED, "tree_depth": depth, "sampler": name,
             "reference": f"k_diffusion.sampling.{fn.__name__}", "config": kwargs, "midpoint_grid": midpoints,
             "nfe": len(model.sigmas), "grid_description": "ts: 21 times uniform in lambda; grid: the sampler's (with the lambda "
                                               "midpoints for 2S)"})
    return sizes
