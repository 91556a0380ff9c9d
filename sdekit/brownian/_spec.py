r"""`TreeSpec`: what the Brownian engine (`_cursor`, `_grid`, `_path_area`, `_primitive`) reads
of a tree, so that the engine never reaches into `BrownianTree`'s private fields.

`BrownianTree.spec` builds one; `TreeSpec.with_paths` turns it into the spec of many trees that
differ only in their key, built as one (the grid primitive's batching rule). Times and seeds are
arrays (traced under `jit`); the rest is static.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._typing import Array


class TreeSpec(NamedTuple):
    """A tree as the engine sees it.

    Attributes:
        t0, t1: the interval (arrays of the time dtype).
        seeds: per shape leaf, the hash's two key words, `(2,)`; `(paths, 2)` with `paths`.
        depth: the tree's depth $D$ (leaves are $2^{-D}$ of the interval).
        n: components per node: 1 (W), 2 (W, H) or 3 (W, H, K).
        leaves: per shape leaf, `(shape, dtype)` as the engine builds it: `(paths, *shape)`
            with `paths`.
        time_dtype: the dtype of `t0`, `t1` and of positions in leaf units.
        on_error: `"raise"` or `"nan"`, the policy for invalid traced queries.
        treedef: the shape pytree's structure (for `unflatten`).
        tuple_shape: whether the shape was a tuple (one shape leaf, returned bare).
        paths: `None` for one tree; else the number of trees built as one.
    """

    # Arrays first, in the order `BrownianTree` flattens them (the grid primitive's operands).
    t0: Array
    t1: Array
    seeds: tuple
    depth: int
    n: int
    leaves: tuple
    time_dtype: object
    on_error: str
    treedef: object
    tuple_shape: bool
    paths: int | None = None

    @property
    def tree_leaves(self) -> tuple:
        """Per shape leaf, each tree's own `(shape, dtype)` (`leaves` without the path axis)."""
        if self.paths is None:
            return self.leaves
        return tuple((s[1:], d) for s, d in self.leaves)

    def with_paths(self, seeds: tuple, paths: int) -> "TreeSpec":
        """`paths` trees that differ only in their key, as one tree for the grid build: each
        shape leaf gets a leading path axis, `(paths, *shape)`, and a node's normals for path b
        come from seed b (`seeds[j]`: `(paths, 2)`), bitwise the normals of tree b.

        The build then runs as for one tree of shape `(paths, *shape)`, torchsde's formulation:
        per-level slices and strided reads of the node arrays act on whole rows of paths
        instead of striding inside each path's row, and the increments come out step-major, as
        a scan over the steps reads them."""
        leaves = tuple(((paths, *s), d) for s, d in self.tree_leaves)
        return self._replace(seeds=seeds, leaves=leaves, paths=paths)

    def position(self, t: Array) -> Array:
        """Times to leaf units, $2^D (t - t_0)/(t_1 - t_0)$, clipped to $[0, 2^D]$."""
        tau = (t - self.t0) / (self.t1 - self.t0)
        u = tau * float(2.0**self.depth)
        return jnp.clip(u, 0.0, float(2.0**self.depth))

    def bad(self, s, t):
        """Which queries $[s, t]$ are invalid: $s > t$, outside $[t_0, t_1]$, or a NaN time."""
        return ~((s <= t) & (s >= self.t0) & (t <= self.t1))

    def guard(self, x, bad):
        """The "nan" policy on an output: NaN where `bad` (broadcast against `x`). (Under "raise"
        the times were checked on the way in: see `BrownianTree._checked`.)"""
        if self.on_error == "nan":
            return jnp.where(bad, jnp.asarray(jnp.nan, x.dtype), x)
        return x

    def unflatten(self, xs):
        """Per-shape-leaf values as the user's shape: bare for a tuple shape, else the pytree."""
        if self.tuple_shape:
            return xs[0]
        return jax.tree.unflatten(self.treedef, xs)
