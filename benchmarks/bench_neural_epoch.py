"""One training epoch of the LNSDE (Oh, Lim & Kim, ICLR 2024) on JapaneseVowels, side by side.

Setup: JapaneseVowels (UEA; 12 channels, 7-29 points, 9 classes), pooled, split 70/15/15
(seed 0), normalised; the training part (447 series, padded to 29 points) in batches of 64 (the
last one partial), hidden size 64, Euler--Maruyama on each series' observation grid, softmax
cross entropy, Adam(1e-3), float32, CPU. Entries:

- sdekit: `skn.fit` on `skn.LNSDE(12, 64, 9)` with the default `sk.adjoint.Checkpointed()`, and
  with `sk.adjoint.Reversible()` (reversible Heun, O(1) memory);
- torch + torchsde: the same model written in torch (`neural_epoch_torch.py`, run in the torch
  reference venv): `torchsde.sdeint(method="euler")`, backpropagation through the solver, as in
  the paper's code;
- a hand-written JAX `lax.scan` of the same Euler--Maruyama steps with the same layers (the
  model's own submodules), the same interpolation call, pre-drawn normals and `jax.grad`
  through the scan: no solver, tree or adjoint machinery (the limit).

Every entry trains on the same batches; the epoch times exclude compilation (reported apart:
the first epoch's time minus a compiled epoch's). The JAX entries alternate within one process
(rounds of one epoch each; the median over rounds), so that the machine's load hits them
alike. Parity: with the diffusion switched off (sigmoid(theta) = 0) the three implementations
give the same logits (the maximum difference is printed).

    python benchmarks/bench_neural_epoch.py [--rounds 5] [--torch-epochs 3]    # writes results/neural_epoch.md
"""

import argparse
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import sdekit as sk
from sdekit import data as skdata
from sdekit import neural as skn

HIDDEN, BATCH, SEED, DATASET = 64, 64, 0, "JapaneseVowels"
REFVENV = os.environ.get("SDEKIT_TORCH_PYTHON", "/work/refvenv/bin/python")
HERE = pathlib.Path(__file__).resolve().parent


def train_set():
    ds = skdata.load(DATASET)
    train, val, test = skdata.split(ds, (0.7, 0.15, 0.15), key=jax.random.key(SEED))
    (train, _, _), _ = skdata.normalise(train, val, test)
    return train


# --------------------------------------------------------------------- the hand-written scan


def hand_logits(model, times, values, normals):
    """One series: the model's control path (the same `interpolate` call), then Euler--Maruyama
    on the observation times in a `lax.scan` with pre-drawn N(0, 1) normals (padding has zero
    spacing, so the state stays at its last observation), then the readout."""
    path = skn.interpolate(times, jnp.concatenate([times[:, None], values], axis=1), "hermite")
    x = path.coeffs[:, 0]  # X at the knots t_0 .. t_{L-2}: where Euler evaluates the drift
    h = jnp.diff(times)

    def step(z, inputs):
        t, x_t, h_t, n = inputs
        drift = model.drift_net(t, z, x_t)
        return z + drift * h_t + model.sigma(t, z.dtype) * z * jnp.sqrt(h_t) * n, None

    z, _ = lax.scan(step, model.initial(x[0]), (times[:-1], x, h, normals))
    return model.readout(z)


def hand_loss(model, data, indices, weights, key):
    times, values, labels = data.times[indices], data.values[indices], data.labels[indices]
    normals = jax.random.normal(key, (len(indices), times.shape[1] - 1, model.hidden_size), values.dtype)
    logits = jax.vmap(hand_logits, in_axes=(None, 0, 0, 0))(model, times, values, normals)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(weights * losses) / jnp.sum(weights)


def hand_trainer(optimizer):
    @eqx.filter_jit
    def step(model, opt_state, data, indices, weights, key):
        value, grads = eqx.filter_value_and_grad(hand_loss)(model, data, indices, weights, key)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, value

    def epoch(model, opt_state, data, key):
        """One epoch on the batches `skn.fit` uses (the same permutation and padding)."""
        n = len(data.labels)
        order = np.asarray(jax.random.permutation(key, n))
        pad = -n % BATCH
        indices = np.concatenate([order, order[:pad]]).reshape(-1, BATCH)
        weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(-1, BATCH)
        for i, (idx, w) in enumerate(zip(indices, weights)):
            model, opt_state, value = step(model, opt_state, data, idx, w, jax.random.fold_in(key, i))
        jax.block_until_ready(value)
        return model, opt_state

    return epoch


# -------------------------------------------------------------------------- torch + torchsde


TORCH_NAMES = {  # torch parameter -> the sdekit LNSDE's leaf
    "initial": lambda m: m.initial,
    "func.inner": lambda m: m.drift_net.inner,
    "func.control": lambda m: m.drift_net.control,
    "func.embed": lambda m: m.drift_net.embed,
    "func.mlp.0": lambda m: m.drift_net.mlp.layers[0],
    "func.mlp.2": lambda m: m.drift_net.mlp.layers[1],
    "func.sigma_mlp.0": lambda m: m.sigma.mlp.layers[0],
    "func.sigma_mlp.2": lambda m: m.sigma.mlp.layers[1],
    "readout": lambda m: m.readout,
}


