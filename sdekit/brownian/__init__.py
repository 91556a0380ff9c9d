"""Brownian paths: single-seed virtual Brownian tree, cursor, grid increments, Lévy areas."""

from ._cursor import BrownianCursor as BrownianCursor
from ._fractional import FractionalBM as FractionalBM
from ._increment import Increment as Increment
from ._space_space_area import space_space_area as space_space_area
from ._tree import BrownianTree as BrownianTree
from ._validate import LEVY_ORDER as LEVY_ORDER, tree_options as tree_options

__all__ = ["BrownianCursor", "BrownianTree", "FractionalBM", "Increment", "LEVY_ORDER", "space_space_area", "tree_options"]
