"""Training losses over a batch of a `sdekit.data.Dataset`: cross entropy for classification,
mean squared error for regression, the negative ELBO of a latent SDE, or a user's function.

A built-in loss is a per-sample function `(model, times, values, label, key, kl_weight) ->
(loss, output)` (the output is what `predict` returns: logits, regression outputs, or nothing for
the ELBO), so that evaluation runs the model once for both the loss and the metrics;
`batch_loss` averages it over a batch with weights (the padded samples that complete the last
batch of an epoch weigh 0). A user's loss `loss(model, batch, key) -> scalar` sees the whole
batch, padding included (see `sdekit.neural.fit`).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

LOSSES = ("cross_entropy", "mse", "elbo")


class Loss(NamedTuple):
    """A resolved training loss: its name, the per-sample function of a built-in loss (None for a
    user's batch function, held in `batch`), and the task whose metrics `evaluate` reports
    ("classification", "regression" or "elbo")."""

    name: str
    per_sample: Callable | None
    batch: Callable | None
    task: str


def cross_entropy(model, times, values, label, key, kl_weight):
    """Softmax cross entropy of the model's logits against an integer label."""
    del kl_weight
    logits = model(times, values, key=key)
    return optax.softmax_cross_entropy_with_integer_labels(logits, label), logits


def squared_error(model, times, values, target, key, kl_weight):
    """Mean over the output entries of the squared error against a regression target."""
    del kl_weight
    out = model(times, values, key=key)
    target = jnp.broadcast_to(jnp.asarray(target).astype(out.dtype), out.shape)
    return jnp.mean((out - target) ** 2), out


def negative_elbo(model, times, values, label, key, kl_weight):
    """A latent SDE's negative evidence lower bound, its KL terms weighted by `kl_weight`."""
    del label
    value, _ = model.negative_elbo(times, values, key=key, kl_weight=kl_weight)
    return value, jnp.zeros((0,), value.dtype)


_BUILT_IN = {
    "cross_entropy": (cross_entropy, "classification"),
    "mse": (squared_error, "regression"),
    "elbo": (negative_elbo, "elbo"),
}


def is_classification(dataset) -> bool:
    """Whether `dataset`'s labels are class indices (integers) rather than regression targets."""
    return jnp.issubdtype(jnp.asarray(dataset.labels).dtype, jnp.integer)


def resolve(loss, dataset) -> Loss:
    """The `Loss` for `loss`: a name in `LOSSES`, "auto" (cross entropy for integer labels, mean
    squared error otherwise) or a callable `(model, batch, key) -> scalar` (its task judged by
    `dataset`'s labels)."""
    if loss == "auto":
        loss = "cross_entropy" if is_classification(dataset) else "mse"
    if callable(loss):
        task = "classification" if is_classification(dataset) else "regression"
        return Loss(getattr(loss, "__name__", "custom"), None, loss, task)
    if loss not in _BUILT_IN:
        raise ValueError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)} or a function (model, batch, key) -> "
                         "scalar")
    per_sample, task = _BUILT_IN[loss]
    if task == "classification" and not is_classification(dataset):
        raise ValueError("loss='cross_entropy' needs integer class labels; these labels are "
                         f"{jnp.asarray(dataset.labels).dtype} (regression targets: use loss='mse')")
    return Loss(loss, per_sample, None, task)


def sample_keys(key, indices):
    """One key per sample, folded from its index in the dataset: a sample's noise does not depend
    on the batch it lands in."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, indices)


def per_sample_losses(loss: Loss, model, batch, keys, kl_weight):
    """The built-in loss and model output of every sample of `batch`."""
    return jax.vmap(loss.per_sample, in_axes=(None, 0, 0, 0, 0, None))(
        model, batch.times, batch.values, batch.labels, keys, kl_weight)


def batch_loss(loss: Loss, model, batch, weights, key, kl_weight):
    """The loss of `model` on `batch`: the weighted mean of a built-in per-sample loss (one key
    per sample, split from `key`), or a user's batch function."""
    if loss.batch is not None:
        return loss.batch(model, batch, key)
    values, _ = per_sample_losses(loss, model, batch, jax.random.split(key, weights.shape[0]), kl_weight)
    weights = weights.astype(values.dtype)
    return jnp.sum(weights * values) / jnp.sum(weights)
