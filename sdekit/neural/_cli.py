"""`sdekit fit`: train a neural SDE/CDE on a UEA/UCR dataset with missing observations.

The protocol of the stable-neural-SDE papers (Oh, Lim & Kim, ICLR 2024): pool the official train
and test sets, drop a fraction of each sample's time indices (the same indices across channels),
split 70/15/15 (stratified for classification), normalise with the training statistics, train
with Adam and early stopping on the validation loss, report the test accuracy and weighted F1
(classification) or MSE (regression). Every argument is checked before any data are read, so a
mistake costs a one-line message and exit status 2.
"""

import argparse
import importlib
import importlib.util
import json
import pathlib
import sys
import time
from typing import NoReturn

PROG = "sdekit fit"
MODELS = {  # CLI name -> (module of sdekit.neural, class), imported when chosen
    "lnsde": ("_lnsde", "LNSDE"),
    "lsde": ("_lsde", "LSDE"),
    "gsde": ("_gsde", "GSDE"),
    "neural_sde": ("_neural_sde", "NeuralSDE"),
    "neural_cde": ("_neural_cde", "NeuralCDE"),
    "latent_sde": ("_latent_sde", "LatentSDE"),
}
ADJOINTS = ("checkpointed", "reversible", "backsolve")
EXTRA = 'pip install "sdekit[neural]"'


