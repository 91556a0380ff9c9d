"""Diffusion sampling benchmark: DPM-Solver++ 2M, 20 NFE, batch 256 x 64, an MLP denoiser, CPU.

One process runs every row side by side on the same `x_T` and the same network weights (built
in numpy from a fixed seed, loaded into JAX and torch):

- sdekit: `jax.jit(lambda x: skd.sample(model, skd.samplers.dpm_solver_pp(order=2), x, ts))`;
- a hand-written `lax.scan` of the same 2M update, every coefficient precomputed from the grid
  in numpy (the limit for this network in JAX); its x_0 is asserted equal to sdekit's;
- diffusers' `DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2)` loop
  in torch, with its sigma table overwritten by the same grid (sigma/alpha), as
  `benchmarks/diffusion_references/make_fixtures.py` does;
- k-diffusion's `sample_dpmpp_2m` in torch, the network wrapped as a denoiser in the
  VE-equivalent coordinates rho = sigma/alpha, y = x/alpha (sampling.py loaded by file, as the
  fixture script does).

Then the same four with a trivial network (`eps = 0.5 x`): the loop overhead alone, per step.
The grid is `skd.time_grid(skd.VP.linear(), 20, "log_snr")` (t = 1 -> 1e-3, no step to sigma = 0);
the network is eps-prediction: x (64) and a 16-feature sinusoidal embedding of t, three hidden
layers of width 256, SiLU; float32 everywhere. Prints the table with ratios and writes
benchmarks/results/diffusion.md.

The torch rows need torch, diffusers and k-diffusion (in the environment of
benchmarks/diffusion_references/README.md, plus `pip install -e .` for sdekit); without them
they are skipped with a note and the JAX rows still run.

    python benchmarks/bench_diffusion.py            # all rows
    python benchmarks/bench_diffusion.py --sde      # the SDE rows only (bench_diffusion_sde.py)
"""

import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

import sdekit.diffusion as skd

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import compile_seconds, first_compile_seconds, markdown_table, warm_up_xla  # noqa: E402

BATCH, DIM, WIDTH, HIDDEN, N_FREQ, STEPS = 256, 64, 256, 3, 8, 20
SEED_WEIGHTS, SEED_X = 0, 1
B0, B1 = 0.1, 20.0  # skd.VP.linear()'s betas
REPEATS_MLP, REPEATS_TRIVIAL = 41, 501  # JAX runs (median); torch uses a third of these
RESULTS = pathlib.Path(__file__).parent / "results" / "diffusion.md"


# ---------------------------------------------------------------------------
# The problem: grid, weights, x_T (numpy, shared by every library).
# ---------------------------------------------------------------------------
def grid():
    """The sdekit grid as float64 numpy, with alpha, sigma, lambda at its points (VP linear)."""
    ts = np.asarray(skd.time_grid(skd.VP.linear(), STEPS, "log_snr"), np.float64)
    log_alpha = -0.25 * ts**2 * (B1 - B0) - 0.5 * ts * B0
    alpha = np.exp(log_alpha)
    sigma = np.sqrt(-np.expm1(2 * log_alpha))
    return ts, alpha, sigma, np.log(alpha / sigma)


def weights():
    """[(W, b)] float32, in -> WIDTH x HIDDEN -> DIM; He-scaled normals (the output layer 0.1 x LeCun:
    with the skip eps = x + MLP the samples stay O(1)), fixed seed."""
    rng = np.random.default_rng(SEED_WEIGHTS)
    sizes = [DIM + 2 * N_FREQ] + [WIDTH] * HIDDEN + [DIM]
    out = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        scale = np.sqrt(2.0 / n_in) if i < HIDDEN else 0.1 / np.sqrt(n_in)
        out.append(((rng.standard_normal((n_in, n_out)) * scale).astype(np.float32),
                    (0.1 * rng.standard_normal(n_out)).astype(np.float32)))
    return out


FREQS = np.exp(np.linspace(0.0, np.log(1000.0), N_FREQ)).astype(np.float32)  # t in [1e-3, 1]


def x_T():
    _, _, sigma, _ = grid()
    z = np.random.default_rng(SEED_X).standard_normal((BATCH, DIM))
    return (sigma[0] * z).astype(np.float32)


