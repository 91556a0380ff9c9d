"""A one-axis mesh of all devices (of every process) for spreading paths."""

from collections.abc import Sequence

import jax
from jax.sharding import AxisType, Mesh


def path_mesh(devices: Sequence | None = None, axis_name: str = "paths") -> Mesh:
    """A one-dimensional mesh over `devices` (default: `jax.devices()`, every process's devices
    after `jax.distributed.initialize()`), with `AxisType.Auto`.

    `jax.make_mesh` in jax 0.10 makes `Explicit` axes by default; `sk.sample_paths` accepts
    either, but your own `jit(vmap(...))` of an adaptive solve over inputs sharded on an
    Explicit mesh raises "Resource axis ... is not found in mesh". Auto axes avoid that (and
    `shard_map`, as `sample_paths` uses, avoids its collectives).

    Examples:
        >>> import jax, sdekit as sk
        >>> mesh = sk.ensemble.path_mesh()
        >>> mesh.axis_names, mesh.size == len(jax.devices())
        (('paths',), True)
    """
    devices = jax.devices() if devices is None else list(devices)
    return jax.make_mesh((len(devices),), (axis_name,), axis_types=(AxisType.Auto,), devices=devices)
