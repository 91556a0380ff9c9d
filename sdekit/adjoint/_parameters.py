"""The differentiable parameters of a solve: what the custom adjoints return cotangents for."""

import equinox as eqx
import jax

from .._solve import float_to_array


def split_parameters(problem, args):
    """`(diff, static)`: the floating-point array leaves of `(problem, args)` and the rest.

    A differentiated Python float reaches a `custom_vjp`'s backward pass as a float (its primal
    value), not as an array; it is made an array first, so that it is a parameter like any
    other rather than a constant whose gradient would silently be zero.
    """
    as_arrays = jax.tree.map(float_to_array, (problem, args))
    return eqx.partition(as_arrays, eqx.is_inexact_array)
