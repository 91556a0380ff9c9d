"""Write the diffusion-sampler reference fixtures (tests/diffusion/fixtures/*.npz).

Runs in a separate torch environment (see README.md beside this file), never in
sdekit's own test environment.  k-diffusion and diffusers are only *called* here;
the problem (a 2-D Gaussian mixture with its exact float64 denoiser), the grids
and the noise are built by this script, and everything they produce is stored as
plain numpy arrays (data only, no pickles).

    python benchmarks/diffusion_references/make_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import pathlib
import sys
import types

import numpy as np
import scipy.integrate
import torch

torch.set_default_dtype(torch.float64)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "diffusion" / "fixtures"

N_SAMPLES = 32
SEED_X = 20240601  # z0 (x_T = scale * z0)
SEED_NOISE = 20240602  # injected noise of the stochastic samplers

# ---------------------------------------------------------------------------
# The problem: a 2-D, 3-component Gaussian mixture and its exact denoiser.
# ---------------------------------------------------------------------------
WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]])
COVS = np.array(
    [
        [[0.3, 0.1], [0.1, 0.2]],
        [[0.1, 0.0], [0.0, 0.4]],
        [[0.2, -0.05], [-0.05, 0.15]],
    ]
)
MIXTURE_MEAN = WEIGHTS @ MEANS


def denoiser(x: np.ndarray, alpha: float, sigma: float) -> np.ndarray:
    """E[x_0 | x_t = x] for q(x_t | x_0) = N(alpha x_0, sigma^2 I); x: (n, 2)."""
    x = np.asarray(x, dtype=np.float64)
    eye = np.eye(2)
    c = alpha**2 * COVS + sigma**2 * eye  # (K, 2, 2)
    diff = x[:, None, :] - alpha * MEANS[None]  # (n, K, 2)
    sol = np.linalg.solve(c[None], diff[..., None])[..., 0]  # C_k^{-1}(x - a mu_k)
    _, logdet = np.linalg.slogdet(c)
    logits = np.log(WEIGHTS) - 0.5 * logdet - 0.5 * np.einsum("nki,nki->nk", diff, sol)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    post = MEANS[None] + alpha * np.einsum("kij,nkj->nki", COVS, sol)  # (n, K, 2)
    return np.einsum("nk,nki->ni", w, post)


def mixture_logpdf(x: np.ndarray) -> np.ndarray:
    diff = x[:, None, :] - MEANS[None]
    sol = np.linalg.solve(COVS[None], diff[..., None])[..., 0]
    _, logdet = np.linalg.slogdet(COVS)
    comp = np.log(WEIGHTS) - 0.5 * logdet - math.log(2 * math.pi) - 0.5 * np.einsum("nki,nki->nk", diff, sol)
    m = comp.max(axis=1)
    return m + np.log(np.exp(comp - m[:, None]).sum(axis=1))


# ---------------------------------------------------------------------------
# k-diffusion's sampling.py, loaded by file path under a synthetic package
# (the package's __init__ pulls in skimage/torchvision/...; sampling.py itself
# needs only torch, scipy, torchdiffeq, torchsde, tqdm and utils.append_dims).
# ---------------------------------------------------------------------------
def _append_dims(x, target_dims):
    return x[(...,) + (None,) * (target_dims - x.ndim)]


def load_k_sampling():
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (pip install --no-deps k-diffusion)")
    pkg_dir = pathlib.Path(list(spec.submodule_search_locations)[0])
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = []
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = _append_dims
    pkg.utils = utils
    sys.modules["k_diffusion"] = pkg
    sys.modules["k_diffusion.utils"] = utils
    sspec = importlib.util.spec_from_file_location("k_diffusion.sampling", pkg_dir / "sampling.py")
    mod = importlib.util.module_from_spec(sspec)
    sys.modules["k_diffusion.sampling"] = mod
    sspec.loader.exec_module(mod)
    return mod


K = load_k_sampling()
import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMScheduler,
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    UniPCMultistepScheduler,
)


def _version(dist):
    from importlib.metadata import version

    return version(dist)


VERSIONS = {
    "torch": torch.__version__,
    "diffusers": diffusers.__version__,
    "k-diffusion": _version("k-diffusion"),
    "numpy": np.__version__,
    "scipy": scipy.__version__,
}


def problem_arrays():
    return {"weights": WEIGHTS, "means": MEANS, "covs": COVS}


def to_np(t):
    return t.detach().cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------------------
# Exact-ish probability-flow ODE (for the sanity checks and pf_ode_reference).
# In VE variables y = x/alpha, rho = sigma/alpha: dy/dlog(rho) = y - D(y, rho).
# ---------------------------------------------------------------------------
def pf_ode(y0: np.ndarray, rho0: float, rho1: float) -> np.ndarray:
    n = y0.shape[0]

    def f(s, y):
        y = y.reshape(n, 2)
        return (y - denoiser(y, 1.0, math.exp(s))).ravel()

    sol = scipy.integrate.solve_ivp(
        f, (math.log(rho0), math.log(rho1)), y0.ravel(), method="DOP853", rtol=1e-12, atol=1e-12
    )
    assert sol.success, sol.message
    return sol.y[:, -1].reshape(n, 2)


def sanity(name, final, ode_final=None, ode_tol=None):
    """Catch a broken setup: samples near the data law (and near the ODE's end)."""
    assert np.all(np.isfinite(final)), name
    mean_err = np.abs(final.mean(axis=0) - MIXTURE_MEAN).max()
    assert mean_err < 0.5, (name, mean_err)
    lp = mixture_logpdf(final)
    assert lp.mean() > -4.0 and lp.min() > -12.0, (name, lp.mean(), lp.min())
    msg = f"{name:28s} |mean-mu|={mean_err:.3f} mean logp0={lp.mean():.3f}"
    if ode_final is not None:
        # Per-sample distance to the accurate ODE end point.  A few samples that
        # start near a boundary between modes may end in another mode with 10-12
        # steps, so the check is on the median; the max is only printed.
        dist = np.linalg.norm(final - ode_final, axis=1)
        assert np.median(dist) < ode_tol, (name, np.median(dist))
        msg += f" |x-x_ode|: median={np.median(dist):.1e} max={dist.max():.1e}"
    print(msg)


def save(out: pathlib.Path, name: str, arrays: dict, meta: dict):
    data = dict(problem_arrays())
    for k, v in arrays.items():
        data[k] = np.asarray(v)
    for k, v in meta.items():
        if isinstance(v, (dict, list)):
            data[k] = np.array(json.dumps(v, sort_keys=True))
        else:
            data[k] = np.array(v)
    data["versions"] = np.array(json.dumps(VERSIONS, sort_keys=True))
    for k, v in data.items():
        assert v.dtype != object, (name, k)
    path = out / f"{name}.npz"
    np.savez_compressed(path, **data)
    size = path.stat().st_size
    assert size < 300_000, (name, size)
    return size


# ---------------------------------------------------------------------------
# A. EDM / k-diffusion (alpha = 1, sigma = t).
# ---------------------------------------------------------------------------
EDM_N, EDM_SMIN, EDM_SMAX, EDM_RHO = 12, 0.002, 80.0, 7.0
# 12 Karras steps are coarse for this mixture: the median distance to the accurate
# PF-ODE end point is 0.03-0.3 (and shrinks with n at each method's order), so the
# sanity bound only catches a broken setup (wrong scaling gives O(1) and more).
EDM_ODE_TOL = 0.5


class KModel:
    """k-diffusion denoiser D(x, sigma) that logs the sigmas it is called at."""

    def __init__(self):
        self.sigmas = []

    def __call__(self, x, sigma, **kw):
        s = sigma.reshape(-1)
        assert torch.all(s == s[0])
        s0 = float(s[0])
        self.sigmas.append(s0)
        return torch.from_numpy(denoiser(to_np(x), 1.0, s0))


class TrajCallback:
    """k-diffusion callbacks fire *before* each step with the step's start state."""

    def __init__(self):
        self.xs, self.sigmas, self.sigma_hats = [], [], []

    def __call__(self, info):
        self.xs.append(to_np(info["x"]).copy())
        self.sigmas.append(float(info["sigma"]))
        self.sigma_hats.append(float(info["sigma_hat"]))


class PreDrawnNoise:
    """noise_sampler(sigma, sigma_next) -> pre-drawn standard normals, step-indexed."""

    def __init__(self, z: np.ndarray, sigmas: np.ndarray):
        self.z, self.sigmas = z, sigmas
        self.used = np.zeros(len(z), dtype=bool)

    def __call__(self, sigma, sigma_next):
        # Index the draw by the step it belongs to (sigma == sigmas[i]).
        i = int(np.flatnonzero(self.sigmas[:-1] == float(sigma))[0])
        assert float(sigma_next) == self.sigmas[i + 1]
        assert not self.used[i]
        self.used[i] = True
        return torch.from_numpy(self.z[i].copy())


class NoNoise:
    """For eta=0: sample_dpmpp_2s_ancestral still calls the sampler (times sigma_up=0)."""

    def __init__(self, like):
        self.like, self.calls = like, 0

    def __call__(self, sigma, sigma_next):
        self.calls += 1
        return torch.zeros(self.like.shape)


@contextlib.contextmanager
def patched_randn_like(z: np.ndarray, record_x: list):
    """Replace sampling.py's torch.randn_like (used by churn) with pre-drawn z.

    sampling.py draws eps = torch.randn_like(x) once per step, *before* churning,
    with x the state at the start of the step: we record that x too.
    """
    real = K.torch
    counter = {"i": 0}

    class Proxy:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def randn_like(x, *a, **kw):
            i = counter["i"]
            counter["i"] += 1
            record_x.append(to_np(x).copy())
            return torch.from_numpy(z[i].copy()).to(x.dtype)

    K.torch = Proxy()
    try:
        yield counter
    finally:
        K.torch = real


def edm_fixtures(out, rng_x, rng_noise):
    sigmas_t = K.get_sigmas_karras(EDM_N, EDM_SMIN, EDM_SMAX, rho=EDM_RHO)
    assert sigmas_t.dtype == torch.float64
    sigmas = to_np(sigmas_t)
    n_steps = len(sigmas) - 1
    z0 = rng_x.standard_normal((N_SAMPLES, 2))
    x_T = sigmas[0] * z0
    ode_end = pf_ode(x_T, EDM_SMAX, EDM_SMIN)  # at sigma_min (last step to 0 is ~D)
    sizes = {}

    common_arrays = {"sigmas": sigmas, "x_T": x_T, "z0": z0}
    grid_meta = {
        "grid": f"k_diffusion.sampling.get_sigmas_karras(n={EDM_N}, sigma_min={EDM_SMIN}, "
        f"sigma_max={EDM_SMAX}, rho={EDM_RHO}) (float64, ends with 0)",
        "convention": "EDM/k-diffusion: alpha=1, sigma=t; model D(x, sigma) = exact mixture denoiser",
    }

    def run(name, fn, kwargs, ode_tol, *, extra_arrays=None, extra_meta=None, noise=None):
        model, cb = KModel(), TrajCallback()
        x = torch.from_numpy(x_T.copy())
        final = to_np(fn(model, x, sigmas_t, callback=cb, disable=True, **kwargs))
        traj = np.stack(cb.xs + [final])
        assert traj.shape == (n_steps + 1, N_SAMPLES, 2), traj.shape
        assert np.array_equal(traj[0], x_T)
        arrays = dict(common_arrays, traj=traj, model_sigmas=np.array(model.sigmas))
        if noise is not None:
            arrays["z"], arrays["z_used"] = noise.z, noise.used
        arrays.update(extra_arrays or {})
        meta = dict(grid_meta, sampler=name, reference=f"k_diffusion.sampling.{fn.__name__}",
                    config=kwargs_meta(kwargs), float64_inside=True, nfe=len(model.sigmas))
        meta.update(extra_meta or {})
        sanity(name, final, ode_end if ode_tol is not None else None, ode_tol)
        sizes[name] = save(out, name, arrays, meta)
        return traj

    def kwargs_meta(kwargs):
        return {k: (v if isinstance(v, (int, float, str)) else type(v).__name__) for k, v in kwargs.items()}

    run("edm_euler", K.sample_euler, {}, EDM_ODE_TOL)
    run("edm_heun", K.sample_heun, {}, EDM_ODE_TOL)
    run("edm_dpmpp_2m", K.sample_dpmpp_2m, {}, EDM_ODE_TOL)
    run("edm_dpmpp_3m", K.sample_dpmpp_3m_sde, {"eta": 0.0, "noise_sampler": NoNoise(x_T)}, EDM_ODE_TOL,
        extra_meta={"note": "sample_dpmpp_3m_sde with eta=0 (deterministic DPM-Solver++(3M)); the step to sigma=0 returns the denoised value"})
    run("edm_dpmpp_2s", K.sample_dpmpp_2s_ancestral, {"eta": 0.0, "noise_sampler": NoNoise(x_T)}, EDM_ODE_TOL,
        extra_meta={"note": "eta=0: DPM-Solver++(2S) with r=1/2 in lambda=-log(sigma): intermediate sigma_s = sqrt(sigma_i*sigma_{i+1}) (geometric mean), "
                    "update x = (sigma_{i+1}/sigma_i) x - expm1(-h) D(x_s, sigma_s), i.e. only the midpoint denoised value; last step (to 0) is Euler = D(x, sigma_i)"})

    # Euler ancestral, eta=1, injected noise (one pre-drawn normal per step; the
    # last step, to sigma=0, draws none: z_used[-1] is False).
    z = rng_noise.standard_normal((n_steps, N_SAMPLES, 2))
    noise = PreDrawnNoise(z, sigmas)
    run("edm_euler_ancestral", K.sample_euler_ancestral, {"eta": 1.0, "s_noise": 1.0, "noise_sampler": noise}, None,
        noise=noise, extra_meta={"note": "x <- x + (sigma_down - sigma_i) (x - D)/sigma_i, then + sigma_up z[i] if sigma_{i+1} > 0; "
                                 "sigma_up = min(sigma_{i+1}, eta sqrt(sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2)/sigma_i^2)), sigma_down = sqrt(sigma_{i+1}^2 - sigma_up^2)"})

    # Heun with churn: sampling.py draws eps = randn_like(x) every step (used only
    # where gamma > 0); we inject z and record the pre-churn states.
    churn = {"s_churn": 10.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}
    z = rng_noise.standard_normal((n_steps, N_SAMPLES, 2))
    pre_churn = []
    gammas = np.array([min(churn["s_churn"] / n_steps, 2**0.5 - 1) if churn["s_tmin"] <= s <= churn["s_tmax"] else 0.0
                       for s in sigmas[:-1]])
    model, cb = KModel(), TrajCallback()
    with patched_randn_like(z, pre_churn) as counter:
        final = to_np(K.sample_heun(model, torch.from_numpy(x_T.copy()), sigmas_t, callback=cb, disable=True, **churn))
    assert counter["i"] == n_steps
    traj = np.stack(pre_churn + [final])
    assert np.array_equal(traj[0], x_T)
    sigma_hats = np.array(cb.sigma_hats)
    assert np.allclose(sigma_hats, sigmas[:-1] * (1 + gammas), rtol=1e-15, atol=0)
    # The callback sees the churned state x_hat = x + sqrt(sigma_hat^2 - sigma^2) s_noise z.
    x_hat = np.stack(cb.xs)
    expect = traj[:-1] + np.sqrt(sigma_hats**2 - sigmas[:-1] ** 2)[:, None, None] * churn["s_noise"] * z
    assert np.allclose(x_hat, expect, rtol=0, atol=1e-12)
    name = "edm_heun_churn"
    sanity(name, final)
    sizes[name] = save(
        out, name,
        dict(common_arrays, traj=traj, z=z, z_used=gammas > 0, gammas=gammas, sigma_hats=sigma_hats,
             x_hat=x_hat, model_sigmas=np.array(model.sigmas)),
        dict(grid_meta, sampler=name, reference="k_diffusion.sampling.sample_heun", config=churn,
             float64_inside=True, nfe=len(model.sigmas),
             note="EDM Alg. 2: gamma_i = min(s_churn/n_steps, sqrt2-1) if s_tmin <= sigma_i <= s_tmax else 0; "
                  "sigma_hat = sigma_i (1+gamma_i); x_hat = x + sqrt(sigma_hat^2 - sigma_i^2) s_noise z[i]; Heun from sigma_hat to sigma_{i+1} "
                  "(Euler on the last step, to 0). z[i] is drawn every step and used only where z_used (gamma>0). "
                  "traj holds pre-churn states; x_hat the churned ones."),
    )

    # DPM-Solver-fast (singlestep, internal grid uniform in t = -log sigma).
    n_fast = 10
    model, cb = KModel(), TrajCallback()
    final = to_np(K.sample_dpm_fast(model, torch.from_numpy(x_T.copy()), EDM_SMIN, EDM_SMAX, n_fast,
                                    callback=cb, disable=True, eta=0.0, noise_sampler=NoNoise(x_T)))
    m = n_fast // 3 + 1
    ts = np.linspace(-math.log(EDM_SMAX), -math.log(EDM_SMIN), m + 1)
    orders = [3] * (m - 2) + [2, 1] if n_fast % 3 == 0 else [3] * (m - 1) + [n_fast % 3]
    fast_sigmas = np.exp(-ts)
    assert np.allclose(np.array(cb.sigmas), fast_sigmas[:-1], rtol=1e-14, atol=0), (cb.sigmas, fast_sigmas)
    assert len(model.sigmas) == n_fast == sum(orders)
    # Check each outer step's NFE sigmas against the order: r = (1/3, 2/3) for 3, 1/2 for 2.
    it = iter(model.sigmas)
    for i, o in enumerate(orders):
        h = ts[i + 1] - ts[i]
        rs = {1: [0.0], 2: [0.0, 0.5], 3: [0.0, 1 / 3, 2 / 3]}[o]
        for r in rs:
            assert abs(next(it) - math.exp(-(ts[i] + r * h))) < 1e-12 * EDM_SMAX
    traj = np.stack(cb.xs + [final])
    assert traj.shape == (len(orders) + 1, N_SAMPLES, 2)
    name = "edm_dpm_fast"
    sanity(name, final, ode_end, 1.0)  # 4 outer steps of h = log(4e4)/4: coarse (0.015 at n=31)
    sizes[name] = save(
        out, name,
        dict(sigmas=fast_sigmas, orders=np.array(orders), lambdas=ts, x_T=x_T, z0=z0, traj=traj,
             model_sigmas=np.array(model.sigmas)),
        dict(sampler=name, reference="k_diffusion.sampling.sample_dpm_fast (DPMSolver.dpm_solver_fast)",
             config={"sigma_min": EDM_SMIN, "sigma_max": EDM_SMAX, "n": n_fast, "eta": 0.0},
             convention=grid_meta["convention"], float64_inside=True, nfe=n_fast,
             grid="outer grid: t = -log(sigma) uniform, linspace(-log sigma_max, -log sigma_min, n//3 + 2); ends at sigma_min (no step to 0)",
             note="orders: n//3+1 outer steps; n%3==0 -> [3,..,3,2,1] else [3,..,3,n%3]. DPM-Solver (eps form, alpha=1): "
                  "order 2 uses r1=1/2, order 3 r1=1/3, r2=2/3 (intermediate sigma = exp(-(t + r h))). traj: one entry per outer step; "
                  "x_T is sigma_max*z0 = sigmas[0]*z0."),
    )
    return {"x_T": x_T, "z0": z0, "sigma_max": EDM_SMAX, "sigma_min": EDM_SMIN, "x_end": ode_end}, sizes


# ---------------------------------------------------------------------------
# B. VP linear, continuous time / diffusers.
# ---------------------------------------------------------------------------
B0, B1 = 0.1, 20.0
VP_N = 10  # steps; 11 grid points
VP_ODE_TOL = 0.5  # median distance to the accurate PF-ODE end point (see EDM_ODE_TOL)


def vp_log_alpha(t):
    return -0.25 * t**2 * (B1 - B0) - 0.5 * t * B0


def vp_lambda(t):
    la = vp_log_alpha(t)
    return la - 0.5 * np.log(-np.expm1(2 * la))


def vp_t_of_lambda(lam):
    L = np.log1p(np.exp(-2 * lam))
    return 2 * L / (np.sqrt(B0**2 + 2 * (B1 - B0) * L) + B0)


def vp_grid():
    lam = np.linspace(vp_lambda(1.0), vp_lambda(1e-3), VP_N + 1)
    ts = vp_t_of_lambda(lam)
    ts[0], ts[-1] = 1.0, 1e-3  # the inverse is exact to ~1e-16; pin the ends
    log_a = vp_log_alpha(ts)
    alphas = np.exp(log_a)
    sigmas = np.sqrt(-np.expm1(2 * log_a))
    assert np.allclose(vp_lambda(ts), lam, rtol=0, atol=1e-12)
    return ts, vp_lambda(ts), alphas, sigmas


def vp_fixtures(out, rng_x):
    ts, lambdas, alphas, sigmas = vp_grid()
    sigmas_ve = sigmas / alphas
    z0 = rng_x.standard_normal((N_SAMPLES, 2))
    x_T = sigmas[0] * z0
    ode_end = alphas[-1] * pf_ode(x_T / alphas[0], sigmas_ve[0], sigmas_ve[-1])  # VP-scaled at t=1e-3
    sizes, precision = {}, {}

    grid_arrays = {"ts": ts, "lambdas": lambdas, "alphas": alphas, "sigmas": sigmas, "sigmas_ve": sigmas_ve,
                   "x_T": x_T, "z0": z0}
    grid_meta = {
        "grid": "VP linear (beta0=0.1, beta1=20), 11 times from t=1 to t=1e-3 uniform in lambda=log(alpha/sigma); "
                "sigmas = VP sigma, sigmas_ve = sigma/alpha (written over the scheduler's sigma table)",
        "convention": "VP-scaled samples, x_T = sigmas[0]*z0; model output = exact denoiser x0 = D(x; alphas[i], sigmas[i]) "
                      "(diffusers prediction_type='sample')",
    }

    def closed_form_first_step(x, d0):
        h = lambdas[1] - lambdas[0]
        return (sigmas[1] / sigmas[0]) * x - alphas[1] * np.expm1(-h) * d0

    def run(name, sched, reference, config, note, *, table):
        sched.set_timesteps(VP_N)
        timesteps = [int(t) for t in sched.timesteps]
        assert len(timesteps) == VP_N and len(set(timesteps)) == VP_N, timesteps
        if table == "sigmas":
            assert len(sched.sigmas) == VP_N + 1
            sched.sigmas = torch.from_numpy(sigmas_ve.copy())
        elif table == "alphas_cumprod":  # DDIM: indexed by integer timestep; prev = t - 1000//10
            acp = sched.alphas_cumprod.to(torch.float64).clone()
            stride = sched.config.num_train_timesteps // VP_N
            for i, t in enumerate(timesteps):
                acp[t] = alphas[i] ** 2
                if i + 1 < VP_N:
                    assert timesteps[i + 1] == t - stride
            assert timesteps[-1] - stride < 0
            sched.alphas_cumprod = acp
            sched.final_alpha_cumprod = torch.tensor(alphas[-1] ** 2)
        x = torch.from_numpy(x_T.copy())
        traj, corrected = [x_T.copy()], []
        for i, t in enumerate(timesteps):
            d = torch.from_numpy(denoiser(to_np(x), alphas[i], sigmas[i]))
            x_prev = x
            x = sched.step(d, t, x).prev_sample
            assert x.dtype == torch.float64
            if i == 0:
                err = np.abs(to_np(x) - closed_form_first_step(x_T, to_np(d))).max()
                scale = np.abs(to_np(x)).max()
                assert err < 1e-5 * scale, (name, err)  # the scheduler really uses this grid
                f64 = bool(err < 1e-12 * scale)
            if hasattr(sched, "last_sample") and i > 0:  # UniPC: corrected start state of step i
                corrected.append(to_np(sched.last_sample))
            traj.append(to_np(x).copy())
            del x_prev
        if table == "sigmas":  # the table was not reset or recast during the run
            assert sched.sigmas.dtype == torch.float64 and np.array_equal(to_np(sched.sigmas), sigmas_ve)
        traj = np.stack(traj)
        arrays = dict(grid_arrays, traj=traj, timestep_labels=np.array(timesteps))
        if corrected:
            arrays["traj_corrected"] = np.stack([x_T] + corrected + [traj[-1]])
        precision[name] = (f64, err / scale)
        meta = dict(grid_meta, sampler=name, reference=reference, config=config, float64_inside=f64,
                    first_step_rel_err=float(err / scale), note=note, nfe=VP_N)
        sanity(name, traj[-1], ode_end, VP_ODE_TOL)
        sizes[name] = save(out, name, arrays, meta)
        return traj

    # DDIM (eta=0): alphas_cumprod entries at the 10 used timesteps written over.
    cfg = dict(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=True, prediction_type="sample",
               timestep_spacing="leading", steps_offset=0)
    run("vp_ddim", DDIMScheduler(**cfg), "diffusers.DDIMScheduler.step(eta=0)", dict(cfg, eta=0.0),
        "alphas_cumprod[timestep_labels[i]] := alphas[i]^2 and final_alpha_cumprod := alphas[-1]^2 (DDIM indexes its table by "
        "integer timestep, prev = t - 100); x_{i+1} = alphas[i+1] x0 + sigmas[i+1] (x - alphas[i] x0)/sigmas[i]",
        table="alphas_cumprod")

    for algo, order in [("dpmsolver", 1), ("dpmsolver", 2), ("dpmsolver", 3), ("dpmsolver++", 2), ("dpmsolver++", 3)]:
        cfg = dict(algorithm_type=algo, solver_order=order, solver_type="midpoint", prediction_type="sample",
                   lower_order_final=False, euler_at_final=False, final_sigmas_type="sigma_min", thresholding=False)
        name = f"vp_{algo.replace('++', 'pp')}{order}"
        run(name, DPMSolverMultistepScheduler(**cfg), "diffusers.DPMSolverMultistepScheduler", cfg,
            "multistep; warm-up: step k uses order min(solver_order, k+1); no lower-order final step (final sigma is the "
            "grid's last point, not 0); order 2 is the 'midpoint' form; 'dpmsolver' converts x0 to eps=(x-alpha x0)/sigma",
            table="sigmas")

    for solver_type in ("bh1", "bh2"):
        for order in (1, 2, 3):
            cfg = dict(solver_order=order, solver_type=solver_type, predict_x0=True, prediction_type="sample",
                       lower_order_final=False, disable_corrector=[], final_sigmas_type="sigma_min", thresholding=False)
            name = f"vp_unipc_{solver_type}_{order}"
            run(name, UniPCMultistepScheduler(**cfg), "diffusers.UniPCMultistepScheduler", cfg,
                "UniPC: step i first corrects the state that step i-1 predicted (UniC, order = previous predictor order, "
                "using the model output at the *uncorrected* predictor), then predicts from the corrected state (UniP, "
                "warm-up order min(p, i+1)); the model output at the uncorrected predictor is reused as history. "
                "traj = what step() returns (uncorrected predictor values; the final sample is never corrected); "
                "traj_corrected[i] = corrected state at grid point i (equal to traj at i=0 and at the end). "
                "Order-2 predictor uses rho=1/2, order-1 corrector rho=1/2.",
                table="sigmas")

    for order in (1, 2, 3):
        cfg = dict(solver_order=order, solver_type="logrho", algorithm_type="deis", prediction_type="sample",
                   lower_order_final=False, thresholding=False)
        name = f"vp_deis{order}"
        run(name, DEISMultistepScheduler(**cfg), "diffusers.DEISMultistepScheduler", cfg,
            "DEIS logrho: eps = (x - alpha x0)/sigma extrapolated by a Lagrange polynomial in log(rho), rho = sigma/alpha, "
            "integrated exactly in rho; warm-up order min(p, k+1); no lower-order final step",
            table="sigmas")

    # Cross-checks against k-diffusion in VE variables (y = x/alpha, rho = sigma/alpha).
    ve = torch.from_numpy(sigmas_ve.copy())
    yT = torch.from_numpy(x_T / alphas[0])
    kmodel = KModel()
    y_euler = to_np(K.sample_euler(kmodel, yT.clone(), ve, disable=True))
    y_2m = to_np(K.sample_dpmpp_2m(KModel(), yT.clone(), ve, disable=True))
    cross = {
        "vp_ddim_vs_k_euler": float(np.abs(np.load(out / "vp_ddim.npz")["traj"][-1] - alphas[-1] * y_euler).max()),
        "vp_dpmsolverpp2_vs_k_dpmpp_2m": float(np.abs(np.load(out / "vp_dpmsolverpp2.npz")["traj"][-1] - alphas[-1] * y_2m).max()),
    }
    print("cross-checks", cross)
    assert cross["vp_ddim_vs_k_euler"] < 1e-12
    assert cross["vp_dpmsolverpp2_vs_k_dpmpp_2m"] < 1e-4
    return {"x_T": x_T, "z0": z0, "alphas": alphas, "sigmas": sigmas, "sigmas_ve": sigmas_ve, "x_end": ode_end}, sizes, precision, cross


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng_x = np.random.default_rng(SEED_X)
    rng_noise = np.random.default_rng(SEED_NOISE)
    print("versions", VERSIONS)

    edm, sizes = edm_fixtures(out, rng_x, rng_noise)
    vp, vp_sizes, precision, cross = vp_fixtures(out, rng_x)
    sizes.update(vp_sizes)

    sizes["pf_ode_reference"] = save(
        out, "pf_ode_reference",
        {"edm_x_T": edm["x_T"], "edm_x_end": edm["x_end"], "edm_sigma_start": EDM_SMAX, "edm_sigma_end": EDM_SMIN,
         "vp_x_T": vp["x_T"], "vp_x_end": vp["x_end"], "vp_t_start": 1.0, "vp_t_end": 1e-3,
         "vp_alphas_ends": vp["alphas"][[0, -1]], "vp_sigmas_ends": vp["sigmas"][[0, -1]]},
        {"reference": "scipy.integrate.solve_ivp(DOP853, rtol=1e-12, atol=1e-12) on dy/dlog(rho) = y - D(y; 1, rho), "
                      "y = x/alpha, rho = sigma/alpha",
         "note": "exact-ish probability-flow ODE end points from the same x_T as the edm_* (sigma 80 -> 0.002) and vp_* "
                 "(t 1 -> 1e-3, VP-scaled) fixtures; not a library output"},
    )
    import sde_fixtures  # beside this script

    sizes.update(sde_fixtures.run(out, sys.modules[__name__]))
    total = sum(sizes.values())
    print("precision (float64_inside, first-step rel err):")
    for k, (f, e) in precision.items():
        print(f"  {k:22s} {f!s:5s} {e:.1e}")
    print("sizes:", {k: v for k, v in sorted(sizes.items())}, "total", total)
    assert total < 2_000_000


if __name__ == "__main__":
    main()
