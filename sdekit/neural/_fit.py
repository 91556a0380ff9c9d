"""Training and evaluation of the `sdekit.neural` models on a `sdekit.data.Dataset`: `fit` (optax,
early stopping on validation, a tqdm bar, checkpoints), `predict` and `evaluate`.

Compilation: one training step (`eqx.filter_jit` of `eqx.filter_value_and_grad`) and one
evaluation step, both at module level, so that a second `fit` with a model of the same structure,
the same loss and optimizer object and the same batch size and series shape reuses the compiled
programs (the steps see only a batch, gathered on the host: the dataset's size does not matter).
Every batch has the same shape: the last batch of an epoch is completed with samples from the
start of that epoch's order, weighted 0 by the built-in losses, so nothing is retraced across
batches or epochs and no sample is dropped.
"""

import dataclasses
import functools
import json
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from . import _losses, _metrics

MONITORS = ("loss", "accuracy")


@dataclasses.dataclass
class History:
    """What `fit` records, one entry per epoch run.

    Attributes:
        train_loss: mean training loss over the epoch's batches (as trained: dropout-free models,
            the epoch's KL weight for the ELBO).
        val_loss: validation loss (NaN without a validation set).
        val_accuracy: validation accuracy (classification; NaN otherwise).
        time: wall seconds of the epoch, training and validation (the first includes compilation).
        kl_weight: the KL weight at the epoch's last step (1 unless `kl_annealing`).
        best_epoch: the epoch (from 0) of the returned model: the best validation score, or the
            last epoch without a validation set.
        stopped_early: whether `patience` ended training before `epochs`.
    """

    train_loss: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_accuracy: list = dataclasses.field(default_factory=list)
    time: list = dataclasses.field(default_factory=list)
    kl_weight: list = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """The number of epochs run."""
        return len(self.train_loss)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN written as null)."""
        clean = lambda xs: [None if isinstance(x, float) and math.isnan(x) else x for x in xs]
        out = dataclasses.asdict(self)
        return {k: clean(v) if isinstance(v, list) else v for k, v in out.items()}


def fit(
    model: eqx.Module,
    train,
    val=None,
    *,
    loss: str | Callable = "auto",
    optimizer: optax.GradientTransformation | None = None,
    epochs: int = 100,
    batch_size: int = 64,
    key: Array,
    adjoint=None,
    patience: int | None = None,
    monitor: str = "loss",
    checkpoint_dir: str | pathlib.Path | None = None,
    progress: bool = True,
    kl_annealing: int | None = None,
) -> tuple[eqx.Module, History]:
    """Train `model` on the dataset `train`, keeping the best model on `val`.

    Each epoch shuffles `train` with a key folded from `key` and takes optimizer steps on batches
    of `batch_size` samples (the last batch is completed with samples from the start of the
    epoch's order, which the built-in losses weight 0: every sample counts once per epoch and no
    batch shape changes, so the step compiles once). Then the validation loss (and accuracy, for
    classification) is computed, batched and jitted, with a fixed evaluation key.

    Args:
        model: an equinox module called per sample as `model(times, values, *, key)` (the
            `sdekit.neural` models; for `loss="elbo"`, one with `negative_elbo`).
        train, val: `sdekit.data.Dataset`s (`val` optional: without it the last model is returned).
        loss: "cross_entropy" (integer labels, logits out), "mse" (regression), "elbo" (a
            `LatentSDE`'s negative ELBO), "auto" (cross entropy for integer labels, else MSE), or a
            function `loss(model, batch, key) -> scalar` on a batch `Dataset` (it sees the padded
            last batch as it is).
        optimizer: any optax `GradientTransformation` (default `optax.adam(1e-3)`); pass the same
            object to later fits to reuse the compiled step.
        epochs: the most epochs to run.
        batch_size: samples per step (at most `len(train)`).
        key: the PRNG key for shuffling, the models' noise and evaluation.
        adjoint: if given, replaces the model's `adjoint` field (e.g. `sk.adjoint.Reversible()`,
            which also needs `solver=sk.solvers.reversible_heun()` in the model).
        patience: stop when the monitored validation score has not improved for this many epochs
            (None: run every epoch). Either way the best validation model is returned.
        monitor: "loss" (lowest validation loss) or "accuracy" (highest validation accuracy, ties
            to the lower loss; classification only).
        checkpoint_dir: if given, the best model is written there as `model.eqx`
            (`eqx.tree_serialise_leaves`; read back with `eqx.tree_deserialise_leaves(path, like)`)
            and the history as `history.json`, after every epoch.
        progress: a tqdm bar over epochs showing the losses and validation accuracy.
        kl_annealing: for `loss="elbo"`, the number of optimizer steps over which the KL weight
            rises linearly to 1 (`min(1, step / kl_annealing)`, from `1 / kl_annealing`).

    Returns:
        `(best_model, history)`: the model with the best validation score and the `History`.

    Raises:
        ValueError: for an unknown loss or monitor, non-positive epochs or batch size, an empty
            dataset, `kl_annealing` without the ELBO, `monitor="accuracy"` without classes.
        ImportError: `progress=True` without tqdm (`pip install "sdekit[neural]"`).

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp, optax
        >>> from sdekit import data as skdata, neural as skn
        >>> class Mean(eqx.Module):  # a tiny classifier: a linear map of each channel's mean
        ...     linear: eqx.nn.Linear
        ...     def __call__(self, times, values, *, key):
        ...         return self.linear(jnp.nanmean(values, axis=0))
        >>> ds = skdata.load("ItalyPowerDemand")
        >>> train, val, test = skdata.split(ds, (0.7, 0.15, 0.15), key=jax.random.key(0))
        >>> model = Mean(eqx.nn.Linear(1, 2, key=jax.random.key(1)))
        >>> model, history = skn.fit(model, train, val, optimizer=optax.adam(1e-2), epochs=3,
        ...                          key=jax.random.key(2), progress=False)
        >>> history.epochs, history.train_loss[-1] < history.train_loss[0]
        (3, True)
    """
    _check_positive(epochs=epochs, batch_size=batch_size)
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be a positive number of epochs or None, got {patience}")
    spec = _losses.resolve(loss, train)
    if kl_annealing is not None and (spec.task != "elbo" or kl_annealing < 1):
        raise ValueError("kl_annealing (a positive number of steps) applies only to loss='elbo'")
    if monitor == "accuracy" and spec.task != "classification":
        raise ValueError("monitor='accuracy' needs a classification loss; use monitor='loss'")
    if len(train) == 0 or (val is not None and len(val) == 0):
        raise ValueError("the training and validation sets must not be empty")
    bar = _progress_bar(epochs, progress)
    if adjoint is not None:
        model = with_adjoint(model, adjoint)
    optimizer = _default_optimizer() if optimizer is None else optimizer
    batch_size = min(batch_size, len(train))
    dtype = _float_dtype(model)
    data = _host_arrays(train, dtype)
    val_data = None if val is None else _host_arrays(val, dtype)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    key_shuffle, key_steps, key_eval = jax.random.split(key, 3)
    history, best, best_score, step = History(), model, None, 0
    checkpoint_dir = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir)
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)

    for epoch in bar:
        start = time.perf_counter()
        indices, weights = batch_plan(len(train), batch_size, jax.random.fold_in(key_shuffle, epoch))
        epoch_keys = jax.random.split(jax.random.fold_in(key_steps, epoch), len(indices))
        losses = []
        for batch_indices, batch_weights, batch_key in zip(indices, weights, epoch_keys):
            step += 1
            kl_weight = 1.0 if kl_annealing is None else min(1.0, step / kl_annealing)
            batch = _take(data, batch_indices)
            model, opt_state, value = _train_step(model, opt_state, batch, batch_weights, batch_key,
                                                  jnp.asarray(kl_weight, dtype), spec, optimizer)
            losses.append(value)
        history.train_loss.append(float(np.mean(jax.device_get(losses))))
        history.kl_weight.append(kl_weight)
        scores = ({"loss": math.nan} if val is None else
                  _scores(model, val_data, spec, min(batch_size, len(val)), key_eval))
        history.val_loss.append(scores["loss"])
        history.val_accuracy.append(scores.get("accuracy", math.nan))
        score = _monitored(scores, monitor)
        if val is None or best_score is None or score < best_score:
            best, best_score, history.best_epoch, waited = model, score, epoch, 0
            if checkpoint_dir is not None:
                eqx.tree_serialise_leaves(checkpoint_dir / "model.eqx", best)
        else:
            waited += 1
        history.time.append(time.perf_counter() - start)
        stop = patience is not None and val is not None and waited >= patience
        history.stopped_early = stop and epoch + 1 < epochs
        if checkpoint_dir is not None:
            (checkpoint_dir / "history.json").write_text(json.dumps(history.to_dict(), indent=1) + "\n")
        if progress:
            bar.set_postfix(_postfix(history))
        if stop:
            break
    if progress:
        bar.close()
    return best, history


def predict(model: eqx.Module, dataset, *, key: Array, batch_size: int = 256) -> Float[Array, "n ..."]:
    """The model's outputs (logits or regression outputs) for every sample of `dataset`, jitted in
    padded batches of `batch_size`. Sample `i` is driven by `fold_in(key, i)`, whatever the batch.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from sdekit import data as skdata, neural as skn
        >>> class Last(eqx.Module):
        ...     def __call__(self, times, values, *, key):
        ...         return jnp.nan_to_num(values[-1])
        >>> ds = skdata.load("ItalyPowerDemand")
        >>> skn.predict(Last(), ds, key=jax.random.key(0)).shape
        (1096, 1)
    """
    _check_positive(batch_size=batch_size)
    data = _host_arrays(dataset, _float_dtype(model))
    outputs = [_predict_step(model, _take(data, idx), idx, key)[: int(w.sum())]
               for idx, w in zip(*batch_plan(len(dataset), min(batch_size, len(dataset))))]
    return jnp.concatenate(outputs)


def evaluate(model: eqx.Module, dataset, *, key: Array, loss: str | Callable = "auto",
             batch_size: int = 256) -> dict[str, float]:
    """Scores of `model` on `dataset`: `loss` (the mean of the training loss), and for
    classification `accuracy` and `f1_weighted` (support-weighted F1), for regression `mse`, for
    `loss="elbo"` `reconstruction_mse` (a posterior sample's decoded mean at the observation times
    against the observed values).

    Args:
        model: the trained model.
        dataset: a `sdekit.data.Dataset`.
        key: the key of the models' noise (sample `i` gets `fold_in(key, i)`).
        loss: as in `fit` ("auto": cross entropy for integer labels, else MSE).
        batch_size: samples per jitted evaluation batch.

    Returns:
        A dict of floats.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from sdekit import data as skdata, neural as skn
        >>> class Threshold(eqx.Module):  # class 1 when the series ends high
        ...     def __call__(self, times, values, *, key):
        ...         last = jnp.nan_to_num(values[-1, 0])
        ...         return jnp.stack([-last, last])
        >>> scores = skn.evaluate(Threshold(), skdata.load("ItalyPowerDemand"), key=jax.random.key(0))
        >>> sorted(scores)
        ['accuracy', 'f1_weighted', 'loss']
    """
    _check_positive(batch_size=batch_size)
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    data = _host_arrays(dataset, _float_dtype(model))
    return _scores(model, data, _losses.resolve(loss, dataset), min(batch_size, len(dataset)), key, reconstruct=True)


def with_adjoint(model: eqx.Module, adjoint) -> eqx.Module:
    """`model` with its `adjoint` field replaced (a static field of the `sdekit.neural` models)."""
    if not any(f.name == "adjoint" for f in dataclasses.fields(model)):
        raise TypeError(f"{type(model).__name__} has no 'adjoint' field to replace; set the adjoint in the model")
    return dataclasses.replace(model, adjoint=adjoint)


def batch_plan(n: int, batch_size: int, key: Array | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `(batches, batch_size)` sample indices and weights of one pass over `n` samples: a
    permutation drawn from `key` (the natural order without one), its last batch completed with
    the first indices of the order at weight 0."""
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    indices = np.concatenate([order, order[:pad]]).astype(np.int32)
    weights = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    return indices.reshape(n_batches, batch_size), weights.reshape(n_batches, batch_size)


