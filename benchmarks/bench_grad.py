"""Gradient benchmark: one reverse-mode gradient step of a neural SDE, sdekit beside diffrax and
torchsde in one run.

Problem: state 4, diagonal Stratonovich noise, drift MLP 4 -> 64 -> 64 -> 4 (tanh), diffusion
0.3 * sigmoid(MLP 4 -> 64 -> 64 -> 4); 256 paths, 100 fixed steps on [0, 1], float32;
loss = mean over paths of |y(1)|^2; gradient with respect to all MLP weights. Heun-type
Stratonovich solvers throughout (Heun, or reversible Heun for the reversible adjoints).

Entries (those that the installed versions lack are skipped and listed as such):
- sdekit `Checkpointed()` on a `StepTo` grid (scan) and with `ConstantStep` (while loop),
  `Reversible()` with `reversible_heun()`, and `Backsolve()` when `sk.adjoint` has it.
- diffrax `RecursiveCheckpointAdjoint`, `BacksolveAdjoint` (Heun + `VirtualBrownianTree`),
  `ReversibleAdjoint` if present.
- torchsde `sdeint_adjoint` (heun forwards and backwards), reversible Heun with
  `adjoint_reversible_heun`, and plain backpropagation through `sdeint` (heun), all on a
  `BrownianInterval`.
- a hand-written `lax.scan` of Heun steps over pre-drawn normals, differentiated by `jax.grad`
  (no Brownian tree, no solver machinery: the floor).

JAX entries: median run time of several calls of the compiled gradient after a warm-up, and
the first compile (trace + lower + XLA compile) in a fresh process. torchsde: median wall
time of forward + backward. Writes benchmarks/results/grad.md.

    python benchmarks/bench_grad.py [--quick]
"""

import os
import pathlib
import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import compile_seconds, first_compile_seconds, markdown_table, run_seconds, warm_up_xla  # noqa: E402

STATE, WIDTH, DEPTH, N_PATHS, N_STEPS = 4, 64, 2, 256, 100
T0, T1 = 0.0, 1.0
DT = (T1 - T0) / N_STEPS
TOL = 2.0**-8  # below the step (0.01): the tree's increments are exact in joint law
DIFFUSION_SCALE = 0.3
QUICK = "--quick" in sys.argv


# ---------------------------------------------------------------------------- the model


class Model(eqx.Module):
    drift_mlp: eqx.nn.MLP
    diffusion_mlp: eqx.nn.MLP

    def __init__(self, key):
        kf, kg = jax.random.split(key)
        self.drift_mlp = eqx.nn.MLP(STATE, STATE, WIDTH, DEPTH, activation=jnp.tanh, key=kf)
        self.diffusion_mlp = eqx.nn.MLP(STATE, STATE, WIDTH, DEPTH, activation=jnp.tanh, key=kg)

    def drift(self, t, y, args):
        return self.drift_mlp(y)

    def diffusion(self, t, y, args):
        return DIFFUSION_SCALE * jax.nn.sigmoid(self.diffusion_mlp(y))


def _drift(t, y, model):
    return model.drift(t, y, None)


def _diffusion(t, y, model):
    return model.diffusion(t, y, None)


# The model travels as `args` (not closed over): backsolve adjoints differentiate only with
# respect to explicit inputs.
SDE = sk.SDE(_drift, _diffusion, noise="diagonal", calculus="stratonovich")


