"""Classification and regression metrics, computed with NumPy on the host (no scikit-learn at run
time): accuracy, the confusion matrix, weighted F1 (the stable-neural-SDE papers' second
classification metric) and the mean squared error."""

import numpy as np
from jaxtyping import ArrayLike, Float, Int


def accuracy(labels: Int[ArrayLike, " n"], predicted: Int[ArrayLike, " n"]) -> float:
    """The fraction of `predicted` equal to `labels`.

    Examples:
        >>> from sdekit.neural import accuracy
        >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
        0.75
    """
    labels, predicted = _pair(labels, predicted)
    return float(np.mean(labels == predicted))


def confusion_matrix(labels: Int[ArrayLike, " n"], predicted: Int[ArrayLike, " n"],
                     n_classes: int | None = None) -> np.ndarray:
    """The `(n_classes, n_classes)` count matrix whose entry `[i, j]` is the number of samples of
    class `i` predicted as class `j`. `n_classes` defaults to one more than the largest label seen.

    Examples:
        >>> from sdekit.neural import confusion_matrix
        >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
        [[1, 0], [1, 1]]
    """
    labels, predicted = _pair(labels, predicted)
    if labels.size and min(labels.min(), predicted.min()) < 0:
        raise ValueError("labels and predictions must be class indices 0, 1, 2, ...")
    if n_classes is None:
        n_classes = int(max(labels.max(initial=-1), predicted.max(initial=-1))) + 1
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def f1_weighted(labels: Int[ArrayLike, " n"], predicted: Int[ArrayLike, " n"]) -> float:
    r"""The support-weighted mean of the per-class F1 scores.

    For class $k$ with $\mathrm{tp}_k$ true positives, $\mathrm{fp}_k$ false positives and
    $\mathrm{fn}_k$ false negatives, $F1_k = 2\,\mathrm{tp}_k / (2\,\mathrm{tp}_k + \mathrm{fp}_k +
    \mathrm{fn}_k)$ (0 when the denominator is 0), and the weighted F1 is
    $\sum_k n_k F1_k / \sum_k n_k$ with $n_k$ the number of samples whose true class is $k$
    (scikit-learn's `f1_score(average="weighted")`, with `zero_division=0`).

    Examples:
        >>> from sdekit.neural import f1_weighted
        >>> round(f1_weighted([0, 0, 1, 1], [0, 1, 1, 1]), 4)   # F1: 2/3 and 4/5, weights 1/2
        0.7333
    """
    counts = confusion_matrix(labels, predicted)
    if counts.sum() == 0:
        raise ValueError("f1_weighted needs at least one sample")
    tp = np.diag(counts).astype(np.float64)
    denominator = counts.sum(axis=0) + counts.sum(axis=1)  # (tp + fp) + (tp + fn)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    support = counts.sum(axis=1)
    return float(np.sum(support * f1) / np.sum(support))


def mean_squared_error(targets: Float[ArrayLike, "n ..."], predicted: Float[ArrayLike, "n ..."]) -> float:
    """The mean of `(predicted - targets) ** 2` over every entry.

    Examples:
        >>> from sdekit.neural import mean_squared_error
        >>> mean_squared_error([1.0, 2.0], [1.0, 4.0])
        2.0
    """
    targets, predicted = np.asarray(targets, np.float64), np.asarray(predicted, np.float64)
    if targets.shape != predicted.shape:
        raise ValueError(f"targets {targets.shape} and predictions {predicted.shape} differ in shape")
    return float(np.mean((predicted - targets) ** 2))


def _pair(labels, predicted):
    labels, predicted = np.asarray(labels).astype(np.int64), np.asarray(predicted).astype(np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} must be equal 1-d shapes")
    return labels, predicted
