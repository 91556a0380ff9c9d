"""`Dataset`: a batch of irregularly observed, possibly variable-length time series with labels,
padded to one length so that models can `vmap` over it."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, Shaped


def default_float():
    """jax's default float: float32, or float64 under `jax_enable_x64`."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def default_int():
    return jax.dtypes.canonicalize_dtype(jnp.int64)


class Dataset(eqx.Module):
    """Labelled time series, padded to one length $L$; a pytree, so it passes through `jit`.

    Sample $i$ has `lengths[i]` time points. Past them (padding), `times` repeats the last time,
    `values` is NaN and `mask` False. Inside them, `values` is NaN (and `mask` False) where a
    channel was not observed: missing in the file, removed by [`drop`][sdekit.data.drop], or a
    channel with fewer points than the others. Times are the file's timestamps where it has them,
    else $0, 1, \\dots, L_i - 1$ as floats; models rescale them.

    Attributes:
        times: observation times, shape (N, L), strictly increasing within each sample's length.
        values: observations, shape (N, L, C), NaN where not observed.
        mask: True where observed, shape (N, L, C); always `~isnan(values)`.
        lengths: time points before padding, shape (N,).
        labels: class indices into `classes` (integers, shape (N,)) for classification; regression
            targets (floats, shape (N,) or (N, D)) otherwise, (N, 0) when the data has none.
        official_test: True for samples from an archive's official TEST file (see
            [`load`][sdekit.data.load]); False otherwise.
        classes: the class names (static); `()` for regression.
        name: the dataset's name (static).

    Indexing with an integer array, a slice or a boolean mask selects samples (`ds[idx]` is a
    `Dataset`; a single integer gives a one-sample `Dataset`). Build one from arrays with
    [`Dataset.from_arrays`][sdekit.data.Dataset.from_arrays], which checks the data.

    Examples:
        >>> import numpy as np
        >>> from sdekit import data as skdata
        >>> ds = skdata.Dataset.from_arrays([np.ones((3, 2)), np.zeros((5, 2))], ["a", "b"])
        >>> len(ds), ds.values.shape, ds.lengths.tolist(), ds.classes
        (2, (2, 5, 2), [3, 5], ('a', 'b'))
        >>> ds.times[0].tolist()  # padding repeats the last time
        [0.0, 1.0, 2.0, 2.0, 2.0]
        >>> ds[1:].labels.tolist(), ds.num_channels, ds.num_classes
        ([1], 2, 2)
    """

    times: Float[Array, "N L"]
    values: Float[Array, "N L C"]
    mask: Bool[Array, "N L C"]
    lengths: Int[Array, " N"]
    labels: Shaped[Array, "N *D"]
    official_test: Bool[Array, " N"]
    classes: tuple[str, ...] = eqx.field(static=True, default=())
    name: str = eqx.field(static=True, default="")

    def __check_init__(self):
        n, length = self.times.shape[:2] if self.times.ndim == 2 else (None, None)
        if n is None or self.values.ndim != 3 or self.values.shape[:2] != (n, length):
            raise ValueError(f"times must have shape (N, L) and values (N, L, C); got times "
                             f"{self.times.shape} and values {self.values.shape}")
        if self.mask.shape != self.values.shape:
            raise ValueError(f"mask has shape {self.mask.shape}, values {self.values.shape}")
        for field in ("lengths", "labels", "official_test"):
            shape = getattr(self, field).shape
            if not shape or shape[0] != n:
                raise ValueError(f"{field} must have N={n} rows; got shape {shape}")

    def __len__(self) -> int:
        return self.times.shape[0]

    def __getitem__(self, index) -> "Dataset":
        if not isinstance(index, (slice, tuple, jax.core.Tracer)) and np.ndim(index) == 0:
            index = int(index)
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        elif isinstance(index, tuple):
            raise TypeError("a Dataset is indexed along its samples only: ds[idx]")
        if not isinstance(index, slice) and jnp.ndim(index) != 1:
            raise TypeError(f"index a Dataset with an integer, a slice, or a 1-d integer or "
                            f"boolean array; got an array of shape {jnp.shape(index)}")
        leaves = (index, *jax.tree.leaves(self))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return jax.tree.map(lambda x: x[index], self)
        # Concrete data: select on the host (a jax gather would compile for every new size).
        index = index if isinstance(index, slice) else np.asarray(index)
        return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[index]), self)

    @property
    def num_channels(self) -> int:
        return self.values.shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_classification(self) -> bool:
        return bool(self.classes)

    def trim(self) -> "Dataset":
        """The same samples with the padding beyond the longest one cut off (after selecting
        short samples, say). Needs concrete `lengths` (not under `jit`)."""
        keep = int(jnp.max(self.lengths)) if len(self) else 0
        return eqx.tree_at(lambda d: (d.times, d.values, d.mask), self,
                           (self.times[:, :keep], self.values[:, :keep], self.mask[:, :keep]))

    @classmethod
    def from_arrays(cls, values, labels=None, *, times=None, lengths=None, classes: Sequence[str] = (),
                    name: str = "", official_test=None) -> "Dataset":
        """Check and pad concrete arrays into a `Dataset` (floats in jax's default dtype).

        Args:
            values: an (N, L, C) array, or a list of N arrays of shapes (L_i, C) (variable
                length). NaN marks a missing value.
            labels: None (no targets: shape (N, 0)); N strings or integers (classification,
                classes in `classes` order if given, else sorted); or N floats / an (N, D) float
                array (regression).
            times: None ($0, 1, \\dots$), an (N, L) array, or a list of N arrays of shapes (L_i,).
            lengths: time points per sample when `values` is a padded array (default: all L).
            classes: the class names, in index order.
            name: the dataset's name.
            official_test: optional N booleans (default all False).

        Raises:
            ValueError: a sample with no observed value, times that do not strictly increase
                within a sample's length, a label outside `classes`, inconsistent shapes.
        """
        series = _as_series(values, lengths)
        n = len(series)
        stamps = _as_times(times, [len(s) for s in series])
        longest = max((len(s) for s in series), default=0)
        channels = series[0].shape[1] if n else 0
        vals = np.full((n, longest, channels), np.nan)
        ts = np.zeros((n, longest))
        for i, (s, t) in enumerate(zip(series, stamps)):
            if s.shape[1] != channels:
                raise ValueError(f"sample {i} has {s.shape[1]} channels, sample 0 has {channels}")
            _check_sample(i, s, t, name)
            vals[i, : len(s)] = s
            ts[i, : len(s)] = t
            ts[i, len(s):] = t[-1]
        label_array, classes = _labels(labels, n, tuple(classes))
        official = np.zeros(n, bool) if official_test is None else np.asarray(official_test, bool)
        # numpy until here, dtypes converted on the host: a jax op would compile for every shape.
        flt, integer = np.dtype(default_float()), np.dtype(default_int())
        return cls(times=jnp.asarray(ts.astype(flt)), values=jnp.asarray(vals.astype(flt)),
                   mask=jnp.asarray(~np.isnan(vals)),
                   lengths=jnp.asarray(np.array([len(s) for s in series], integer)),
                   labels=label_array, official_test=jnp.asarray(official), classes=classes, name=name)


