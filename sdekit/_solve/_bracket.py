r"""A bracketing root finder for events: Illinois (regula falsi with the retained end's value
halved), then bisection, vectorised over several functions with brackets of their own.

Every function $f_k$ changes sign on its bracket $[a_k, b_k]$: $f_k(a_k)$ is strictly of one
sign and $f_k(b_k)$ is zero or of the other (it has *crossed*). Each iteration moves one end of
each active bracket to a point inside it, keeping that invariant, until the bracket is a few
ulps of the time dtype wide, or a point where $f_k = 0$ exactly is found. The result is the
crossed end $b_k$: the time at which the condition has crossed, to the time dtype's precision.

Illinois converges superlinearly (order about 1.44) for simple roots of smooth functions. The
iteration count is bounded all the same: after `SECANT_ITERATIONS` iterations (and always for
boolean conditions, whose values carry no slope) it bisects, which reaches the tolerance from
any bracket in at most the number of mantissa bits.

References:
    M. Dowell, P. Jarratt, "A modified regula falsi method for computing the root of an
    equation", BIT 11 (1971), 168-174.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from .._once import computed_once, opaque_word

#: Illinois iterations before the root finder falls back to bisection.
SECANT_ITERATIONS = 30


class _Bracket(NamedTuple):
    a: Float[Array, " k"]  # not yet crossed
    b: Float[Array, " k"]  # crossed (or zero)
    fa: Float[Array, " k"]
    fb: Float[Array, " k"]
    side: Int[Array, " k"]  # which end the last iteration moved: +1 b, -1 a, 0 none yet
    active: Bool[Array, " k"]
    iteration: Int[Array, ""]


def max_iterations(dtype) -> int:
    """Illinois iterations, then enough bisections to shrink any bracket to the tolerance."""
    return SECANT_ITERATIONS + int(jnp.finfo(dtype).nmant) + 8


def crossed_ends(
    fn: Callable[[Float[Array, " k"]], Float[Array, " k"]],
    a: Float[Array, " k"],
    b: Float[Array, " k"],
    fa: Float[Array, " k"],
    fb: Float[Array, " k"],
    active: Bool[Array, " k"],
    bisect_only: Bool[Array, " k"],
) -> Float[Array, " k"]:
    """The crossed end of each bracket `[a, b]` (`a < b`) of `fn`, shrunk to a few ulps.

    Args:
        fn: the functions, all evaluated at once: `fn(x)[k]` is $f_k(x_k)$.
        a, b, fa, fb: the brackets and the values at their ends (`fa` strictly of one sign,
            `fb` zero or of the other).
        active: which brackets to shrink; the others return `b` unchanged (and cost nothing
            once every active one has converged: the loop runs while any is active).
        bisect_only: functions whose values carry no slope (booleans as +-1): bisect them.

    Returns:
        `b` of each shrunk bracket (no derivative flows through the iterations: the caller
        differentiates the root by the implicit function theorem).
    """
    dtype = a.dtype
    eps = jnp.finfo(dtype).eps
    tol = 4 * eps * jnp.maximum(jnp.maximum(jnp.abs(a), jnp.abs(b)), b - a)
    sign_a = jnp.sign(fa)
    limit = max_iterations(dtype)

    def cond(c: _Bracket):
        return (c.iteration < limit) & jnp.any(c.active)

    def body(c: _Bracket) -> _Bracket:
        mid = c.a + (c.b - c.a) / 2
        slope = c.fb - c.fa
        secant = c.b - c.fb * (c.b - c.a) / jnp.where(slope == 0, 1, slope)
        # A secant point not strictly inside the bracket (rounding, a NaN) is replaced by the midpoint.
        use_mid = bisect_only | (c.iteration >= SECANT_ITERATIONS) | ~((secant > c.a) & (secant < c.b))
        x = jnp.where(use_mid, mid, secant)
        # Computed once: XLA would otherwise redo the interpolation and the conditions in each
        # of the kernels that read them (one per carried array).
        fx = computed_once(lambda: fn(x), opaque_word(x))
        crossed = fx * sign_a <= 0
        # Illinois: an end kept twice in a row has its value halved, so that the next secant
        # point moves towards it (plain regula falsi would keep one end forever).
        fa_kept = jnp.where(c.side == 1, c.fa / 2, c.fa)
        fb_kept = jnp.where(c.side == -1, c.fb / 2, c.fb)
        a = jnp.where(crossed, c.a, x)
        b = jnp.where(crossed, x, c.b)
        fa = jnp.where(crossed, fa_kept, fx)
        fb = jnp.where(crossed, fx, fb_kept)
        done = (b - a <= tol) | (fx == 0) | (x <= c.a) | (x >= c.b)
        on = c.active
        return _Bracket(
            a=jnp.where(on, a, c.a),
            b=jnp.where(on, b, c.b),
            fa=jnp.where(on, fa, c.fa),
            fb=jnp.where(on, fb, c.fb),
            side=jnp.where(on, jnp.where(crossed, 1, -1), c.side).astype(jnp.int32),
            active=on & ~done,
            iteration=c.iteration + 1,
        )

    start = _Bracket(a, b, fa, fb, jnp.zeros(a.shape, jnp.int32), active & (b - a > tol), jnp.zeros((), jnp.int32))
    return lax.while_loop(cond, body, start).b
