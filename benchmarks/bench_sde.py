"""SDE fixed-step benchmark: GBM, 1000 paths x 1000 steps, float32, CPU (or the visible device).

sdekit (Euler-Maruyama, Milstein, Heun and SPaRK with constant steps `dt0`, as diffrax is called:
under jit its grid fast path, a scan over `grid_increments` of one Brownian tree per path, with
the Lévy area each solver needs; Euler-Maruyama also over a `StepTo` grid built in the jit) beside
diffrax (Euler, Heun, SPaRK with `VirtualBrownianTree`), torchsde (euler, milstein, heun, srk with
`BrownianInterval`) and a hand-written `lax.scan` over pre-drawn normals (the floor). Heun runs the
Stratonovich form of the same vector fields. Prints run time and ratios; writes benchmarks/results/sde.md.

    python benchmarks/bench_sde.py
"""

import pathlib
import sys
import time

import jax
import jax.numpy as jnp

import sdekit as sk

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import compile_seconds, first_compile_seconds, markdown_table, run_seconds, warm_up_xla  # noqa: E402

N_PATHS, N_STEPS, MU, SIGMA = 1000, 1000, 0.5, 0.8
DT = 1.0 / N_STEPS
TOL = 2.0**-10  # the largest power of two not above the step (1e-3): increments exact in joint law


def gbm_drift(t, y, args):
    return MU * y


def gbm_diffusion(t, y, args):
    return SIGMA * y


def sdekit_fn(solver, grid: bool = False):
    """Constant steps `dt0=DT`, as diffrax is called (under jit, a fixed grid: a scan over
    `grid_increments`); with `grid=True`, `StepTo` over a grid built inside the jit instead (traced
    times: checked at run time)."""
    problem = sk.SDE(gbm_drift, gbm_diffusion, noise="diagonal", calculus=solver.sde.calculus or "ito")
    levy = solver.sde.levy_area

    def run(keys):
        steps = {"controller": sk.StepTo(jnp.linspace(0.0, 1.0, N_STEPS + 1))} if grid else {"dt0": DT}

        def one(key):
            tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=TOL, levy=levy)
            return sk.solve(problem, solver, 0.0, 1.0, jnp.ones(()), brownian=tree, **steps).ys[-1]

        return jax.vmap(one)(keys)

    return run


def sdekit_batched_fn(solver):
    """The torchsde formulation: one state of shape (paths,) and one tree of that shape (its
    elements are independent Brownian motions), instead of a vmap over per-path trees."""
    problem = sk.SDE(gbm_drift, gbm_diffusion, noise="diagonal", calculus=solver.sde.calculus or "ito")

    def run(keys):
        tree = sk.BrownianTree(keys[0], 0.0, 1.0, shape=(keys.shape[0],), tol=TOL, levy=solver.sde.levy_area)
        y0 = jnp.ones((keys.shape[0],))
        return sk.solve(problem, solver, 0.0, 1.0, y0, dt0=DT, brownian=tree).ys[-1]

    return run


def hand_written_scan(keys):
    """The floor: Euler-Maruyama over normals drawn up front, no Brownian tree."""

    def one(key):
        dw = jax.random.normal(key, (N_STEPS,)) * jnp.sqrt(DT)
        step = lambda y, w: (y + MU * y * DT + SIGMA * y * w, None)
        return jax.lax.scan(step, jnp.ones(()), dw)[0]

    return jax.vmap(one)(keys)


def diffrax_fn(solver_name: str):
    import diffrax

    solver = getattr(diffrax, solver_name)()
    levy = diffrax.SpaceTimeLevyArea if solver_name == "SPaRK" else diffrax.BrownianIncrement

    def run(keys):
        def one(key):
            bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=TOL, shape=(), key=key, levy_area=levy)
            terms = diffrax.MultiTerm(diffrax.ODETerm(gbm_drift), diffrax.ControlTerm(gbm_diffusion, bm))
            return diffrax.diffeqsolve(terms, solver, 0.0, 1.0, DT, jnp.ones(()), max_steps=N_STEPS + 1).ys[-1]

        return jax.vmap(one)(keys)

    return run