def _as_series(values, lengths) -> list[np.ndarray]:
    if isinstance(values, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths is for a padded (N, L, C) array; a list gives them itself")
        series = [np.asarray(v, np.float64) for v in values]
        for i, s in enumerate(series):
            if s.ndim != 2:
                raise ValueError(f"sample {i} must have shape (L_i, C); got {s.shape}")
        return series
    array = np.asarray(values, np.float64)
    if array.ndim != 3:
        raise ValueError(f"values must be an (N, L, C) array or a list of (L_i, C) arrays; "
                         f"got shape {array.shape}")
    lengths = np.full(len(array), array.shape[1]) if lengths is None else np.asarray(lengths)
    if lengths.shape != (len(array),) or np.any(lengths < 1) or np.any(lengths > array.shape[1]):
        raise ValueError(f"lengths must be N={len(array)} integers in [1, {array.shape[1]}]")
    return [a[:k] for a, k in zip(array, lengths)]


def _as_times(times, sizes) -> list[np.ndarray]:
    if times is None:
        return [np.arange(k, dtype=np.float64) for k in sizes]
    if isinstance(times, (list, tuple)):
        stamps = [np.asarray(t, np.float64) for t in times]
    else:
        array = np.asarray(times, np.float64)
        if array.ndim != 2 or len(array) != len(sizes):
            raise ValueError(f"times must have shape (N, L) with N={len(sizes)}; got {array.shape}")
        stamps = list(array)
    if len(stamps) != len(sizes):
        raise ValueError(f"times has {len(stamps)} samples, values {len(sizes)}")
    for i, (t, k) in enumerate(zip(stamps, sizes)):
        if t.ndim != 1 or len(t) < k:
            raise ValueError(f"sample {i} has {k} time points but times of shape {t.shape}")
    return [t[:k] for t, k in zip(stamps, sizes)]


def _check_sample(i, values, times, name):
    where = f" of {name}" if name else ""
    if len(values) == 0 or not np.any(~np.isnan(values)):
        raise ValueError(f"sample {i}{where} has no observed value (all NaN or empty)")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"sample {i}{where} has a time that is NaN or infinite")
    steps = np.diff(times)
    if np.any(steps <= 0):
        j = int(np.argmax(steps <= 0)) + 1
        raise ValueError(f"times of sample {i}{where} do not increase: t[{j}] = {times[j]} "
                         f"after t[{j - 1}] = {times[j - 1]}")


def _labels(labels, n, classes):
    """Labels as jax arrays: class indices (with their names) or float targets."""
    if labels is None:
        return jnp.asarray(np.zeros((n, 0), default_float())), ()
    array = np.asarray(labels)
    if array.shape[:1] != (n,):
        raise ValueError(f"labels must have N={n} rows; got shape {array.shape}")
    if array.dtype.kind in "USO" or (array.dtype.kind in "iub" and (classes or array.ndim == 1)):
        if array.ndim != 1:
            raise ValueError(f"class labels must have shape (N,); got {array.shape}")
        if array.dtype.kind in "iub" and classes:
            index = array.astype(np.int64)
            if np.any((index < 0) | (index >= len(classes))):
                raise ValueError(f"class indices must lie in [0, {len(classes)}); got "
                                 f"{sorted(set(index[(index < 0) | (index >= len(classes))].tolist()))}")
            return jnp.asarray(index.astype(default_int())), classes
        names = [str(x) for x in array.tolist()]
        if not classes:
            unique = set(names)
            classes = tuple(sorted(unique, key=_natural)) if unique else ()
        position = {c: k for k, c in enumerate(classes)}
        unknown = sorted(set(names) - set(position))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the classes {list(classes)}")
        return jnp.asarray(np.array([position[s] for s in names], default_int())), classes
    if classes:
        raise ValueError("classes given with float labels: regression targets have no classes")
    return jnp.asarray(array.astype(default_float())), ()


def _natural(name: str):
    """Sort numeric class names by value ('2' before '10'), others alphabetically after them."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)

