"""Brownian paths: single-seed virtual Brownian tree, cursor, grid increments, Lévy areas."""

from ._cursor import BrownianCursor as BrownianCursor
from ._increment import Increment as Increment
from ._tree import BrownianTree as BrownianTree

__all__ = ["BrownianCursor", "BrownianTree", "Increment"]
