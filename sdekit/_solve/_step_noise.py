"""Where a step's Brownian increment comes from: nothing (ODEs), the tree's cursor (sequential
steps in a while loop), or the tree's vectorised grid build (fixed grids in a scan)."""

from typing import NamedTuple

import jax.numpy as jnp


class NoNoise(NamedTuple):
    """ODEs: no increments, no carried state."""

    def init(self):
        return None

    def increment(self, t, tnext, cursor):
        return None, cursor

    def grid(self, grid):
        return None


class TreeNoise(NamedTuple):
    """SDEs driven by a `BrownianTree`. Times reach here in the tree's own time variable."""

    tree: object

    def init(self):
        return self.tree.cursor()

    def increment(self, t, tnext, cursor):
        return self.tree.increment(t, tnext, cursor=cursor)

    def grid(self, grid):
        # All increments at once, level by level: the fixed-grid fast path.
        return self.tree.grid_increments(grid.astype(jnp.result_type(self.tree.t0)))
