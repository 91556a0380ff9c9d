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

import jax.numpy as jnp

from .._typing import Array

_SQRT3 = math.sqrt(3.0)
_SQRT5 = math.sqrt(5.0)


def root(xi: Array) -> Array:
    """The piece of the whole rescaled interval [0, 1] from standard normals."""
    n = xi.shape[0]
    scale = (1.0, 1.0 / math.sqrt(12.0), 1.0 / math.sqrt(720.0))[:n]
    return jnp.stack([s * xi[i] for i, s in enumerate(scale)])


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
    w = node[0]
    if n == 1:
        z = (0.5 * sqrt_h) * xi[0]
        half = 0.5 * w
        return (half + z)[None], (half - z)[None]
    hh = node[1]
    z = (0.25 * sqrt_h) * xi[0]
    half = 0.5 * w
    dw = 1.5 * hh + z
    base = 0.25 * hh - 0.5 * z
    if n == 2:
        dh = (0.5 / math.sqrt(12.0) * sqrt_h) * xi[1]
        return jnp.stack([half + dw, base + dh]), jnp.stack([half - dw, base - dh])
    kk = node[2]
    x1 = (sqrt_h / math.sqrt(768.0)) * xi[1]
    x2 = (sqrt_h / math.sqrt(2880.0)) * xi[2]
    dh = 3.75 * kk + x1
    kb = 0.125 * kk - 0.5 * x1
    left = jnp.stack([half + dw, base + dh, kb + x2])
    right = jnp.stack([half - dw, base - dh, kb - x2])
    return left, right


def chen(first: Array, second: Array, a: Array, b: Array) -> Array:
    r"""Chen's relation: the piece of $[s, u]$ from those of $[s, t]$ and $[t, u]$.

    `a` $= (t-s)/(u-s)$ and `b` $= (u-t)/(u-s)$ are the width fractions. In normalised
    forms: $W = W_1 + W_2$, $H = aH_1 + bH_2 + \tfrac12(bW_1 - aW_2)$,
    $K = a^2K_1 + b^2K_2 + \tfrac12 ab(H_1 - H_2) + \tfrac{a-b}{12}(aW_2 - bW_1)$.
    """
    n = first.shape[0]
    w1, w2 = first[0], second[0]
    w = w1 + w2
    if n == 1:
        return w[None]
    h1, h2 = first[1], second[1]
    h = a * h1 + b * h2 + 0.5 * (b * w1 - a * w2)
    if n == 2:
        return jnp.stack([w, h])
    k1, k2 = first[2], second[2]
    k = (a * a) * k1 + (b * b) * k2 + (0.5 * a * b) * (h1 - h2)
    k = k + ((a - b) / 12.0) * (a * w2 - b * w1)
    return jnp.stack([w, h, k])


def unchen(whole: Array, first: Array, a: Array, b: Array) -> Array:
    """Inverse of `chen`: the second piece from the whole and the first (`b > 0`).

    Used only for two queries inside one leaf, where differencing is unavoidable.
    """
    n = whole.shape[0]
    w1 = first[0]
    w2 = whole[0] - w1
    if n == 1:
        return w2[None]
    h1 = first[1]
    h2 = (whole[1] - a * h1 - 0.5 * (b * w1 - a * w2)) / b
    if n == 2:
        return jnp.stack([w2, h2])
    k1 = first[2]
    k2 = whole[2] - (a * a) * k1 - (0.5 * a * b) * (h1 - h2)
    k2 = (k2 - ((a - b) / 12.0) * (a * w2 - b * w1)) / (b * b)
    return jnp.stack([w2, h2, k2])


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
    w = leaf[0]
    sa, sb = jnp.sqrt(a), jnp.sqrt(b)
    sab = sa * sb * sqrt_h
    if n == 1:
        noise = sab * xi[0]
        return (a * w + noise)[None], (b * w - noise)[None]
    hh = leaf[1]
    ab = a * b
    if n == 2:
        r3 = jnp.sqrt(a * a + a + 1.0)
        c = sab / r3
        nw = c * ((-_SQRT3) * (a * a) * xi[0] + b * xi[1])
        mw = 6.0 * ab * hh
        h1 = (a * a) * hh + (c * (a * a + a + 1.0) / (2.0 * _SQRT3)) * xi[0]
        h2 = (b * b) * hh - c * ((_SQRT3 / 6.0) * ab * xi[0] + 0.5 * xi[1])
        left = jnp.stack([a * w + mw + nw, h1])
        right = jnp.stack([b * w - mw - nw, h2])
        return left, right
    kk = leaf[2]
    q5 = (((a + 1.0) * a + 1.0) * a + 1.0) * a + 1.0
    q4 = (((a + 4.0) * a + 10.0) * a + 4.0) * a + 1.0
    r5, r4 = jnp.sqrt(q5), jnp.sqrt(q4)
    c5, c4, c54 = sab / r5, sab / r4, sab / (r5 * r4)
    a2 = a * a
    # Left piece [c, r]: mean plus Cholesky factor (order K, H, W) times xi.
    nw = (
        c5 * (_SQRT5 * a2 * a * (a - b)) * xi[0]
        - c54 * (_SQRT3 * a2 * b * ((a + 3.0) * a + 6.0)) * xi[1]
        + c4 * (b * b) * xi[2]
    )
    mw = 6.0 * ab * hh
    mk = 60.0 * ab * kk
    w1 = a * w + mw + mk * (b - a) + nw
    h1 = a2 * hh + (30.0 * a2 * b) * kk
    h1 = h1 - c5 * (0.5 * _SQRT5 * a2 * a2) * xi[0] + c54 * ((_SQRT3 / 6.0) * b * q4) * xi[1]
    k1 = (a2 * a) * kk + (c5 * q5 / (12.0 * _SQRT5)) * xi[0]
    # Right piece [r, d], from Chen's relation with the left piece, simplified.
    w2 = b * w - mw + mk * (a - b) - nw
    p = (((a + 1.0) * a + 1.0) * a - 14.0) * a + 1.0
    b2 = b * b
    h2 = b2 * hh - (30.0 * a * b2) * kk
    h2 = h2 + c5 * (0.5 * _SQRT5 * a2 * a * b) * xi[0] - c54 * ((_SQRT3 / 6.0) * a * p) * xi[1]
    h2 = h2 - c4 * (0.5 * b) * xi[2]
    k2 = (b2 * b) * kk - c5 * ((_SQRT5 / 60.0) * a2 * b2) * xi[0]
    k2 = k2 - c54 * ((_SQRT3 / 12.0) * ab) * xi[1] - c4 * ((a + 1.0) / 12.0) * xi[2]
    return jnp.stack([w1, h1, k1]), jnp.stack([w2, h2, k2])
