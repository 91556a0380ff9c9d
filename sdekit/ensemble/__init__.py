"""Ensembles: many independent paths (`sample_paths`), per-path inputs (`PerPath`), meshes of all
devices and hosts (`path_mesh`), and statistics over sharded paths (`mean`, `variance`,
`quantile`) that never gather the paths on one device."""

from ._mesh import path_mesh as path_mesh
from ._per_path import PerPath as PerPath
from ._reduce import mean as mean, quantile as quantile, variance as variance
from ._sample import sample_paths as sample_paths

__all__ = ["PerPath", "mean", "path_mesh", "quantile", "sample_paths", "variance"]


def __dir__():
    return __all__