def add_fit_parser(subparsers) -> None:
    """Register `sdekit fit` on `subparsers`."""
    parser = subparsers.add_parser(
        "fit",
        help="train a neural SDE/CDE on a UEA/UCR dataset with missing observations",
        description="Train a neural SDE or CDE classifier (or a latent SDE) on a dataset with a fraction of its "
        "observations dropped; print the test metrics; save the model, the metrics and a training-curve plot.",
        epilog="models: " + ", ".join(MODELS) + "\n\nexample:\n"
        "  sdekit fit --dataset ItalyPowerDemand --model lnsde --missing 0.5 --epochs 50 --seed 0 --out runs/ipd",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset name (see sdekit.data.available())")
    parser.add_argument("--model", required=True, metavar="MODEL", help="one of " + ", ".join(MODELS))
    parser.add_argument("--missing", type=float, default=0.0,
                        help="fraction of each sample's time indices dropped, in [0, 1) (default: 0)")
    parser.add_argument("--epochs", type=int, default=100, help="most epochs (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropping, split, model and training")
    parser.add_argument("--out", default="out", help="folder for model.eqx, metrics.json and training_curve.png")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size (default: 64)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--patience", type=int, default=10,
                        help="early stopping: epochs without a better validation loss (default: 10)")
    parser.add_argument("--adjoint", default="checkpointed", metavar="ADJOINT",
                        help="gradients: " + ", ".join(ADJOINTS) + " (reversible switches the solver to "
                        "reversible_heun; default: checkpointed)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_fit)


def fail(message: str) -> NoReturn:
    """Stop with a one-line message on stderr and exit status 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_arguments(args: argparse.Namespace) -> pathlib.Path:
    """Every check that needs no data: names, numbers, the output folder and the optional
    dependencies. Returns the output folder."""
    if args.model not in MODELS:
        fail(f"unknown model {args.model!r}: choose from {', '.join(MODELS)}")
    if args.adjoint not in ADJOINTS:
        fail(f"unknown adjoint {args.adjoint!r}: choose from {', '.join(ADJOINTS)}")
    if not 0.0 <= args.missing < 1.0:
        fail(f"--missing is the fraction of observations dropped, in [0, 1), got {args.missing}")
    for name in ("epochs", "hidden", "batch_size", "patience"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.model == "latent_sde" and args.adjoint == "reversible":
        fail("latent_sde saves its state at every observation: use --adjoint checkpointed or backsolve")
    if not args.lr > 0:
        fail(f"--lr must be positive, got {args.lr}")
    missing = [m for m in ("matplotlib", "tqdm", "optax") if importlib.util.find_spec(m) is None]
    if missing:
        fail(f"`sdekit fit` needs {', '.join(missing)}: {EXTRA}")
    from sdekit import data as skdata

    try:
        names = skdata.available()
    except ImportError as err:
        fail(f"{err} ({EXTRA})")
    if args.dataset not in names:
        fail(f"unknown dataset {args.dataset!r}; available: {', '.join(names)}")
    out = pathlib.Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"cannot use --out {str(out)!r}: {err.strerror or err}")
    return out


def prepare_data(name: str, missing: float, key):
    """The pooled dataset with `missing` of its time indices dropped, split 70/15/15 (stratified
    for classes), normalised with the training statistics, and its times divided by the longest
    training series' end time (the drifts are bounded, so the hidden state moves about as far as
    the time span: raw spans of ~100 time units give huge initial logits): `(train, val, test)`."""
    import equinox as eqx
    import jax

    from sdekit import data as skdata

    key_drop, key_split = jax.random.split(key)
    ds = skdata.load(name)
    if missing > 0:
        ds = skdata.drop(ds, missing, key=key_drop)
    parts = skdata.split(ds, (0.7, 0.15, 0.15), key=key_split, stratify=ds.is_classification)
    parts, _ = skdata.normalise(*parts)
    span = float(parts[0].times.max())
    span = span if span > 0 else 1.0
    train, val, test = (eqx.tree_at(lambda d: d.times, p, p.times / span) for p in parts)
    return train, val, test


def build_model(name: str, train, hidden: int, adjoint: str, key):
    """The `sdekit.neural` model `name` sized for `train` (its channels in, one logit per class or
    one regression output out), with the chosen adjoint."""
    import dataclasses

    import sdekit as sk

    module, class_name = MODELS[name]
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), class_name)
    if name == "latent_sde":  # GRU encoder of size `hidden`, latent state of a quarter of it
        model = cls(train.num_channels, hidden, latent_size(hidden), key=key)
    else:
        model = cls(train.num_channels, hidden, train.num_classes or 1, key=key)
    if adjoint == "reversible":  # the models then default to reversible Heun
        model = dataclasses.replace(model, adjoint=sk.adjoint.Reversible())
    elif adjoint == "backsolve":
        model = dataclasses.replace(model, adjoint=sk.adjoint.Backsolve())
    return model


def latent_size(hidden: int) -> int:
    """The latent dimension `sdekit fit --model latent_sde` uses for `--hidden`."""
    return max(2, hidden // 4)


def save_curve(history, path: pathlib.Path, title: str) -> None:
    """Training and validation loss per epoch (and validation accuracy), the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, history.epochs + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(epochs, history.train_loss, label="train loss")
    ax.plot(epochs, history.val_loss, label="validation loss")
    ax.axvline(history.best_epoch + 1, color="grey", ls=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if any(a == a for a in history.val_accuracy):  # not all NaN: classification
        acc = ax.twinx()
        acc.plot(epochs, history.val_accuracy, color="C2", label="validation accuracy")
        acc.set_ylabel("accuracy")
        acc.set_ylim(0, 1.02)
        more = acc.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8, loc="center right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_fit(args: argparse.Namespace) -> int:
    """Check the arguments, train, evaluate on the test split and save the outputs."""
    out = check_arguments(args)
    import jax
    import optax

    from ._fit import evaluate, fit

    key_data, key_model, key_fit, key_test = jax.random.split(jax.random.key(args.seed), 4)
    train, val, test = prepare_data(args.dataset, args.missing, key_data)
    model = build_model(args.model, train, args.hidden, args.adjoint, key_model)
    loss = "elbo" if args.model == "latent_sde" else "auto"
    print(f"{args.dataset}: {len(train)} train, {len(val)} validation, {len(test)} test samples; "
          f"{train.num_channels} channel{'s' * (train.num_channels > 1)}, {args.missing:.0%} of observations "
          f"dropped; model {args.model}")
    start = time.perf_counter()
    model, history = fit(model, train, val, loss=loss, optimizer=optax.adam(args.lr), epochs=args.epochs,
                             batch_size=args.batch_size, key=key_fit, patience=args.patience, checkpoint_dir=out,
                             progress=not args.no_progress)
    seconds = time.perf_counter() - start
    scores = evaluate(model, test, key=key_test, loss=loss, batch_size=args.batch_size)
    metrics = {
        "dataset": args.dataset, "model": args.model, "missing": args.missing, "seed": args.seed,
        "hidden": args.hidden, "batch_size": args.batch_size, "lr": args.lr, "adjoint": args.adjoint,
        "epochs_run": history.epochs, "best_epoch": history.best_epoch, "train_seconds": seconds,
        "test": scores, "history": history.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    save_curve(history, out / "training_curve.png", f"{args.model} on {args.dataset}, {args.missing:.0%} missing")
    print(f"best epoch {history.best_epoch + 1} of {history.epochs} ({seconds:.1f} s)")
    print("test " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print(f"Saved {out / 'model.eqx'}, {out / 'metrics.json'} and {out / 'training_curve.png'}")
    return 0