# ---------------------------------------------------------------------------
# JAX: the network, sdekit, the hand-written scan.
# ---------------------------------------------------------------------------
def jax_mlp(params):
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
    freqs = jnp.asarray(FREQS)

    def fn(x, t, args=None):
        ft = t * freqs
        emb = jnp.broadcast_to(jnp.concatenate([jnp.sin(ft), jnp.cos(ft)]), (x.shape[0], 2 * N_FREQ))
        h = jnp.concatenate([x, emb], axis=1)
        for w, b in params[:-1]:
            h = jax.nn.silu(h @ w + b)
        w, b = params[-1]
        return x + (h @ w + b)

    return fn


def jax_trivial(x, t, args=None):
    return x * 0.5


def sdekit_fn(net):
    model = skd.Model(net, skd.VP.linear(), prediction="eps")
    ts = skd.time_grid(skd.VP.linear(), STEPS, "log_snr")
    sampler = skd.samplers.dpm_solver_pp(order=2)
    return lambda x: skd.sample(model, sampler, x, ts)


def hand_coefficients():
    """Per step i (t_i -> t_{i+1}): x_{i+1} = a_i x_i + b_i (c0_i x0_i + c1_i x0_{i-1}), with
    x0_i = (x_i - sigma_i eps_i) / alpha_i: the 2M update (first step first order)."""
    ts, alpha, sigma, lam = grid()
    h = np.diff(lam)
    a = sigma[1:] / sigma[:-1]
    b = -alpha[1:] * np.expm1(-h)
    r = np.concatenate([[np.inf], h[:-1] / h[1:]])  # r_i = h_{i-1} / h_i; inf: first order
    c0, c1 = 1 + 0.5 / r, -0.5 / r
    per_step = np.stack([ts[:-1], 1 / alpha[:-1], sigma[:-1], a, b, c0, c1], axis=1)
    return per_step.astype(np.float32)


def hand_scan_fn(net):
    coeffs = jnp.asarray(hand_coefficients())

    def run(x):
        def step(carry, k):
            x, x0_prev = carry
            t, inv_alpha, sigma, a, b, c0, c1 = (k[j] for j in range(7))
            x0 = (x - sigma * net(x, t)) * inv_alpha
            return (a * x + b * (c0 * x0 + c1 * x0_prev), x0), None

        return jax.lax.scan(step, (x, jnp.zeros_like(x)), coeffs)[0][0]

    return run


def jax_entries():
    net = jax_mlp(weights())
    return {
        ("mlp", "sdekit"): sdekit_fn(net),
        ("mlp", "hand scan"): hand_scan_fn(net),
        ("trivial", "sdekit"): sdekit_fn(jax_trivial),
        ("trivial", "hand scan"): hand_scan_fn(jax_trivial),
    }


ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def alternating_seconds(compiled: dict, x, repeats: int) -> dict:
    """Median wall time of each compiled call, the calls alternating (a, b, a, b, ...) after a
    warm-up each, so that a shared machine's changing load falls on all of them alike."""
    times = {name: [] for name in compiled}
    for fn in compiled.values():
        jax.block_until_ready(fn(x))
    for _ in range(repeats):
        for name, fn in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(x))
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def jax_runs() -> tuple[dict, dict]:
    """Run time and x_0 of every JAX entry, keyed (denoiser, lib); sdekit and the hand scan timed alternately."""
    x = jnp.asarray(x_T())
    compiled = {key: compile_seconds(fn, x)[1] for key, fn in jax_entries().items()}
    runs = {}
    for denoiser, repeats in [("mlp", REPEATS_MLP), ("trivial", REPEATS_TRIVIAL)]:
        pair = {lib: fn for (d, lib), fn in compiled.items() if d == denoiser}
        runs.update({(denoiser, lib): t for lib, t in alternating_seconds(pair, x, repeats).items()})
    return runs, {key: np.asarray(fn(x)) for key, fn in compiled.items()}