def torchsde_seconds(method: str) -> float | None:
    try:
        import torch
        import torchsde
    except ImportError:
        return None
    torch.set_num_threads(2)

    class GBM(torch.nn.Module):
        noise_type, sde_type = "diagonal", "stratonovich" if method == "heun" else "ito"

        def f(self, t, y):
            return MU * y

        def g(self, t, y):
            return SIGMA * y

    y0 = torch.ones(N_PATHS, 1)
    ts = torch.tensor([0.0, 1.0])
    times = []
    for _ in range(3):
        levy = "space-time" if method == "srk" else "none"
        bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(N_PATHS, 1), levy_area_approximation=levy)
        start = time.perf_counter()
        with torch.no_grad():
            torchsde.sdeint(GBM(), y0, ts, method=method, dt=DT, bm=bm)
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def entries():
    return [
        ("sdekit euler_maruyama, vmap over per-path trees", sdekit_fn(sk.solvers.euler_maruyama())),
        ("sdekit euler_maruyama, StepTo(linspace) built in the jit", sdekit_fn(sk.solvers.euler_maruyama(), grid=True)),
        ("sdekit euler_maruyama, one tree of shape (paths,)", sdekit_batched_fn(sk.solvers.euler_maruyama())),
        ("sdekit milstein, vmap over per-path trees", sdekit_fn(sk.solvers.milstein())),
        ("sdekit heun_sde, vmap over per-path trees", sdekit_fn(sk.solvers.heun_sde())),
        ("sdekit spark, vmap over per-path trees", sdekit_fn(sk.solvers.spark())),
        ("sdekit spark, one tree of shape (paths,)", sdekit_batched_fn(sk.solvers.spark())),
        ("hand-written lax.scan, pre-drawn normals", hand_written_scan),
        ("diffrax Euler + VirtualBrownianTree", diffrax_fn("Euler")),
        ("diffrax Heun + VirtualBrownianTree", diffrax_fn("Heun")),
        ("diffrax SPaRK + VirtualBrownianTree (space-time area)", diffrax_fn("SPaRK")),
    ]


def compile_only(name: str) -> None:
    """Print the first compile time of one entry (run in a fresh process by main)."""
    warm_up_xla()
    keys = jax.random.split(jax.random.key(0), N_PATHS)
    print(compile_seconds(dict(entries())[name], keys)[0])


def main():
    warm_up_xla()
    keys = jax.random.split(jax.random.key(0), N_PATHS)
    measured = {}
    for name, fn in entries():
        _, compiled = compile_seconds(fn, keys)
        # First compile in fresh processes: in this one, whichever library runs first would also
        # pay for jax's own first-use tracing (jnp helpers) that the others then reuse.
        measured[name] = (run_seconds(compiled, keys, repeats=7), first_compile_seconds(__file__, "sde", name))
    for method in ("euler", "milstein", "heun", "srk"):
        seconds = torchsde_seconds(method)
        if seconds is not None:
            measured[f"torchsde {method} + BrownianInterval"] = (seconds, None)
    ours = measured["sdekit euler_maruyama, vmap over per-path trees"][0]
    hand = measured["hand-written lax.scan, pre-drawn normals"][0]
    diffrax_compile = measured["diffrax Euler + VirtualBrownianTree"][1]
    rows = []
    for name, (run_s, compile_s) in measured.items():
        rows.append([
            name, f"{run_s * 1e3:.1f}", f"{run_s / ours:.2f}x", f"{run_s / hand:.2f}x",
            "-" if compile_s is None else f"{compile_s:.2f}",
            "-" if compile_s is None else f"{compile_s / diffrax_compile:.2f}x",
        ])
    header = ["method", "run (ms)", "time / sdekit EM", "time / hand scan", "compile (s)", "compile / diffrax Euler"]
    table = markdown_table(header, rows)
    text = (
        f"GBM, {N_PATHS} paths x {N_STEPS} fixed steps, float32, device {jax.devices()[0].device_kind}; "
        f"jax {jax.__version__}. Run time: median of 7 after warm-up. Compile: median over 3 fresh "
        f"processes of trace + lower + compile.\n\n{table}\n"
    )
    print(text)
    out = pathlib.Path(__file__).parent / "results" / "sde.md"
    out.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compile-only":
        compile_only(sys.argv[3])
    else:
        main()