def torch_inputs(model, train, path):
    """The torch script's inputs: Hermite coefficients of each series (computed once, as the
    paper's pipeline does), last-observation indices, labels and sdekit's initial weights."""
    with_time = jnp.concatenate([train.times[..., None], train.values], axis=-1)
    coeffs = jax.vmap(lambda t, v: skn.interpolate(t, v, "hermite").coeffs)(train.times, with_time)
    params = {"param/func.theta": np.asarray(model.sigma.theta)}
    for name, get in TORCH_NAMES.items():
        params[f"param/{name}.weight"] = np.asarray(get(model).weight)
        params[f"param/{name}.bias"] = np.asarray(get(model).bias)
    np.savez(path, coeffs=np.asarray(coeffs, np.float32), last=np.asarray(train.lengths) - 1,
             labels=np.asarray(train.labels), hidden=HIDDEN, width=model.width, classes=train.num_classes,
             batch_size=BATCH, **params)


def run_torch(inputs, *extra):
    out = subprocess.run([REFVENV, str(HERE / "neural_epoch_torch.py"), str(inputs), *extra],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ runs


def deterministic(model):
    """The model with sigmoid(theta) = 0: no diffusion, so every implementation is one Euler scheme."""
    return eqx.tree_at(lambda m: m.sigma.theta, model, jnp.asarray(-1e4, model.sigma.theta.dtype))


def parity(model, train, inputs):
    det = deterministic(model)
    n = 8
    sdekit_logits = jax.vmap(lambda t, v: det(t, v, key=jax.random.key(0)))(train.times[:n], train.values[:n])
    normals = jnp.zeros((n, train.times.shape[1] - 1, HIDDEN))
    hand = jax.vmap(hand_logits, in_axes=(None, 0, 0, 0))(det, train.times[:n], train.values[:n], normals)
    torch_logits = np.asarray(run_torch(inputs, "--check")["logits"])
    return float(jnp.max(jnp.abs(hand - sdekit_logits))), float(np.max(np.abs(torch_logits - sdekit_logits)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed epochs of each JAX entry")
    parser.add_argument("--torch-epochs", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "neural_epoch.md"),
                        help="markdown output ('' for none)")
    args = parser.parse_args()
    train = train_set()
    model = skn.LNSDE(train.num_channels, HIDDEN, train.num_classes, key=jax.random.key(1))
    optimizer = optax.adam(1e-3)
    key = jax.random.key(2)
    entries = {
        "sdekit Checkpointed (euler_maruyama)": model,
        "sdekit Reversible (reversible_heun)": dataclasses.replace(model, adjoint=sk.adjoint.Reversible()),
    }
    times = {name: [] for name in [*entries, "hand-written lax.scan (euler_maruyama)"]}
    compile_s = {}

    def sdekit_epoch(name, m, k):
        m, history = skn.fit(m, train, None, loss="cross_entropy", optimizer=optimizer, epochs=1, batch_size=BATCH,
                             key=k, progress=False)
        return m, history.time[0]

    hand_epoch = hand_trainer(optimizer)
    hand_state = [model, optimizer.init(eqx.filter(model, eqx.is_inexact_array))]
    data = jax.tree.map(jnp.asarray, train)

    def hand(k):
        start = time.perf_counter()
        hand_state[:] = hand_epoch(*hand_state, data, k)
        return time.perf_counter() - start

    first = {}
    for name, m in entries.items():  # first epoch: compile + run
        entries[name], first[name] = sdekit_epoch(name, m, key)
    first["hand-written lax.scan (euler_maruyama)"] = hand(key)
    for r in range(args.rounds):
        k = jax.random.fold_in(key, r + 1)
        for name in entries:
            entries[name], seconds = sdekit_epoch(name, entries[name], k)
            times[name].append(seconds)
        times["hand-written lax.scan (euler_maruyama)"].append(hand(k))
    median = {name: statistics.median(ts) for name, ts in times.items()}
    compile_s = {name: first[name] - median[name] for name in times}

    with tempfile.TemporaryDirectory() as tmp:
        inputs = pathlib.Path(tmp) / "inputs.npz"
        torch_inputs(model, train, inputs)
        hand_diff, torch_diff = parity(model, train, inputs)
        torch_result = run_torch(inputs, "--epochs", str(args.torch_epochs))
    median["torch + torchsde sdeint (euler), backprop"] = torch_result["median"]

    hand_t = median["hand-written lax.scan (euler_maruyama)"]
    torch_t = torch_result["median"]
    load = os.getloadavg()[0]
    lines = [
        f"LNSDE training epoch on {DATASET}: {len(train)} training series (padded to {train.times.shape[1]} points, "
        f"{train.num_channels} channels, 9 classes), batch {BATCH}, hidden {HIDDEN}, float32, CPU "
        f"({os.cpu_count()} cores shared with other jobs, load average {load:.1f} at the end), jax {jax.__version__}, "
        f"torch {torch_result['torch']} ({torch_result['threads']} threads), torchsde {torch_result['torchsde']}. "
        f"JAX entries: median of {args.rounds} alternating epochs in one process; torch: median of "
        f"{args.torch_epochs} epochs after a warm-up epoch. Compile: the first epoch's time minus the median.",
        "",
        f"Parity with the diffusion switched off: max |logit difference| against sdekit: hand-written scan "
        f"{hand_diff:.1e}, torch {torch_diff:.1e}.",
        "",
        "| implementation | epoch (s) | / torchsde | / hand-written scan | compile (s) |",
        "|---|---|---|---|---|",
    ]
    for name, t in median.items():
        c = f"{compile_s[name]:.1f}" if name in compile_s else "-"
        lines.append(f"| {name} | {t:.3f} | {t / torch_t:.3f}x | {t / hand_t:.2f}x | {c} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)
    return median


if __name__ == "__main__":
    main()