@eqx.filter_jit
def _train_step(model, opt_state, batch, weights, key, kl_weight, spec, optimizer):
    objective = lambda m: _losses.batch_loss(spec, m, batch, weights, key, kl_weight)
    value, grads = eqx.filter_value_and_grad(objective)(model)
    # optax mixes integer step counts with float rates, which strict dtype promotion (sdekit's
    # test setting) rejects: the user's optimizer runs under jax's standard promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state, value


@eqx.filter_jit
def _eval_step(model, batch, indices, weights, key, spec, reconstruct=False):
    """The weighted sum of the losses on a batch, and the outputs (built-in losses; for the ELBO,
    the reconstruction if `reconstruct`, else nothing)."""
    if spec.batch is not None:  # a user's loss: the batch mean, weighted by its real samples
        return spec.batch(model, batch, key) * jnp.sum(weights), None
    keys = _losses.sample_keys(key, indices)
    values, outputs = _losses.per_sample_losses(spec, model, batch, keys, jnp.ones((), _float_dtype(model)))
    if spec.task == "elbo" and reconstruct:  # one posterior sample at the observation times
        sample = lambda t, x, k: model.sample(t, x, t, key=jax.random.fold_in(k, 1))
        outputs = jax.vmap(sample)(batch.times, batch.values, keys)
    return jnp.sum(weights.astype(values.dtype) * values), outputs


