"""`sdekit.neural.fit`, `evaluate`, `predict` and the metrics, on small synthetic datasets and tiny
equinox models (the models of `sdekit.neural` are tested in their own files)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sdekit import data as skdata
from sdekit import neural as skn
from sdekit.neural import _fit


def separable(n, seed, *, length=12, channels=2, flip=False):
    """Two classes whose channel means differ by 1.5 (plus noise), some observations missing, and
    variable lengths; `flip` swaps the labels (a validation set that training makes worse)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    series, times = [], []
    for label in labels:
        k = int(rng.integers(length // 2, length + 1))
        x = rng.normal(size=(k, channels)) + 1.5 * label
        x[rng.random((k, channels)) < 0.3] = np.nan
        x[0] = rng.normal(size=channels) + 1.5 * label  # at least one observation
        series.append(x)
        times.append(np.cumsum(rng.uniform(0.5, 1.5, k)))
    return skdata.Dataset.from_arrays(series, (1 - labels) if flip else labels, times=times, classes=("a", "b"))


class MeanClassifier(eqx.Module):
    """Logits from a linear map of each channel's mean over the observed values, plus noise
    scaled by `noise` (so that keys matter)."""

    linear: eqx.nn.Linear
    noise: float = eqx.field(static=True, default=0.0)

    def __call__(self, times, values, *, key):
        logits = self.linear(jnp.nan_to_num(jnp.nanmean(values, axis=0)))
        return logits + self.noise * jax.random.normal(key, logits.shape, logits.dtype)


def classifier(key=0, channels=2, noise=0.0):
    return MeanClassifier(eqx.nn.Linear(channels, 2, key=jax.random.key(key)), noise)


# One optimizer object and one set of shapes (64 training, 32 validation samples, batches of 16)
# for most tests: fits of models of one structure then reuse the compiled steps.
OPTIMIZER = optax.adam(5e-2)
N_TRAIN, N_VAL, BATCH = 64, 32, 16


def test_fit_lowers_the_loss_and_separates_the_classes():
    train, val, test = separable(N_TRAIN, 0), separable(N_VAL, 1), separable(200, 2)
    model = classifier()
    before = skn.evaluate(model, test, key=jax.random.key(0))
    fitted, history = skn.fit(model, train, val, optimizer=OPTIMIZER, epochs=12, batch_size=BATCH,
                              key=jax.random.key(1), progress=False)
    after = skn.evaluate(fitted, test, key=jax.random.key(0))
    assert history.epochs == 12 and len(history.val_loss) == len(history.time) == 12
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert after["loss"] < 0.6 * before["loss"]
    # Chance is 0.5; the Bayes rate of these classes is about 0.95 (means 1.5 apart over ~6 points).
    assert after["accuracy"] > 0.85 and after["f1_weighted"] > 0.85, after


def test_early_stopping_restores_the_best_validation_model(tmp_path):
    """Labels flipped in validation: training makes the validation loss worse after a few
    epochs, so training stops `patience` epochs after the best one, and the model returned (and
    checkpointed) is that epoch's."""
    train, val = separable(N_TRAIN, 3), separable(N_VAL, 4, flip=True)
    patience = 2
    fitted, history = skn.fit(classifier(), train, val, optimizer=OPTIMIZER, epochs=30, batch_size=BATCH,
                              key=jax.random.key(2), patience=patience, progress=False, checkpoint_dir=tmp_path)
    best = int(np.argmin(history.val_loss))
    assert history.best_epoch == best and history.stopped_early
    assert history.epochs == best + 1 + patience < 30
    rescored = skn.evaluate(fitted, val, key=jax.random.key(0))  # a deterministic model
    assert rescored["loss"] == pytest.approx(history.val_loss[best], rel=1e-5)
    assert rescored["loss"] < history.val_loss[-1]
    # The checkpoint round trip gives the returned model, leaf for leaf; the JSON is the history.
    restored = eqx.tree_deserialise_leaves(tmp_path / "model.eqx", classifier(key=99))
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(fitted)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "history.json").read_text()) == json.loads(json.dumps(history.to_dict()))


