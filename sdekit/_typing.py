"""Shared jaxtyping aliases for sdekit's public signatures."""

from typing import Any

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree, Real  # noqa: F401

#: A real scalar: a Python number, a NumPy scalar or a 0-d array (possibly traced).
RealScalarLike = float | int | Real[ArrayLike, ""]
#: The state of a differential equation: any pytree of floating-point arrays.
Y = PyTree[Float[ArrayLike, "..."]]
#: Extra arguments passed to vector fields: any pytree.
Args = PyTree[Any]
#: A PRNG key (new-style typed key or legacy uint32[2]).
Key = Any