@eqx.filter_jit
def _predict_step(model, batch, indices, key):
    keys = _losses.sample_keys(key, indices)
    return jax.vmap(lambda t, x, k: model(t, x, key=k))(batch.times, batch.values, keys)


def _scores(model, data, spec, batch_size, key, reconstruct=False) -> dict[str, float]:
    n = len(data.labels)
    total, outputs = 0.0, []
    for idx, w in zip(*batch_plan(n, batch_size)):
        value, out = _eval_step(model, _take(data, idx), idx, w, key, spec, reconstruct)
        total += float(value)
        if out is not None:
            outputs.append(np.asarray(out)[: int(w.sum())])
    scores = {"loss": total / n}
    if spec.task == "classification" and outputs:
        predicted = np.argmax(np.concatenate(outputs), axis=-1)
        labels = np.asarray(data.labels)
        scores["accuracy"] = _metrics.accuracy(labels, predicted)
        scores["f1_weighted"] = _metrics.f1_weighted(labels, predicted)
    elif spec.task == "elbo" and reconstruct:
        values = np.asarray(data.values)
        observed = ~np.isnan(values)
        scores["reconstruction_mse"] = _metrics.mean_squared_error(values[observed], np.concatenate(outputs)[observed])
    elif spec.task == "regression" and outputs:
        out = np.concatenate(outputs)
        scores["mse"] = _metrics.mean_squared_error(np.broadcast_to(np.asarray(data.labels).reshape(
            out.shape[:1] + (1,) * (out.ndim - 1)), out.shape), out)
    return scores