def test_monitor_accuracy_and_errors():
    train, val = separable(N_TRAIN, 5), separable(N_VAL, 6)
    _, history = skn.fit(classifier(), train, val, optimizer=OPTIMIZER, epochs=3, batch_size=BATCH,
                         key=jax.random.key(0), monitor="accuracy", progress=False)
    scores = list(zip(np.negative(history.val_accuracy), history.val_loss))
    assert history.best_epoch == scores.index(min(scores))
    kwargs = dict(epochs=1, key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        skn.fit(classifier(), train, val, loss="hinge", **kwargs)
    with pytest.raises(ValueError, match="monitor must be"):
        skn.fit(classifier(), train, val, monitor="f1", **kwargs)
    with pytest.raises(ValueError, match="kl_annealing"):
        skn.fit(classifier(), train, val, kl_annealing=10, **kwargs)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        skn.fit(classifier(), train, val, batch_size=0, **kwargs)
    with pytest.raises(TypeError, match="no 'adjoint' field"):
        skn.fit(classifier(), train, val, adjoint=object(), **kwargs)


def test_no_retracing_across_batches_and_epochs():
    """One trace of the training step and one of the evaluation step for a whole fit whose last
    batch is partial (50 = 3 x 16 + 2), over several epochs; a second fit of a model of the same
    structure reuses both."""
    traces = []

    class Counted(eqx.Module):
        linear: eqx.nn.Linear

        def __call__(self, times, values, *, key):
            traces.append(values.shape)  # runs only while jax traces the model
            return self.linear(jnp.nan_to_num(jnp.nanmean(values, axis=0)))

    train, val = separable(50, 7), separable(20, 8)
    optimizer = optax.adam(1e-2)
    model = Counted(eqx.nn.Linear(2, 2, key=jax.random.key(0)))
    skn.fit(model, train, val, optimizer=optimizer, epochs=4, batch_size=16, key=jax.random.key(1), progress=False)
    assert len(traces) == 2, traces
    skn.fit(Counted(eqx.nn.Linear(2, 2, key=jax.random.key(5))), train, val, optimizer=optimizer, epochs=2,
            batch_size=16, key=jax.random.key(2), progress=False)
    assert len(traces) == 2, traces


def test_custom_loss_and_regression():
    """A user's batch loss (traced once) and the built-in MSE on float targets."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(60, 8, 1))
    ds = skdata.Dataset.from_arrays(x, 2.0 * x[:, :, 0].mean(axis=1) + 0.5)

    class Regressor(eqx.Module):
        linear: eqx.nn.Linear

        def __call__(self, times, values, *, key):
            return self.linear(jnp.nanmean(values, axis=0))

    model = Regressor(eqx.nn.Linear(1, 1, key=jax.random.key(0)))
    fitted, history = skn.fit(model, ds[:40], ds[40:], loss="mse", optimizer=optax.adam(5e-2), epochs=40,
                              batch_size=20, key=jax.random.key(1), progress=False)
    scores = skn.evaluate(fitted, ds[40:], key=jax.random.key(0))
    assert set(scores) == {"loss", "mse"} and scores["mse"] < 0.05 * history.val_loss[0]
    np.testing.assert_allclose(fitted.linear.weight, [[2.0]], atol=0.1)

    def l1(model, batch, key):
        out = jax.vmap(lambda t, v: model(t, v, key=key))(batch.times, batch.values)[:, 0]
        return jnp.mean(jnp.abs(out - batch.labels))

    fitted, history = skn.fit(model, ds[:40], ds[40:], loss=l1, optimizer=optax.adam(5e-2), epochs=40,
                              batch_size=20, key=jax.random.key(1), progress=False)
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]


def test_predict_and_evaluate_do_not_depend_on_the_batch_size():
    """Sample i's noise is fold_in(key, i), so a stochastic model gives the same outputs in any
    batching; padding of the last batch never reaches the outputs."""
    ds, model = separable(23, 10), classifier(noise=1.0)
    a = skn.predict(model, ds, key=jax.random.key(3), batch_size=5)
    b = skn.predict(model, ds, key=jax.random.key(3), batch_size=23)
    assert a.shape == (23, 2)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(a, skn.predict(model, ds, key=jax.random.key(4)))
    one, all_ = (skn.evaluate(model, ds, key=jax.random.key(3), batch_size=s) for s in (5, 23))
    assert one == pytest.approx(all_, rel=1e-6)


def test_fit_in_float64_and_float32(dtype):
    train, val = separable(N_TRAIN, 11), separable(N_VAL, 12)
    model = jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, classifier())
    fitted, history = skn.fit(model, train, val, optimizer=OPTIMIZER, epochs=2, batch_size=BATCH,
                              key=jax.random.key(0), progress=False)
    assert fitted.linear.weight.dtype == dtype and np.isfinite(history.val_loss).all()


def test_weighted_f1_against_a_hand_computation():
    # Confusion matrix (rows: true class, columns: predicted) [[3, 1, 0], [1, 1, 0], [2, 0, 2]].
    counts = np.array([[3, 1, 0], [1, 1, 0], [2, 0, 2]])
    labels = np.repeat(np.arange(3), counts.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(3), row) for row in counts])
    assert skn.confusion_matrix(labels, predicted).tolist() == counts.tolist()
    # Class 0: tp 3, fp 3, fn 1 -> 6/10; class 1: tp 1, fp 1, fn 1 -> 2/4; class 2: tp 2, fp 0,
    # fn 2 -> 4/6. Supports 4, 2, 4.
    expected = (4 * 0.6 + 2 * 0.5 + 4 * (4 / 6)) / 10
    assert skn.f1_weighted(labels, predicted) == pytest.approx(expected, rel=1e-12)
    assert skn.accuracy(labels, predicted) == pytest.approx(6 / 10)
    # A class that is only predicted has no support; one never predicted scores 0.
    assert skn.f1_weighted([0, 0, 1], [0, 2, 0]) == pytest.approx((2 * 0.5 + 1 * 0.0) / 3)
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        skn.f1_weighted([0, 1], [0])
