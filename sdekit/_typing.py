"""Shared jaxtyping aliases for sdekit's public signatures, and whether a value's numbers are known
now (concrete) or traced."""

from typing import Any

import jax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree, Real  # noqa: F401

#: A real scalar: a Python number, a NumPy scalar or a 0-d array (possibly traced).
RealScalarLike = float | int | Real[ArrayLike, ""]
#: The state of a differential equation: any pytree of floating-point arrays.
Y = PyTree[Float[ArrayLike, "..."]]
#: Extra arguments passed to vector fields: any pytree.
Args = PyTree[Any]
#: A PRNG key (new-style typed key or legacy uint32[2]).
Key = Any


def is_traced(x) -> bool:
    """Whether any leaf of the pytree `x` is a JAX tracer (its numbers are not known now)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def is_concrete(x) -> bool:
    """Whether `x` is given (not None) and its numbers are known now: no leaf is a tracer."""
    return x is not None and not is_traced(x)