def jax_one_thread_runs() -> dict:
    """The JAX rows again in a fresh process with XLA's CPU backend on one thread (diagnostic,
    beside torch on one thread)."""
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD_FLAGS).strip())
    out = subprocess.run([sys.executable, __file__, "--jax-runs"], capture_output=True, text=True, check=True, env=env)
    return {tuple(key.split(":")): t for key, t in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def compile_only(name: str) -> None:
    """Print the first compile time of one entry (run in a fresh process by main)."""
    warm_up_xla()
    denoiser, lib = name.split(":")
    print(compile_seconds(jax_entries()[(denoiser, lib)], jnp.asarray(x_T()))[0])


# ---------------------------------------------------------------------------
# torch: the same network, diffusers' loop, k-diffusion's sample_dpmpp_2m.
# ---------------------------------------------------------------------------
def load_torch():
    """(torch, diffusers, k-diffusion's sampling module) or a reason they are missing."""
    try:
        import diffusers
        import torch
    except ImportError as err:
        return None, f"torch/diffusers not importable ({err.name}): the torch rows are skipped"
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        return None, "k-diffusion not installed (pip install --no-deps k-diffusion): the torch rows are skipped"
    # k-diffusion's __init__ pulls skimage, torchvision, ...: load sampling.py alone under a
    # synthetic package with the one helper it needs (as make_fixtures.py does).
    pkg_dir = pathlib.Path(list(spec.submodule_search_locations)[0])
    pkg, utils = types.ModuleType("k_diffusion"), types.ModuleType("k_diffusion.utils")
    pkg.__path__ = []
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    pkg.utils = utils
    sys.modules.update({"k_diffusion": pkg, "k_diffusion.utils": utils})
    sspec = importlib.util.spec_from_file_location("k_diffusion.sampling", pkg_dir / "sampling.py")
    k_sampling = importlib.util.module_from_spec(sspec)
    sys.modules["k_diffusion.sampling"] = k_sampling
    try:
        sspec.loader.exec_module(k_sampling)
    except ImportError as err:
        return None, f"k-diffusion's sampling.py needs {err.name}: the torch rows are skipped"
    return (torch, diffusers, k_sampling), None


def torch_mlp(torch, params):
    layers = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in params]
    freqs = torch.from_numpy(FREQS)
    silu = torch.nn.functional.silu

    def net(x, t):
        """t: a 0-d tensor (one time for the batch) or a (batch,) tensor."""
        ft = t[..., None] * freqs
        emb = torch.cat([torch.sin(ft), torch.cos(ft)], dim=-1).expand(x.shape[0], 2 * N_FREQ)
        h = torch.cat([x, emb], dim=1)
        for w, b in layers[:-1]:
            h = silu(torch.addmm(b, h, w))
        w, b = layers[-1]
        return x + torch.addmm(b, h, w)

    return net


def torch_trivial(x, t):
    return x * 0.5


def diffusers_run(torch, diffusers, net):
    """(setup, run): a fresh scheduler on our grid (setup, untimed), then the sampling loop."""
    ts, alpha, sigma, _ = grid()
    sigmas_ve = torch.from_numpy((sigma / alpha).astype(np.float32))
    t_feature = [torch.tensor(t, dtype=torch.float32) for t in ts[:-1].astype(np.float32)]
    config = dict(algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", prediction_type="epsilon",
                  lower_order_final=False, euler_at_final=False, final_sigmas_type="sigma_min", thresholding=False)
    scheduler = diffusers.DPMSolverMultistepScheduler(**config)

    def setup():
        scheduler.set_timesteps(STEPS)
        assert len(scheduler.sigmas) == STEPS + 1
        scheduler.sigmas = sigmas_ve.clone()  # the integer timesteps are labels only
        return scheduler

    def run(x):
        with torch.no_grad():
            for i, label in enumerate(scheduler.timesteps):
                x = scheduler.step(net(x, t_feature[i]), label, x).prev_sample
        return x

    return setup, run


def k_diffusion_run(torch, k_sampling, net):
    """sample_dpmpp_2m in rho = sigma/alpha, y = x/alpha: D(y; rho) = y - rho eps(alpha y, t(rho))."""
    ts, alpha, sigma, _ = grid()
    rhos = torch.from_numpy((sigma / alpha).astype(np.float32))
    a0, a_end = float(alpha[0]), float(alpha[-1])

    def denoiser(y, rho):  # rho: (batch,), as k-diffusion calls it
        big_l = torch.log1p(rho * rho)  # log(1 + e^{-2 lambda}): VP linear's t(lambda) in closed form
        t = 2 * big_l / (torch.sqrt(B0**2 + 2 * (B1 - B0) * big_l) + B0)
        a = torch.rsqrt(1 + rho * rho)[:, None]
        return y - rho[:, None] * net(a * y, t)

    def run(x):
        with torch.no_grad():
            return a_end * k_sampling.sample_dpmpp_2m(denoiser, x / a0, rhos, disable=True)

    return (lambda: None), run


def torch_seconds(setup, run, x, repeats):
    """Median wall time of `run(x)` over `repeats` calls after two warm-up calls (`setup`, untimed, before each)."""
    for _ in range(2):
        setup()
        out = run(x)
    times = []
    for _ in range(repeats):
        setup()
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out.numpy()


