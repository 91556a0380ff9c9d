"""Checks of a `BrownianTree`'s static arguments, with messages that say what to fix."""

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .._typing import is_traced
from . import _hash

#: The `levy` options of a `BrownianTree`, poorest first: each provides what those before it do
#: (W; then also the space-time area H; then also the space-time-time area K).
LEVY_ORDER = ("increment", "space-time", "space-time-time")
#: Arrays a tree draws per leaf for each `levy`: W, then H, then K.
LEVY_COMPONENTS = {levy: rank + 1 for rank, levy in enumerate(LEVY_ORDER)}


def check_key(key):
    dt = getattr(key, "dtype", None)
    if dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"BrownianTree needs a single PRNG key, got a key array of shape {key.shape}; "
                "use jax.vmap over keys for many paths."
            )
        return key
    arr = np.asarray(key) if not is_traced(key) else key
    if getattr(arr, "dtype", None) == np.uint32 and arr.shape == (2,):
        return key
    raise TypeError(
        "BrownianTree's key must be a PRNG key (jax.random.key(seed) or "
        f"jax.random.PRNGKey(seed)), got {type(key).__name__} "
        f"with dtype {dt} and shape {getattr(key, 'shape', None)}."
    )


def check_levy(levy) -> int:
    if levy not in LEVY_COMPONENTS:
        raise ValueError(
            f"levy must be one of {sorted(LEVY_COMPONENTS)}, got {levy!r}. For space-space "
            "Lévy area use levy='space-time' with area=True (path-consistent, for strong "
            "order), or sdekit.brownian.space_space_area (per-step, weak order only)."
        )
    return LEVY_COMPONENTS[levy]


def check_on_error(on_error) -> None:
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}.")


def tree_options(*levy_areas: str) -> tuple[str, bool]:
    """The `BrownianTree` options `(levy, area)` that provide every listed need (a solver's
    `sde.levy_area`): the richest of them, where `"space-space"` means W and H plus the
    path-consistent area (`area=True`).

    Examples:
        >>> import sdekit as sk
        >>> sk.brownian.tree_options("increment", "space-space")
        ('space-time', True)
    """
    area = "space-space" in levy_areas
    levy = max(("space-time" if a == "space-space" else a for a in levy_areas), key=LEVY_ORDER.index)
    return levy, area


def check_area(area, levy: str, leaves) -> bool:
    if not isinstance(area, bool):
        raise TypeError(f"area must be True or False, got {area!r}.")
    if not area:
        return False
    if levy == "increment":
        raise ValueError(
            "area=True builds each leaf's Lévy area from its space-time area H: use "
            "levy='space-time' (or 'space-time-time') with it."
        )
    for shape, _ in leaves:
        if len(shape) == 0:
            raise ValueError(
                "area=True needs a Brownian dimension: every shape leaf's last axis indexes the "
                f"Brownian motions (e.g. shape=(m,)), got a scalar leaf {shape}."
            )
    return True


def check_float_dtype(dtype, where: str):
    try:
        dtype = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{where}: {dtype!r} is not a dtype.") from err
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: Brownian paths need a floating dtype, got {dtype}.")
    if dtype.itemsize > 4 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{where}: dtype {dtype} requested but jax_enable_x64 is off, so JAX would "
            "silently compute in float32; enable x64 (jax.config.update('jax_enable_x64', "
            "True)) or ask for float32."
        )
    return dtype


def check_shape(shape, dtype):
    """Returns (leaves, treedef, is_tuple) with leaves a tuple of (shape, dtype)."""
    if isinstance(shape, tuple) and all(isinstance(d, numbers.Integral) for d in shape):
        if any(d < 0 for d in shape):
            raise ValueError(f"shape must have non-negative sizes, got {shape}.")
        dt = jnp.dtype(jnp.result_type(float)) if dtype is None else dtype
        dt = check_float_dtype(dt, "BrownianTree dtype")
        return ((tuple(int(d) for d in shape), dt),), None, True
    is_sds = lambda x: isinstance(x, jax.ShapeDtypeStruct)  # noqa: E731
    leaves, treedef = jax.tree.flatten(shape, is_leaf=is_sds)
    if not leaves or not all(is_sds(x) for x in leaves):
        raise TypeError(
            "shape must be a tuple of ints or a pytree of jax.ShapeDtypeStruct, got "
            f"{shape!r}."
        )
    out = []
    for leaf in leaves:
        dt = check_float_dtype(leaf.dtype, f"ShapeDtypeStruct {leaf}")
        if dtype is not None and dt != jnp.dtype(dtype):
            raise ValueError(
                f"dtype={jnp.dtype(dtype)} conflicts with ShapeDtypeStruct dtype {dt}; give "
                "the dtype in one place."
            )
        out.append((tuple(leaf.shape), dt))
    return tuple(out), treedef, False


def time_dtype(t0, t1, leaves):
    """Float dtype for times: the widest of t0, t1, the data and jax's default float."""
    cands = [jnp.dtype(jnp.result_type(float))]
    for t in (t0, t1):
        dt = getattr(t, "dtype", None)
        if dt is not None and jnp.issubdtype(dt, jnp.floating):
            cands.append(jnp.dtype(dt))
    cands += [d for _, d in leaves]
    return max(cands, key=lambda d: d.itemsize)


def check_tol_depth(tol, t0, t1, depth):
    if isinstance(tol, jax.Array) and is_traced(tol):
        raise TypeError("tol must be a static Python number (it fixes the tree's depth).")
    try:
        tol = float(tol)
    except TypeError as err:
        raise TypeError(f"tol must be a real number, got {tol!r}.") from err
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be positive and finite, got {tol}.")
    if not is_traced(t0) and not is_traced(t1):
        a, b = float(t0), float(t1)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"t0 and t1 must be finite, got t0={a}, t1={b}.")
        if not b > a:
            raise ValueError(f"BrownianTree needs t0 < t1, got t0={a}, t1={b}.")
        if tol >= b - a:
            raise ValueError(
                f"tol must be smaller than t1 - t0 = {b - a}, got tol={tol}: the tree "
                "needs at least one level."
            )
        need = max(1, math.ceil(math.log2((b - a) / tol)))
        if depth is None:
            depth = need
        elif depth < need:
            raise ValueError(f"depth={depth} gives leaves wider than tol; need >= {need}.")
    elif depth is None:
        raise TypeError(
            "t0/t1 are traced, so the tree's (static) depth cannot be computed from tol; "
            "pass depth=ceil(log2((t1 - t0) / tol)) explicitly."
        )
    depth = int(depth)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}.")
    limit = _hash.MAX_DEPTH if jax.config.jax_enable_x64 else 30
    if depth > limit:
        raise ValueError(
            f"tol={tol} needs a tree of depth {depth} (> {limit}, the limit"
            + ("" if jax.config.jax_enable_x64 else " without jax_enable_x64")
            + "); use a larger tol."
        )
    return tol, depth