def setup():
    model = Model(jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    y0s = 0.5 * jax.random.normal(jax.random.key(1), (N_PATHS, STATE))
    keys = jax.random.split(jax.random.key(2), N_PATHS)
    return params, static, y0s, keys


def grad_of(final_state_fn, static):
    """value_and_grad of mean |y(1)|^2 over the batch, w.r.t. the array leaves of the model."""

    def loss(params, y0s, keys):
        model = eqx.combine(params, static)
        finals = jax.vmap(lambda y0, key: final_state_fn(model, y0, key))(y0s, keys)
        return jnp.mean(jnp.sum(finals**2, axis=-1))

    return jax.value_and_grad(loss)


# ---------------------------------------------------------------------------- sdekit


def sdekit_final(adjoint, solver, grid: bool):
    def final(model, y0, key):
        tree = sk.BrownianTree(key, T0, T1, shape=(STATE,), tol=TOL)
        kwargs = dict(controller=sk.StepTo(jnp.linspace(T0, T1, N_STEPS + 1))) if grid else dict(dt0=DT)
        return sk.solve(SDE, solver, T0, T1, y0, args=model, brownian=tree, adjoint=adjoint, max_steps=N_STEPS + 1,
                        **kwargs).ys[-1]

    return final


def hand_written_final(model, y0, key, remat=False):
    """Stratonovich Heun over normals drawn up front, in a plain `lax.scan` (the floor); with
    `remat`, each step is a `jax.checkpoint` (stages recomputed in the reverse pass, as sdekit's
    `Checkpointed` does on a grid)."""
    dws = jax.random.normal(key, (N_STEPS, STATE)) * jnp.sqrt(DT)

    def step(y, dw):
        f0, g0 = model.drift(0.0, y, None), model.diffusion(0.0, y, None)
        y_pred = y + f0 * DT + g0 * dw
        f1, g1 = model.drift(0.0, y_pred, None), model.diffusion(0.0, y_pred, None)
        return y + 0.5 * (f0 + f1) * DT + 0.5 * (g0 + g1) * dw, None

    return jax.lax.scan(jax.checkpoint(step) if remat else step, y0, dws)[0]


# ---------------------------------------------------------------------------- diffrax


def diffrax_final(adjoint_name: str):
    import diffrax
    import lineax as lx

    def final(model, y0, key):
        # Not `UnsafeBrownianPath`: diffrax refuses reverse mode through it.
        bm = diffrax.VirtualBrownianTree(T0, T1, tol=TOL, shape=(STATE,), key=key)
        diffusion = lambda t, y, model: lx.DiagonalLinearOperator(model.diffusion(t, y, None))  # noqa: E731
        terms = diffrax.MultiTerm(diffrax.ODETerm(_drift), diffrax.ControlTerm(diffusion, bm))
        solver = diffrax.ReversibleHeun() if adjoint_name == "ReversibleAdjoint" else diffrax.Heun()
        adjoint = getattr(diffrax, adjoint_name)()
        return diffrax.diffeqsolve(terms, solver, T0, T1, DT, y0, args=model, adjoint=adjoint, max_steps=N_STEPS + 1).ys[-1]

    return final


# ---------------------------------------------------------------------------- entries


def jax_entries():
    """(name, solver description, final-state function or None if unavailable, why not)."""
    import diffrax

    entries = [
        ("sdekit Checkpointed, StepTo grid", "heun_sde", sdekit_final(sk.adjoint.Checkpointed(), sk.solvers.heun_sde(), True)),
        ("sdekit Checkpointed, ConstantStep", "heun_sde", sdekit_final(sk.adjoint.Checkpointed(), sk.solvers.heun_sde(), False)),
        ("sdekit Reversible, StepTo grid", "reversible_heun",
         sdekit_final(sk.adjoint.Reversible(), sk.solvers.reversible_heun(), True)),
        ("sdekit Reversible, ConstantStep", "reversible_heun",
         sdekit_final(sk.adjoint.Reversible(), sk.solvers.reversible_heun(), False)),
    ]
    if hasattr(sk.adjoint, "Backsolve"):
        entries += [
            ("sdekit Backsolve, StepTo grid", "heun_sde", sdekit_final(sk.adjoint.Backsolve(), sk.solvers.heun_sde(), True)),
            ("sdekit Backsolve, ConstantStep", "heun_sde", sdekit_final(sk.adjoint.Backsolve(), sk.solvers.heun_sde(), False)),
        ]
    else:
        entries.append(("sdekit Backsolve", "heun_sde", None))
    for adjoint_name in ("RecursiveCheckpointAdjoint", "BacksolveAdjoint", "ReversibleAdjoint"):
        solver = "ReversibleHeun" if adjoint_name == "ReversibleAdjoint" else "Heun"
        available = hasattr(diffrax, adjoint_name)
        entries.append((f"diffrax {adjoint_name} + VBT", solver, diffrax_final(adjoint_name) if available else None))
    entries.append(("hand-written lax.scan + jax.grad, pre-drawn normals", "Heun", hand_written_final))
    entries.append(("hand-written, jax.checkpoint per step", "Heun",
                    lambda model, y0, key: hand_written_final(model, y0, key, remat=True)))
    return entries


def compile_only(name):
    params, static, y0s, keys = setup()
    warm_up_xla()
    fn = {n: f for n, _, f in jax_entries()}[name]
    print(compile_seconds(grad_of(fn, static), params, y0s, keys)[0])


# ---------------------------------------------------------------------------- torchsde


def torchsde_entries(params, repeats):
    """{name: (solver, median seconds, loss)}, or {} if torch/torchsde are missing."""
    try:
        import torch
        import torchsde
    except ImportError:
        return {}
    # One thread: these matrices are tiny (256 x 64), and on a shared 2-core machine two intra-op
    # threads made torch 10-40x slower (threads waiting on each other), not faster.
    torch.set_num_threads(1)

    def mlp(eqx_mlp, final=None):
        layers = []
        for i, lin in enumerate(eqx_mlp.layers):
            layer = torch.nn.Linear(lin.in_features, lin.out_features)
            with torch.no_grad():  # the same weights as the JAX model
                layer.weight.copy_(torch.from_numpy(np.asarray(lin.weight)))
                layer.bias.copy_(torch.from_numpy(np.asarray(lin.bias)))
            layers.append(layer)
            if i < len(eqx_mlp.layers) - 1:
                layers.append(torch.nn.Tanh())
        return torch.nn.Sequential(*layers)

    class SDE(torch.nn.Module):
        noise_type, sde_type = "diagonal", "stratonovich"

        def __init__(self):
            super().__init__()
            self.f_net, self.g_net = mlp(params.drift_mlp), mlp(params.diffusion_mlp)

        def f(self, t, y):
            return self.f_net(y)

        def g(self, t, y):
            return DIFFUSION_SCALE * torch.sigmoid(self.g_net(y))

    sde = SDE()
    y0 = torch.from_numpy(np.asarray(0.5 * jax.random.normal(jax.random.key(1), (N_PATHS, STATE))))
    ts = torch.tensor([T0, T1])
    configs = [
        ("torchsde sdeint_adjoint (heun / heun)", "heun",
         lambda bm: torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, method="heun", adjoint_method="heun", dt=DT)),
        ("torchsde reversible_heun + adjoint_reversible_heun", "reversible_heun",
         lambda bm: torchsde.sdeint_adjoint(sde, y0, ts, bm=bm, method="reversible_heun",
                                            adjoint_method="adjoint_reversible_heun", dt=DT)),
        ("torchsde sdeint + backprop through the solver", "heun",
         lambda bm: torchsde.sdeint(sde, y0, ts, bm=bm, method="heun", dt=DT)),
    ]
    out = {}
    for name, solver, run in configs:
        times, loss = [], None
        for i in range(repeats + 1):
            bm = torchsde.BrownianInterval(t0=T0, t1=T1, size=(N_PATHS, STATE), levy_area_approximation="none",
                                           entropy=i)
            sde.zero_grad()
            start = time.perf_counter()
            ys = run(bm)
            loss = (ys[-1] ** 2).sum(-1).mean()
            loss.backward()
            if i > 0:  # the first call is a warm-up
                times.append(time.perf_counter() - start)
        out[name] = (solver, statistics.median(times), float(loss))
    return out


