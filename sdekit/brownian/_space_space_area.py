r"""Per-increment space-space Lévy area approximations for general (non-commutative) noise
(`space_space_area`; the path-consistent area of `BrownianTree(..., area=True)` is `_path_area`).

For a $d$-dimensional Brownian increment over $[s, t]$, $h = t - s$, the Lévy area
$A_{ij} = \tfrac12\int_s^t (W_{s,r}^i\,dW_r^j - W_{s,r}^j\,dW_r^i)$ decomposes exactly as

$$A_{ij} = H_i W_j - W_i H_j + b_{ij},$$

with $H$ the (normalised) space-time Lévy area, $\mathrm{Var}\,b_{ij} = h^2/12$, and $b$
uncorrelated with $(W, H)$. Both methods here keep the exact first part and replace $b$
by an antisymmetric Gaussian $\lambda$, independent over $i < j$:

- `"davie"`: $\lambda_{ij} \sim N(0, h^2/12)$, the unconditional variance (Davie 2014,
  in the space-time form of Foster 2020);
- `"foster"`: $\lambda_{ij} \sim N(0, h^2/20 + \tfrac{h}{5}(H_i^2 + H_j^2))$, which
  matches the *conditional* variance $E[b_{ij}^2 \mid W, H]$ as well (Foster 2020;
  github.com/james-m-foster/levy-area-simulation, whose further logistic mixture matching
  fourth moments is not implemented).

Order: both give $A$ with the exact mean and covariance (conditionally on $(W, H)$ for
Foster's), which is what a Milstein / log-ODE step needs for order 1 in the 2-Wasserstein
metric (Davie 2014; Flint, Hambly, Lyons 2016), i.e. weak order 1 for general noise.
They are *not* strong approximations: strong order stays 1/2 for non-commutative noise.
Foster's has the smaller error constant.
"""

from typing import Literal

import jax
import jax.numpy as jnp

from .._typing import Array, PyTree
from ._increment import Increment


def _is_key(x) -> bool:
    dt = getattr(x, "dtype", None)
    if dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key):
        return True
    return getattr(x, "shape", None) == (2,) and dt == jnp.uint32


def space_space_area(
    inc: Increment,
    key_or_normals,
    *,
    method: Literal["foster", "davie"] = "foster",
) -> PyTree[Array]:
    r"""Approximate space-space Lévy area $A$ of an increment with space-time area H.

    Args:
        inc: an `Increment` with `H` (a tree built with `levy="space-time"` or
            `"space-time-time"`). Each leaf of `W` has shape `(..., d)`, the last axis
            being the Brownian dimension.
        key_or_normals: a PRNG key, or a pytree (like `W`) of standard normals of shape
            `(..., d, d)`; only the strict upper triangle is used. Use
            `BrownianTree.area_normals` to take them from the tree's own node randomness
            (deterministic in the path, as the solve loop needs).
        method: `"foster"` (conditional variance) or `"davie"` (unconditional variance).

    Returns:
        A pytree like `W` with leaves of shape `(..., d, d)`: antisymmetric, $A_{ij}$ the
        area of $W^i$ against $W^j$.

    Raises:
        ValueError: without H, for a scalar leaf, or an unknown method.

    Examples:
        >>> import jax, sdekit.brownian as skb
        >>> tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8,
        ...                         levy="space-time")
        >>> inc = tree.increment(0.5, 0.75)
        >>> A = skb.space_space_area(inc, tree.area_normals(0.5))
        >>> A.shape, bool((A + A.T == 0).all())
        ((3, 3), True)
    """
    if method not in ("foster", "davie"):
        raise ValueError(f"method must be 'foster' or 'davie', got {method!r}.")
    if inc.H is None:
        raise ValueError(
            "space_space_area needs the space-time Lévy area H: build the tree with "
            "levy='space-time' or 'space-time-time'."
        )
    w_leaves, treedef = jax.tree.flatten(inc.W)
    h_leaves = treedef.flatten_up_to(inc.H)
    for w in w_leaves:
        if w.ndim == 0:
            raise ValueError("space_space_area needs a Brownian dimension axis (last axis).")
    if _is_key(key_or_normals):
        keys = [jax.random.fold_in(key_or_normals, j) for j in range(len(w_leaves))]
        normals = [
            jax.random.normal(k, (*w.shape, w.shape[-1]), w.dtype) for k, w in zip(keys, w_leaves)
        ]
    else:
        normals = treedef.flatten_up_to(key_or_normals)
    out = [
        _area(w, hh, x, jnp.asarray(inc.dt).astype(w.dtype), method)
        for w, hh, x in zip(w_leaves, h_leaves, normals)
    ]
    return jax.tree.unflatten(treedef, out)


def wedge(x: Array, y: Array) -> Array:
    """$x_i y_j - y_i x_j$ over the last axis: shape `(..., d, d)`, antisymmetric."""
    return x[..., :, None] * y[..., None, :] - y[..., :, None] * x[..., None, :]


def residual(w: Array, hh: Array, normals: Array, dt: Array, method: str) -> Array:
    r"""The Gaussian stand-in $\lambda$ for $b$ (antisymmetric, from the strict upper
    triangle of `normals`); `dt` is a scalar or broadcasts against the batch axes."""
    d = w.shape[-1]
    if normals.shape != (*w.shape, d):
        raise ValueError(f"normals must have shape {(*w.shape, d)}, got {normals.shape}.")
    shape = (*w.shape, d)
    dt = jnp.reshape(dt, dt.shape + (1,) * (len(shape) - dt.ndim))
    if method == "davie":
        var = jnp.broadcast_to(dt * dt / 12.0, shape)
    else:
        h2 = hh * hh
        var = dt * dt / 20.0 + (dt / 5.0) * (h2[..., :, None] + h2[..., None, :])
    upper = jnp.triu(normals * jnp.sqrt(var), k=1)
    return upper - jnp.swapaxes(upper, -1, -2)


def _area(w: Array, hh: Array, normals: Array, dt: Array, method: str) -> Array:
    return wedge(hh, w) + residual(w, hh, normals, dt, method)
