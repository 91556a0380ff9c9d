r"""Exact Gaussian rules for Brownian pieces: midpoint split, any-point bridge, Chen.

A *piece* is the array `stack([W, H, K][:n])` of one sub-interval, in the normalised forms
of `Increment` ($H = \bar H/h$, $K = \bar K/h^2$), so every component has the scale
$\sqrt h$ of its own interval. Working in normalised forms keeps all components of a
piece at one magnitude (no $h^{5/2}$ underflow deep in the tree) and makes every rule
below depend on width *ratios* only.

All rules take standard normals `xi` (shape `(n, ...)`) and the scale `sqrt_h` of the
interval being divided, so the caller decides where the randomness comes from.

Formulas (derivations in `/shared/reference/brownian.md` §2-4 and, for the 3x3 law with
K, by Gaussian conditioning on Chen's relation, checked by sympy and by Monte Carlo in
`tests/brownian/test_bridge.py`).
"""

import math

import jax.lax as lax
import numpy as np
from jax.lax import add, div, mul, sqrt, sub

from .._typing import Array

_SQRT3 = math.sqrt(3.0)
_SQRT5 = math.sqrt(5.0)

# The rules are written with `lax` ops, not `jax.numpy` operators: those are jitted helpers,
# traced afresh for every new shape, and a grid build applies the rules to pieces of a new
# shape at every level (a third of its trace time). `lax` ops broadcast only scalars and never
# promote dtypes, so callers pass per-node fractions broadcast to the pieces' shape (or
# scalars), and constants are made in the pieces' dtype (`_const`).


def _part(x: Array, i: int) -> Array:
    """Component `i` of a piece (component axis first)."""
    return lax.index_in_dim(x, i, 0, keepdims=False)


def _stack(*parts: Array) -> Array:
    """A piece from its components."""
    return lax.concatenate([lax.expand_dims(p, (0,)) for p in parts], 0)


def _const(dtype):
    """Python numbers as scalars of `dtype` (rounded once, as `jax.numpy` rounds weak scalars)."""
    return lambda v: np.asarray(v, dtype)


def root(xi: Array) -> Array:
    """The piece of the whole rescaled interval [0, 1] from standard normals."""
    n = xi.shape[0]
    num = _const(xi.dtype)
    scale = (1.0, 1.0 / math.sqrt(12.0), 1.0 / math.sqrt(720.0))[:n]
    return _stack(*(mul(num(s), _part(xi, i)) for i, s in enumerate(scale)))


def split(node: Array, xi: Array, sqrt_h: Array) -> tuple[Array, Array]:
    r"""Midpoint rule: the two halves of `node` (width $h$, `sqrt_h` $=\sqrt h$).

    With $Z \sim N(0, h/16)$, $N \sim N(0, h/12)$, $X_1 \sim N(0, h/768)$,
    $X_2 \sim N(0, h/2880)$ (Foster, thesis, Thm 6.1.6, and its extension with K),
    in normalised forms of the halves:

    - $W_{L,R} = \tfrac12 W \pm (\tfrac32 H + Z)$,
    - $H_{L,R} = \tfrac14 H - \tfrac12 Z \pm \tfrac12 N$, or with K
      $\tfrac14 H - \tfrac12 Z \pm (\tfrac{15}{4}K + X_1)$,
    - $K_{L,R} = \tfrac18 K - \tfrac12 X_1 \pm X_2$.
    """
    n = node.shape[0]
    num = _const(node.dtype)
    w = _part(node, 0)
    if n == 1:
        z = mul(mul(num(0.5), sqrt_h), _part(xi, 0))
        half = mul(num(0.5), w)
        return _stack(add(half, z)), _stack(sub(half, z))
    hh = _part(node, 1)
    z = mul(mul(num(0.25), sqrt_h), _part(xi, 0))
    half = mul(num(0.5), w)
    dw = add(mul(num(1.5), hh), z)
    base = sub(mul(num(0.25), hh), mul(num(0.5), z))
    if n == 2:
        dh = mul(mul(num(0.5 / math.sqrt(12.0)), sqrt_h), _part(xi, 1))
        return _stack(add(half, dw), add(base, dh)), _stack(sub(half, dw), sub(base, dh))
    kk = _part(node, 2)
    x1 = mul(div(sqrt_h, num(math.sqrt(768.0))), _part(xi, 1))
    x2 = mul(div(sqrt_h, num(math.sqrt(2880.0))), _part(xi, 2))
    dh = add(mul(num(3.75), kk), x1)
    kb = sub(mul(num(0.125), kk), mul(num(0.5), x1))
    left = _stack(add(half, dw), add(base, dh), add(kb, x2))
    right = _stack(sub(half, dw), sub(base, dh), sub(kb, x2))
    return left, right


