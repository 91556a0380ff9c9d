"""Per-path inputs: `PerPath` marks a `y0` or `args` that differs between paths."""

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp


@dataclass(frozen=True, eq=False)
class PerPath:
    """A `y0` or `args` of `sk.sample_paths` that differs between paths.

    `PerPath(values)`: a pytree whose every leaf has a leading paths axis of length `n_paths`;
    path `i` gets `values[i]` (leaf by leaf). `PerPath(fn)`: path `i` gets `fn(i)` (`i` an int32
    scalar), evaluated inside the compiled ensemble, so nothing of size `n_paths` is built on
    the host. Leaves with a leading axis are split over devices with the paths; a function is
    called where each path runs. Anything not wrapped is shared by all paths.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sk.PerPath(jnp.linspace(0.5, 2.0, 4)).value.shape  # y0 of 4 paths
        (4,)
        >>> sk.PerPath(lambda i: 1.0 + 0.1 * i).value(2)        # y0 of path i
        1.2
    """

    value: Any


def kind(x) -> str:
    """`"shared"`, `"axis"` (leading paths axis) or `"function"` (of the path index)."""
    if not isinstance(x, PerPath):
        return "shared"
    if _is_function(x.value):
        return "function"
    return "axis"


def _is_function(value) -> bool:
    # An equinox module is callable and a pytree of arrays: with array leaves it is data.
    return callable(value) and not any(hasattr(leaf, "shape") for leaf in jax.tree.leaves(value))


def check_axis(name: str, x: PerPath, n_paths: int) -> None:
    leaves = jax.tree.leaves(x.value)
    if not leaves:
        raise ValueError(f"sample_paths: PerPath {name} has no array leaves.")
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0 or shape[0] != n_paths:
            raise ValueError(
                f"sample_paths: every leaf of PerPath {name} needs a leading paths axis of length n_paths={n_paths}, "
                f"got shape {tuple(shape)}."
            )


def resolve(shared, sliced, path_index):
    """One path's value of an input: `shared.value(i)` for `PerPath(fn)`, else this path's slice
    of a leading-axis input (`sliced`), else the shared value itself."""
    if isinstance(shared, PerPath):
        return shared.value(path_index)
    return shared if sliced is None else sliced


def example_value(x, n_paths: int):
    """The shape/dtype structure of one path's value (for defaults such as the Brownian shape)."""
    k = kind(x)
    if k == "axis":
        return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(jnp.shape(leaf)[1:], jnp.result_type(leaf)), x.value)
    if k == "function":
        return jax.eval_shape(x.value, jax.ShapeDtypeStruct((), jnp.int32))
    return x
