"""The solve loop: `solve`, `SaveAt`, `Solution`."""

from ._ensemble import sample_paths as sample_paths
from ._saveat import SaveAt as SaveAt
from ._solution import Solution as Solution
from ._solve import solve as solve

__all__ = ["SaveAt", "Solution", "sample_paths", "solve"]