# ---------------------------------------------------------------------------
def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), "jax": jax.__version__,
            "numpy": np.__version__}


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main():
    load_before = load()
    warm_up_xla()
    runs, outs = jax_runs()
    # First compile in fresh processes (see _timing.first_compile_seconds).
    compiles = {lib: first_compile_seconds(__file__, "diffusion", f"mlp:{lib}") for lib in ("sdekit", "hand scan")}
    np.testing.assert_allclose(outs["mlp", "sdekit"], outs["mlp", "hand scan"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs["trivial", "sdekit"], outs["trivial", "hand scan"], rtol=1e-5, atol=1e-5)
    for (denoiser, lib), seconds in jax_one_thread_runs().items():
        runs[denoiser, lib + ", 1 thread"] = seconds
        outs[denoiser, lib + ", 1 thread"] = outs[denoiser, lib]  # same program, same result

    info = machine()
    loaded, note = load_torch()
    if loaded is None:
        print(note)
    else:
        torch, diffusers, k_sampling = loaded
        info.update(torch=torch.__version__, diffusers=diffusers.__version__,
                    k_diffusion=_dist_version("k-diffusion"), torch_threads=torch.get_num_threads())
        xt = torch.from_numpy(x_T())
        nets = {"mlp": torch_mlp(torch, weights()), "trivial": torch_trivial}
        # torch's default threads first (the headline rows); then one thread, as a diagnostic:
        # on a shared machine OpenMP's spinning threads can lose more than they gain.
        default_threads = torch.get_num_threads()
        for threads, suffix in [(default_threads, ""), (1, ", 1 thread")]:
            torch.set_num_threads(threads)
            for denoiser, net in nets.items():
                repeats = (REPEATS_MLP if denoiser == "mlp" else REPEATS_TRIVIAL) // 3
                for lib, (setup, run) in [("diffusers", diffusers_run(torch, diffusers, net)),
                                          ("k-diffusion", k_diffusion_run(torch, k_sampling, net))]:
                    runs[denoiser, lib + suffix], outs[denoiser, lib + suffix] = torch_seconds(setup, run, xt, repeats)
        torch.set_num_threads(default_threads)
    load_after = load()

    text = report(runs, outs, compiles, info, note, load_before, load_after)
    print(text)
    RESULTS.write_text(text)
    sde_main()


def sde_main():
    """The SDE rows (bench_diffusion_sde.py), written into RESULTS in place of the previous ones."""
    import bench_diffusion_sde

    section = bench_diffusion_sde.run_section(sys.modules[__name__])
    print(section)
    text = RESULTS.read_text() if RESULTS.exists() else ""
    start, end = "<!-- sde rows", "<!-- end sde rows -->\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def _dist_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


LABELS = {
    "sdekit": "sdekit `skd.sample(..., dpm_solver_pp(order=2), ...)` under `jax.jit`",
    "hand scan": "hand-written `lax.scan`, coefficients precomputed (numpy)",
    "diffusers": "diffusers `DPMSolverMultistepScheduler` loop (torch)",
    "k-diffusion": "k-diffusion `sample_dpmpp_2m` (torch)",
    "sdekit, 1 thread": "sdekit, XLA CPU on one thread (diagnostic)",
    "hand scan, 1 thread": "hand-written `lax.scan`, XLA CPU on one thread (diagnostic)",
    "diffusers, 1 thread": "diffusers loop, `torch.set_num_threads(1)` (diagnostic)",
    "k-diffusion, 1 thread": "k-diffusion `sample_dpmpp_2m`, `torch.set_num_threads(1)` (diagnostic)",
}


def report(runs, outs, compiles, info, note, load_before, load_after) -> str:
    ours, hand = runs["mlp", "sdekit"], runs["mlp", "hand scan"]
    ours_t, hand_t = runs["trivial", "sdekit"], runs["trivial", "hand scan"]
    scale = float(np.abs(outs["mlp", "sdekit"]).max())
    rows = []
    for lib, label in LABELS.items():
        if ("mlp", lib) not in runs:
            continue
        run_s, triv_s = runs["mlp", lib], runs["trivial", lib]
        compile_s = compiles.get(lib)
        delta = float(np.abs(outs["mlp", lib] - outs["mlp", "sdekit"]).max())
        rows.append([
            label, f"{run_s * 1e3:.2f}", f"{run_s / ours:.2f}x", f"{run_s / hand:.3f}x",
            f"{triv_s / STEPS * 1e6:.1f}", f"{triv_s / ours_t:.1f}x", f"{triv_s / hand_t:.2f}x",
            "-" if compile_s is None else f"{compile_s:.2f}", "-" if lib == "sdekit" else f"{delta:.1e}",
        ])
    header = ["method", "run, MLP (ms)", "/ sdekit", "/ hand scan", "overhead per step (µs)", "/ sdekit",
              "/ hand scan", "first compile (s)", "max abs Δx_0 vs sdekit"]
    goals = [f"- sdekit / hand-written scan (MLP): **{ours / hand:.3f}x** (goal <= 1.05x: "
             f"{'met' if ours / hand <= 1.05 else 'not met'}); overhead alone: {ours_t / hand_t:.2f}x."]
    for lib in ("diffusers", "k-diffusion"):
        if ("mlp", lib) in runs:
            r, rt = runs["mlp", lib] / ours, runs["trivial", lib] / ours_t
            goals.append(f"- {lib} / sdekit: **{r:.2f}x** with the MLP, {rt:.1f}x overhead alone "
                         f"(goal: sdekit faster: {'met' if r > 1 else 'not met'}).")
    one = runs.get(("mlp", "sdekit, 1 thread")), runs.get(("trivial", "sdekit, 1 thread"))
    if one[0] is not None:
        goals.append(f"- one thread each (diagnostic): sdekit / hand scan {one[0] / runs['mlp', 'hand scan, 1 thread']:.3f}x "
                     f"(MLP), {one[1] / runs['trivial', 'hand scan, 1 thread']:.2f}x (overhead alone)")
        for lib in ("diffusers", "k-diffusion"):
            if ("mlp", lib + ", 1 thread") in runs:
                goals[-1] += (f"; {lib} / sdekit {runs['mlp', lib + ', 1 thread'] / one[0]:.2f}x (MLP), "
                              f"{runs['trivial', lib + ', 1 thread'] / one[1]:.1f}x (overhead alone)")
        goals[-1] += "."
    machine_lines = ", ".join(f"{k} {v}" for k, v in info.items())
    text = (
        f"# Diffusion sampling: DPM-Solver++ 2M, {STEPS} NFE\n\n"
        f"Batch {BATCH} x {DIM}, float32, CPU. Grid `skd.time_grid(skd.VP.linear(), {STEPS}, \"log_snr\")` "
        f"(t = 1 -> 1e-3, no step to sigma = 0; the torch rows get the same grid as sigma/alpha). "
        f"eps-prediction MLP: x and a {2 * N_FREQ}-feature sinusoidal embedding of t, {HIDDEN} hidden layers of "
        f"width {WIDTH}, SiLU; equal weights in JAX and torch (numpy, seed {SEED_WEIGHTS}); same x_T. "
        f"'Overhead per step' is the same run with the trivial network eps = 0.5 x, divided by {STEPS} steps "
        f"(JAX: including one jitted call's dispatch). Run time: median of {REPEATS_MLP} (MLP) / {REPEATS_TRIVIAL} "
        f"(trivial) runs after warm-up for JAX, sdekit and the hand scan alternating call by call; a third as many "
        f"for torch (diffusers' `set_timesteps` and table overwrite untimed); first compile: median over 3 fresh "
        f"processes of trace + lower + compile. max |x_0| = {scale:.2f}.\n\n"
        f"{markdown_table(header, rows)}\n\n"
        + "\n".join(goals) + "\n\n"
        + (f"Note: {note}.\n\n" if note else "")
        + f"Machine: {machine_lines}.\n\nLoad before: `{load_before}`\n\nLoad after: `{load_after}`\n"
        + _shared_note(load_before, load_after, info["cores"])
    )
    return text


def _shared_note(load_before: str, load_after: str, cores: int) -> str:
    """A warning when the 1-minute load average says other work shared the cores."""
    try:
        loads = [float(u.split("load average:")[1].split(",")[0]) for u in (load_before, load_after)]
    except (IndexError, ValueError):
        return ""
    if max(loads) <= 0.5 * cores:
        return ""
    return (f"\n**The machine was shared** during this run (1-minute load {loads[0]:.1f} before, {loads[1]:.1f} after, "
            f"on {cores} cores): absolute times are inflated and noisy; the ratios of the rows timed alternately "
            f"(sdekit, hand scan) are the most reliable.\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compile-only":
        compile_only(sys.argv[3])
    elif sys.argv[1:] == ["--sde"]:
        sde_main()
    elif sys.argv[1:] == ["--jax-runs"]:
        warm_up_xla()
        print(json.dumps({f"{d}:{lib}": t for (d, lib), t in jax_runs()[0].items()}))
    else:
        main()