# ---------------------------------------------------------------------------- main


def main():
    repeats = 3 if QUICK else 7
    compile_repeats = 1 if QUICK else 3
    warm_up_xla()
    params, static, y0s, keys = setup()
    rows_data = {}  # name -> (solver, run s, first compile s or None, loss, grad norm)
    skipped = []
    for name, solver, fn in jax_entries():
        if fn is None:
            skipped.append(name)
            continue
        _, compiled = compile_seconds(grad_of(fn, static), params, y0s, keys)
        run_s = run_seconds(compiled, params, y0s, keys, repeats=repeats)
        loss, grads = compiled(params, y0s, keys)
        grad_norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))))
        compile_s = first_compile_seconds(__file__, "grad", name, repeats=compile_repeats)
        rows_data[name] = (solver, run_s, compile_s, float(loss), grad_norm)
        print(f"{name}: {run_s * 1e3:.1f} ms, first compile {compile_s:.1f} s", flush=True)
    for name, (solver, run_s, loss) in torchsde_entries(params, repeats).items():
        rows_data[name] = (solver, run_s, None, loss, None)
        print(f"{name}: {run_s * 1e3:.1f} ms", flush=True)

    def best(prefix):
        times = [v[1] for k, v in rows_data.items() if k.startswith(prefix)]
        return min(times) if times else None

    best_sdekit, best_diffrax = best("sdekit"), best("diffrax")
    rows = []
    for name, (solver, run_s, compile_s, loss, grad_norm) in rows_data.items():
        rows.append([
            name, solver, f"{run_s * 1e3:.1f}", f"{run_s / best_diffrax:.2f}x",
            "-" if compile_s is None else f"{compile_s:.1f}", f"{loss:.6f}",
            "-" if grad_norm is None else f"{grad_norm:.4f}",
        ])
    table = markdown_table(
        ["method", "solver", "grad step (ms)", "time / best diffrax", "first compile (s)", "loss", "grad norm"], rows
    )
    import diffrax

    try:
        import torch
        import torchsde

        torch_info = f", torch {torch.__version__} ({torch.get_num_threads()} thread(s)), torchsde {torchsde.__version__}"
    except ImportError:
        torch_info = ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (
        f"Neural SDE gradient step: state {STATE}, diagonal Stratonovich noise, drift and diffusion MLPs "
        f"(width {WIDTH}, depth {DEPTH}, tanh), {N_PATHS} paths x {N_STEPS} fixed steps on [0, 1], float32, "
        f"loss = mean |y(1)|^2, gradient w.r.t. all weights (the same initial weights in every library). "
        f"Brownian trees with tol 2^-8 (sdekit `BrownianTree`, diffrax `VirtualBrownianTree`), torchsde "
        f"`BrownianInterval` (diffrax refuses reverse mode through `UnsafeBrownianPath`). Device {jax.devices()[0].device_kind} ({os.cpu_count()} cores, load average "
        f"{load:.1f} at the end of the run); jax {jax.__version__}, diffrax {diffrax.__version__}{torch_info}. "
        f"Grad step: median of {repeats} after warm-up; first compile: median of {compile_repeats} fresh "
        f"processes (trace + lower + XLA compile of value_and_grad). Loss values differ between libraries "
        f"because the Brownian paths do.\n\n{table}\n\n"
        f"Best sdekit / best diffrax: {best_sdekit / best_diffrax:.2f}x.\n"
    )
    if skipped:
        text += "\nNot available in the installed versions: " + ", ".join(skipped) + ".\n"
    print(text)
    if not QUICK:
        out = pathlib.Path(__file__).parent / "results" / "grad.md"
        out.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compile-only":
        compile_only(sys.argv[3])
    else:
        main()