def chen(first: Array, second: Array, a: Array, b: Array) -> Array:
    r"""Chen's relation: the piece of $[s, u]$ from those of $[s, t]$ and $[t, u]$.

    `a` $= (t-s)/(u-s)$ and `b` $= (u-t)/(u-s)$ are the width fractions. In normalised
    forms: $W = W_1 + W_2$, $H = aH_1 + bH_2 + \tfrac12(bW_1 - aW_2)$,
    $K = a^2K_1 + b^2K_2 + \tfrac12 ab(H_1 - H_2) + \tfrac{a-b}{12}(aW_2 - bW_1)$.
    """
    n = first.shape[0]
    num = _const(first.dtype)
    w1, w2 = _part(first, 0), _part(second, 0)
    w = add(w1, w2)
    if n == 1:
        return _stack(w)
    h1, h2 = _part(first, 1), _part(second, 1)
    h = add(add(mul(a, h1), mul(b, h2)), mul(num(0.5), sub(mul(b, w1), mul(a, w2))))
    if n == 2:
        return _stack(w, h)
    k1, k2 = _part(first, 2), _part(second, 2)
    k = add(add(mul(mul(a, a), k1), mul(mul(b, b), k2)), mul(mul(mul(num(0.5), a), b), sub(h1, h2)))
    k = add(k, mul(div(sub(a, b), num(12.0)), sub(mul(a, w2), mul(b, w1))))
    return _stack(w, h, k)


def unchen(whole: Array, first: Array, a: Array, b: Array) -> Array:
    """Inverse of `chen`: the second piece from the whole and the first (`b > 0`).

    Used only for two queries inside one leaf, where differencing is unavoidable.
    """
    n = whole.shape[0]
    num = _const(whole.dtype)
    w1 = _part(first, 0)
    w2 = sub(_part(whole, 0), w1)
    if n == 1:
        return _stack(w2)
    h1 = _part(first, 1)
    h2 = div(sub(sub(_part(whole, 1), mul(a, h1)), mul(num(0.5), sub(mul(b, w1), mul(a, w2)))), b)
    if n == 2:
        return _stack(w2, h2)
    k1 = _part(first, 2)
    k2 = sub(sub(_part(whole, 2), mul(mul(a, a), k1)), mul(mul(mul(num(0.5), a), b), sub(h1, h2)))
    k2 = div(sub(k2, mul(div(sub(a, b), num(12.0)), sub(mul(a, w2), mul(b, w1)))), mul(b, b))
    return _stack(w2, h2, k2)


