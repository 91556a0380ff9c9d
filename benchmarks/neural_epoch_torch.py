"""The torch + torchsde side of `bench_neural_epoch.py`: one training epoch of the LNSDE of
`sdekit.neural` written in torch, solved with `torchsde.sdeint` (Euler, backpropagation through
the solver) as in the Stable-Neural-SDEs code (Oh, Lim & Kim, ICLR 2024). Runs in the torch
reference venv (/work/refvenv); `bench_neural_epoch.py` writes its inputs and starts it.

The model (the equations of `sdekit.neural.LNSDE`, layer for layer, weights in equinox's
(out, in) layout, which is torch's):

    X       Hermite control path of (t, x), coefficients given (computed by sdekit.neural.interpolate
            once, as the paper's pipeline computes its spline coefficients once before training)
    z0      = initial(X(t0))                                         Linear(C+1, H)
    drift   = tanh(mlp(relu(embed([inner(sin t, cos t, z), control(X(t))]))))
              inner Linear(H+2, W), control Linear(C+1, W), embed Linear(2W, W),
              mlp Linear(W, W) -> relu -> Linear(W, H)
    diff.   = sigmoid(theta) * tanh(softplus(Linear(W, H)(relu(Linear(2, W)(sin t, cos t))))) * z
    logits  = readout(z(t_last))                                      Linear(H, classes)

Itô, diagonal noise, Euler with dt = 1 on the shared grid 0..L-1 of the batch (the UEA series'
times are their indices), the state read at each series' last observation (the paper's
`final_index` gather). Differences from the paper's repository, kept to match sdekit's model:
softplus instead of ReLU inside the diffusion's tanh, the tanh applied before the
multiplication by z, and no BatchNorm/Dropout in the readout.

    /work/refvenv/bin/python benchmarks/neural_epoch_torch.py INPUTS.npz [--epochs 3] [--threads 2]
    /work/refvenv/bin/python benchmarks/neural_epoch_torch.py INPUTS.npz --check   # noise-free logits

Prints one JSON line: the epoch times (s) and the torch settings.
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torchsde


class LNSDEFunc(torch.nn.Module):
    """Drift and diffusion of the LNSDE for torchsde (Itô, diagonal noise)."""

    sde_type = "ito"
    noise_type = "diagonal"

    def __init__(self, channels, hidden, width):
        super().__init__()
        self.inner = torch.nn.Linear(hidden + 2, width)
        self.control = torch.nn.Linear(channels, width)
        self.embed = torch.nn.Linear(2 * width, width)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, hidden))
        self.sigma_mlp = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.ReLU(), torch.nn.Linear(width, hidden))
        self.theta = torch.nn.Parameter(torch.zeros(()))
        self.coeffs = None  # (batch, L - 1, 4, channels), set per batch

    def path(self, t):
        """X(t) of every series of the batch (one shared grid: a scalar index)."""
        i = int(min(max(int(torch.floor(t)), 0), self.coeffs.shape[1] - 1))
        u = t - i
        a, b, c, d = self.coeffs[:, i].unbind(1)
        return a + u * (b + u * (c + u * d))

    def features(self, t, like):
        return torch.stack([torch.sin(t), torch.cos(t)]).expand(like.shape[0], 2)

    def f(self, t, z):
        tf = self.features(t, z)
        zeta = self.embed(torch.cat([self.inner(torch.cat([tf, z], dim=-1)), self.control(self.path(t))], dim=-1))
        return torch.tanh(self.mlp(torch.relu(zeta)))

    def g(self, t, z):
        softplus = torch.nn.functional.softplus
        scale = torch.sigmoid(self.theta) * torch.tanh(softplus(self.sigma_mlp(self.features(t, z))))
        return scale * z


class LNSDE(torch.nn.Module):
    def __init__(self, channels, hidden, width, classes):
        super().__init__()
        self.initial = torch.nn.Linear(channels, hidden)
        self.func = LNSDEFunc(channels, hidden, width)
        self.readout = torch.nn.Linear(hidden, classes)

    def forward(self, coeffs, last):
        self.func.coeffs = coeffs
        z0 = self.initial(coeffs[:, 0, 0])
        ts = torch.arange(coeffs.shape[1] + 1, dtype=coeffs.dtype)
        zs = torchsde.sdeint(self.func, z0, ts, method="euler", dt=1.0)  # (L, batch, hidden)
        z_last = zs[last, torch.arange(zs.shape[1])]
        return self.readout(z_last)


def load_parameters(model: LNSDE, inputs) -> None:
    """Copy sdekit's initial weights (names `param/<torch name>` in the inputs)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(inputs[f"param/{name}"])).reshape(p.shape))


def epoch(model, optimizer, coeffs, last, labels, batch_size, generator):
    order = torch.randperm(len(labels), generator=generator)
    for start in range(0, len(labels), batch_size):  # the last batch is partial, as a DataLoader's
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(coeffs[idx], last[idx]), labels[idx])
        loss.backward()
        optimizer.step()
    return float(loss)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one untimed warm-up epoch)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--check", action="store_true", help="print noise-free logits of the first samples")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    inputs = np.load(args.inputs)
    coeffs = torch.from_numpy(inputs["coeffs"])
    last, labels = torch.from_numpy(inputs["last"]).long(), torch.from_numpy(inputs["labels"]).long()
    hidden, width, classes = (int(inputs[k]) for k in ("hidden", "width", "classes"))
    model = LNSDE(coeffs.shape[-1], hidden, width, classes)
    load_parameters(model, inputs)
    if args.check:
        with torch.no_grad():
            model.func.theta.fill_(-1e4)  # sigmoid(theta) = 0: the deterministic Euler scheme
            logits = model(coeffs[:8], last[:8])
        print(json.dumps({"logits": logits.tolist()}))
        return
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    batch_size = int(inputs["batch_size"])
    epoch(model, optimizer, coeffs, last, labels, batch_size, generator)  # warm-up
    times = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        loss = epoch(model, optimizer, coeffs, last, labels, batch_size, generator)
        times.append(time.perf_counter() - start)
    print(json.dumps({"epoch_seconds": times, "median": statistics.median(times), "loss": loss,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "torchsde": torchsde.__version__}))


if __name__ == "__main__":
    main()