def _monitored(scores, monitor) -> tuple:
    """A score to minimise: the loss, or (minus the accuracy, the loss) to break ties."""
    return (scores["loss"],) if monitor == "loss" else (-scores["accuracy"], scores["loss"])


@functools.cache
def _default_optimizer():
    """`optax.adam(1e-3)`, one object for every call, so that fits reuse the compiled step."""
    return optax.adam(1e-3)


def _take(data, indices):
    """The samples `indices` of a dataset of NumPy arrays (a host-side gather)."""
    return jax.tree.map(lambda x: x[indices], data)


def _host_arrays(dataset, dtype):
    """The dataset's arrays as NumPy arrays, its floating-point ones (times, values, regression
    targets) in the model's dtype."""
    cast = lambda x: x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x
    return jax.tree.map(lambda x: cast(np.asarray(x)), dataset)


def _float_dtype(model):
    leaves = [x for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)) if x is not None]
    return leaves[0].dtype if leaves else jnp.zeros(()).dtype


def _postfix(history: History) -> dict[str, str]:
    out = {"loss": f"{history.train_loss[-1]:.4g}"}
    if not math.isnan(history.val_loss[-1]):
        out["val_loss"] = f"{history.val_loss[-1]:.4g}"
    if not math.isnan(history.val_accuracy[-1]):
        out["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
    return out


def _progress_bar(epochs: int, progress: bool):
    if not progress:
        return range(epochs)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('fit(progress=True) shows a tqdm bar: pip install "sdekit[neural]" (or tqdm), or pass '
                          "progress=False") from None
    return tqdm(range(epochs), desc="fit", unit="epoch")


def _check_positive(**numbers: int) -> None:
    for name, value in numbers.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

