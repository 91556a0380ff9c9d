"""Where a step's Brownian increment comes from: nothing (ODEs), the tree's cursor (sequential
steps in a while loop), or the tree's vectorised grid build (fixed grids in a scan)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..solvers import HalfIncrement


class NoNoise(NamedTuple):
    """ODEs: no increments, no carried state."""

    def init(self):
        return None

    def increment(self, t, tnext, cursor):
        return None, cursor

    def grid(self, grid):
        return None


class TreeNoise(NamedTuple):
    """SDEs driven by a `BrownianTree`. Times reach here in the tree's own time variable.

    With `halves` (a step-doubling solver, `sk.solvers.half_step`), a step's increment is the
    `HalfIncrement` of its two halves, split at `t + (tnext - t) / 2`."""

    tree: object
    halves: bool = False

    def init(self):
        return self.tree.cursor()

    def increment(self, t, tnext, cursor):
        if not self.halves:
            return self.tree.increment(t, tnext, cursor=cursor)
        mid = t + (tnext - t) / 2
        left, cursor = self.tree.increment(t, mid, cursor=cursor)
        right, cursor = self.tree.increment(mid, tnext, cursor=cursor)
        return HalfIncrement(left, right), cursor

    def grid(self, grid):
        # All increments at once, level by level: the fixed-grid fast path.
        grid = grid.astype(jnp.result_type(self.tree.t0))
        if not self.halves:
            return self.tree.grid_increments(grid)
        mids = grid[:-1] + (grid[1:] - grid[:-1]) / 2
        both = self.tree.grid_increments(jnp.append(jnp.stack([grid[:-1], mids], 1).reshape(-1), grid[-1:]))
        return HalfIncrement(jax.tree.map(lambda a: a[0::2], both), jax.tree.map(lambda a: a[1::2], both))
