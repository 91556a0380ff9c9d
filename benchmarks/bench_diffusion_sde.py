"""The SDE rows of bench_diffusion.py: SDE-DPM-Solver++ 2M (eta = 1), 20 NFE, the same MLP, batch,
grid and x_T as the ODE rows (VP linear, t = 1 -> 1e-3 uniform in log-SNR, float32, CPU).

- sdekit: `jax.jit(lambda x: skd.sample(model, skd.samplers.dpm_solver_pp_sde(2), x, ts, key=key))`,
  the noise from a `BrownianTree` (depth 18 over the grid's span);
- the same sampler's `init`/`step` in a hand-written `lax.scan`, with the tree's
  `grid_increments` ("tree, own scan") or with normals drawn by `jax.random.normal` in the same
  jitted call ("pre-drawn normals"): the tree's cost is sdekit / pre-drawn normals;
- k-diffusion's `sample_dpmpp_2m_sde` with its default `BrownianTreeNoiseSampler` (torchsde,
  built inside each call), the network as a VE denoiser as in the ODE rows;
- diffusers' `DPMSolverSDEScheduler` (its singlestep SDE-DPM-Solver++ 2S with a torchsde
  Brownian tree; it has no 2M SDE scheduler on a Brownian tree) on the same grid of 10 steps
  (its sigma table overwritten; it appends sigma = 0, so 2 x 11 - 1 = 21 NFE).

    python benchmarks/bench_diffusion.py --sde     # this section only
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk
import sdekit.diffusion as skd

KEY_SEED = 5


def jax_entries(bench, net):
    model = skd.Model(net, skd.VP.linear(), prediction="eps")
    ts = skd.time_grid(skd.VP.linear(), bench.STEPS, "log_snr")
    sampler = skd.samplers.dpm_solver_pp_sde(2)
    key = jax.random.key(KEY_SEED)
    problem = skd.reverse_sde(model)
    s = -ts

    def scan(x, incs):
        state = sampler.init(problem, s[0], x, None)

        def body(carry, k):
            x, state = carry
            inc = jax.tree.map(lambda v: v[k], incs)
            x, _, _, state = sampler.step(problem, s[k], s[k + 1], x, None, inc, state)
            return (x, state), None

        return jax.lax.scan(body, (x, state), jnp.arange(bench.STEPS))[0][0]

    from sdekit.diffusion._sample import TREE_DEPTH, _tree_tol

    tol = _tree_tol(s)  # as skd.sample builds its tree

    def tree_scan(x):
        tree = sk.BrownianTree(key, s[0], s[-1], shape=x.shape, dtype=x.dtype, tol=tol, depth=TREE_DEPTH)
        return scan(x, tree.grid_increments(s))

    def normals_scan(x):
        dt = jnp.diff(s).astype(x.dtype)
        z = jax.random.normal(key, (bench.STEPS, *x.shape), x.dtype)
        return scan(x, sk.Increment(dt=dt, W=z * jnp.sqrt(dt)[:, None, None], H=None, K=None))

    return {"sdekit": lambda x: skd.sample(model, sampler, x, ts, key=key), "tree, own scan": tree_scan,
            "pre-drawn normals": normals_scan}


def k_diffusion_run(bench, torch, k_sampling, net):
    ts, alpha, sigma, _ = bench.grid()
    rhos = torch.from_numpy((sigma / alpha).astype(np.float32))
    a0, a_end = float(alpha[0]), float(alpha[-1])
    denoiser = _ve_denoiser(bench, torch, net)

    def run(x):
        with torch.no_grad():
            return a_end * k_sampling.sample_dpmpp_2m_sde(denoiser, x / a0, rhos, disable=True, eta=1.0)

    return run


def _ve_denoiser(bench, torch, net):
    def denoiser(y, rho):  # D(y; rho) = y - rho eps(alpha y, t(rho)), rho: (batch,) or 0-d
        rho = rho.reshape(-1)[:1].expand(y.shape[0])
        big_l = torch.log1p(rho * rho)
        t = 2 * big_l / (torch.sqrt(bench.B0**2 + 2 * (bench.B1 - bench.B0) * big_l) + bench.B0)
        a = torch.rsqrt(1 + rho * rho)[:, None]
        return y - rho[:, None] * net(a * y, t[0])

    return denoiser


def diffusers_run(bench, torch, diffusers, net):
    """(setup, run): DPMSolverSDEScheduler on the 10-step grid (rho = sigma/alpha) in VE scaling."""
    ts, alpha, sigma, _ = grid10 = _grid(bench, bench.STEPS // 2)
    rho = (sigma / alpha).astype(np.float32)
    table = torch.from_numpy(np.concatenate([rho[:1], np.repeat(rho[1:], 2), [0.0]]).astype(np.float32))
    scheduler = diffusers.DPMSolverSDEScheduler(prediction_type="epsilon")
    denoiser = _ve_denoiser(bench, torch, net)
    a0, a_end = float(alpha[0]), float(alpha[-1])
    del grid10

    def setup():
        scheduler.set_timesteps(len(rho))
        assert len(scheduler.sigmas) == len(table)
        scheduler.sigmas = table.clone()
        return scheduler

    def run(x):
        y = x / a0
        with torch.no_grad():
            for label in scheduler.timesteps:
                index = 0 if scheduler.step_index is None else scheduler.step_index
                s_in = scheduler.sigmas[index] if scheduler.state_in_first_order else scheduler.mid_point_sigma
                s_in = torch.as_tensor(s_in, dtype=torch.float32)
                eps = (y - denoiser(y, s_in)) / s_in
                y = scheduler.step(eps, label, y).prev_sample
        return a_end * y  # the last step goes to sigma = 0: the data prediction, alpha ~ 1

    return setup, run


def _grid(bench, steps):
    ts = np.asarray(skd.time_grid(skd.VP.linear(), steps, "log_snr"), np.float64)
    log_alpha = -0.25 * ts**2 * (bench.B1 - bench.B0) - 0.5 * ts * bench.B0
    alpha = np.exp(log_alpha)
    sigma = np.sqrt(-np.expm1(2 * log_alpha))
    return ts, alpha, sigma, np.log(alpha / sigma)


def run_section(bench) -> str:
    """Time every SDE row; return the markdown section."""
    bench.warm_up_xla()
    x = jnp.asarray(bench.x_T())
    net = bench.jax_mlp(bench.weights())
    compiled = {name: jax.jit(fn).lower(x).compile() for name, fn in jax_entries(bench, net).items()}
    times = bench.alternating_seconds(compiled, x, bench.REPEATS_MLP)
    outs = {name: np.asarray(fn(x)) for name, fn in compiled.items()}
    np.testing.assert_array_equal(outs["sdekit"], outs["tree, own scan"])  # the same noise, the same steps
    loaded, note = bench.load_torch()
    info = {}
    if loaded is not None:
        torch, diffusers, k_sampling = loaded
        info = {"torch_threads": torch.get_num_threads()}
        xt = torch.from_numpy(bench.x_T())
        tnet = bench.torch_mlp(torch, bench.weights())
        repeats = bench.REPEATS_MLP // 3
        times["k-diffusion"], outs["k-diffusion"] = bench.torch_seconds(
            lambda: None, k_diffusion_run(bench, torch, k_sampling, tnet), xt, repeats)
        setup, run = diffusers_run(bench, torch, diffusers, tnet)
        times["diffusers"], outs["diffusers"] = bench.torch_seconds(setup, run, xt, repeats)
    return report(bench, times, outs, note, info)


LABELS = {
    "sdekit": "sdekit `skd.sample(..., dpm_solver_pp_sde(2), ..., key=key)` (Brownian tree)",
    "tree, own scan": "the sampler's steps in a hand-written `lax.scan`, tree `grid_increments`",
    "pre-drawn normals": "the sampler's steps in a hand-written `lax.scan`, `jax.random.normal` noise",
    "k-diffusion": "k-diffusion `sample_dpmpp_2m_sde` + torchsde `BrownianTreeNoiseSampler` (torch)",
    "diffusers": "diffusers `DPMSolverSDEScheduler` (2S, torchsde tree; 21 NFE) (torch)",
}


def report(bench, times, outs, note, info) -> str:
    ours, drawn = times["sdekit"], times["pre-drawn normals"]
    rows = [[label, f"{times[k] * 1e3:.2f}", f"{times[k] / ours:.2f}x", f"{times[k] / drawn:.3f}x"]
            for k, label in LABELS.items() if k in times]
    lines = [f"- sdekit (tree) / the same steps with pre-drawn normals: **{ours / drawn:.3f}x** (goal <= 1.10x: "
             f"{'met' if ours / drawn <= 1.10 else 'not met'}); the tree alone (own scan): "
             f"{times['tree, own scan'] / drawn:.3f}x."]
    for lib in ("k-diffusion", "diffusers"):
        if lib in times:
            lines.append(f"- {lib} / sdekit: **{times[lib] / ours:.2f}x**.")
    mean = {k: float(np.mean(v)) for k, v in outs.items()}
    lines.append("- mean of x_0 (different Brownian paths, so only the law agrees): "
                 + ", ".join(f"{k} {v:+.3f}" for k, v in mean.items()) + ".")
    return (
        "<!-- sde rows: written by `python benchmarks/bench_diffusion.py --sde` -->\n"
        f"## SDE-DPM-Solver++ 2M, {bench.STEPS} NFE, eta = 1\n\n"
        f"Same network, batch, grid and x_T as above; run time: median of {bench.REPEATS_MLP} runs for JAX "
        f"(alternating), {bench.REPEATS_MLP // 3} for torch; the noise is drawn inside each timed call in every row "
        f"(sdekit's tree, `jax.random.normal`, torchsde's trees).\n\n"
        + bench.markdown_table(["method", "run, MLP (ms)", "/ sdekit", "/ pre-drawn normals"], rows) + "\n\n"
        + "\n".join(lines) + "\n\n"
        + (f"Note: {note}.\n\n" if note else "")
        + f"Load: `{bench.load()}`{', ' + str(info) if info else ''}\n"
        + "<!-- end sde rows -->\n"
    )