def bridge(leaf: Array, xi: Array, a: Array, b: Array, sqrt_h: Array) -> tuple[Array, Array]:
    r"""Any-point bridge: the pieces of $[c, r]$ and $[r, d]$ inside a leaf $[c, d]$.

    `a` $= (r-c)/h$ and `b` $= (d-r)/h$ are computed directly from the times (never
    as `1 - a`), and each side has its own closed form, so a short side is accurate to
    a few ulps of its own size (no cancellation). The two sides satisfy Chen's relation
    exactly in real arithmetic. W only: the Brownian bridge. With H: Foster's thesis,
    Thm 6.1.4, in normalised form. With K: the conditional law of the left piece given
    $(W, H, K)$ of the leaf (arXiv 2405.06464, Thm 3.7) factored by Cholesky in the
    order K, H, W; the right piece follows from Chen's relation, simplified.
    """
    n = leaf.shape[0]
    num = _const(leaf.dtype)
    w = _part(leaf, 0)
    # One square root, not one per fraction: in the grid build each is a kernel of its own.
    sab = mul(sqrt(mul(a, b)), sqrt_h)
    if n == 1:
        noise = mul(sab, _part(xi, 0))
        return _stack(add(mul(a, w), noise)), _stack(sub(mul(b, w), noise))
    hh = _part(leaf, 1)
    ab = mul(a, b)
    a2 = mul(a, a)
    if n == 2:
        x0, x1 = _part(xi, 0), _part(xi, 1)
        quad = add(add(a2, a), num(1.0))
        c = div(sab, sqrt(quad))
        nw = mul(c, add(mul(mul(num(-_SQRT3), a2), x0), mul(b, x1)))
        mw = mul(mul(num(6.0), ab), hh)
        h1 = add(mul(a2, hh), mul(div(mul(c, quad), num(2.0 * _SQRT3)), x0))
        h2 = sub(mul(mul(b, b), hh), mul(c, add(mul(mul(num(_SQRT3 / 6.0), ab), x0), mul(num(0.5), x1))))
        left = _stack(add(add(mul(a, w), mw), nw), h1)
        right = _stack(sub(sub(mul(b, w), mw), nw), h2)
        return left, right
    kk = _part(leaf, 2)
    x0, x1, x2 = _part(xi, 0), _part(xi, 1), _part(xi, 2)

    def horner(*coefficients):  # ((c0 a + c1) a + c2) a + ..., from the leading coefficient
        acc = add(a, num(coefficients[0]))
        for coefficient in coefficients[1:]:
            acc = add(mul(acc, a), num(coefficient))
        return acc

    q5 = horner(1.0, 1.0, 1.0, 1.0)  # a^4 + a^3 + a^2 + a + 1
    q4 = horner(4.0, 10.0, 4.0, 1.0)  # a^4 + 4a^3 + 10a^2 + 4a + 1
    r5, r4 = sqrt(q5), sqrt(q4)
    c5, c4, c54 = div(sab, r5), div(sab, r4), div(sab, mul(r5, r4))
    b2 = mul(b, b)
    # Left piece [c, r]: mean plus Cholesky factor (order K, H, W) times xi.
    nw = sub(
        mul(mul(c5, mul(mul(mul(num(_SQRT5), a2), a), sub(a, b))), x0),
        mul(mul(c54, mul(mul(mul(num(_SQRT3), a2), b), add(mul(add(a, num(3.0)), a), num(6.0)))), x1),
    )
    nw = add(nw, mul(mul(c4, b2), x2))
    mw = mul(mul(num(6.0), ab), hh)
    mk = mul(mul(num(60.0), ab), kk)
    w1 = add(add(add(mul(a, w), mw), mul(mk, sub(b, a))), nw)
    h1 = add(mul(a2, hh), mul(mul(mul(num(30.0), a2), b), kk))
    h1 = sub(h1, mul(mul(c5, mul(mul(num(0.5 * _SQRT5), a2), a2)), x0))
    h1 = add(h1, mul(mul(c54, mul(mul(num(_SQRT3 / 6.0), b), q4)), x1))
    k1 = add(mul(mul(a2, a), kk), mul(div(mul(c5, q5), num(12.0 * _SQRT5)), x0))
    # Right piece [r, d], from Chen's relation with the left piece, simplified.
    w2 = sub(add(sub(mul(b, w), mw), mul(mk, sub(a, b))), nw)
    p = horner(1.0, 1.0, -14.0, 1.0)  # a^4 + a^3 + a^2 - 14a + 1
    h2 = sub(mul(b2, hh), mul(mul(mul(num(30.0), a), b2), kk))
    h2 = add(h2, mul(mul(c5, mul(mul(mul(num(0.5 * _SQRT5), a2), a), b)), x0))
    h2 = sub(h2, mul(mul(c54, mul(mul(num(_SQRT3 / 6.0), a), p)), x1))
    h2 = sub(h2, mul(mul(c4, mul(num(0.5), b)), x2))
    k2 = sub(mul(mul(b2, b), kk), mul(mul(c5, mul(mul(num(_SQRT5 / 60.0), a2), b2)), x0))
    k2 = sub(k2, mul(mul(c54, mul(num(_SQRT3 / 12.0), ab)), x1))
    k2 = sub(k2, mul(mul(c4, div(add(a, num(1.0)), num(12.0))), x2))
    return _stack(w1, h1, k1), _stack(w2, h2, k2)
