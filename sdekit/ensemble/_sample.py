"""`sample_paths`: many independent paths of one problem, on one device, in chunks, or spread over
the devices of a mesh (one or many processes)."""

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._solve import Solution
from .._typing import Args, Key, Y, is_traced
from ..solvers import Solver
from ..terms import ODE, SDE
from . import _distribute, _one_path
from ._per_path import PerPath, check_axis, kind, resolve


def sample_paths(
    problem: SDE | ODE,
    solver: Solver,
    y0: Y | PerPath,
    ts,
    key: Key | None,
    n_paths: int,
    *,
    args: Args | PerPath = None,
    substeps: int = 1,
    controller=None,
    dt0=None,
    saveat=None,
    max_steps: int = 4096,
    throw: bool = True,
    batch_size: int | None = None,
    mesh: Mesh | None = None,
    tol: float | None = None,
    levy: str | None = None,
    brownian_shape=None,
) -> Solution:
    """Solve `n_paths` independent paths of an SDE (or ODE), saving at `ts`.

    Path `i` is driven by `BrownianTree(jax.random.fold_in(key, i), ...)`: its noise depends only
    on `(key, i)`, so every path has the same numbers (bitwise) whatever `n_paths`,
    `batch_size`, the mesh, or the number of devices and processes. Refining `substeps` solves
    the *same* Brownian paths more finely (what strong-order experiments need).

    Steps: by default the grid `ts` with each interval cut into `substeps` equal steps, run as one
    `lax.scan` per path (increments drawn at once, vectorised over paths). Pass
    `controller=sk.PID(...)` for adaptive steps (a `lax.while_loop` per path; under `vmap` a
    block of paths runs until its slowest path is done), or `sk.StepTo(grid)` / `sk.ConstantStep()`
    with `dt0`.

    Memory: `batch_size=b` runs the paths (each device's paths, with a mesh) in chunks of `b`
    in a loop, so the work arrays scale with `b`, not `n_paths`; only the saved values scale
    with `n_paths`. The numbers do not change.

    Devices: `mesh=` (any `jax.sharding.Mesh`, e.g. `sk.ensemble.path_mesh()`) splits the paths
    over all its devices (`n_paths` must be a multiple of `mesh.size`). Each device runs its own
    block under `jax.shard_map`: there is no collective anywhere in the solve (an adaptive loop's
    stopping test stays on its device, unlike `jit(vmap(...))` of sharded inputs, diffrax #407).
    The `Solution`'s leaves come back sharded along the paths axis; reduce them with
    `sk.ensemble.mean/variance/quantile` without gathering. After `jax.distributed.initialize()`
    the same call with a mesh of all processes' devices runs across hosts: each process computes
    the paths of its own devices. Meshes from jax 0.10's `jax.make_mesh` (Explicit axes by
    default) work: the call uses the same devices with Auto axes.

    Args:
        problem: the SDE (or ODE: then `key` may be None and only `y0`/`args` differ).
        solver: any solver that fits the problem.
        y0: the initial state shared by all paths, or `sk.PerPath(values)` (leading paths axis) or
            `sk.PerPath(fn)` (`fn(i)` is path `i`'s state).
        ts: save times, increasing (concrete: they fix the interval, the grid and the trees).
        key: PRNG key; path `i`'s key is `jax.random.fold_in(key, i)`.
        n_paths: number of paths (static).
        args: passed to drift and diffusion; shared, or `sk.PerPath(...)` like `y0`.
        substeps: steps per save interval of the default grid.
        controller: None (the grid above), `sk.StepTo`, `sk.ConstantStep` or `sk.PID`.
        dt0: initial (or constant) step, as in `sk.solve`.
        saveat: what to save (default `sk.SaveAt(ts=ts)`).
        max_steps, throw: as in `sk.solve` (a failed path raises, or reports `sol.result[i]`).
        batch_size: paths per chunk (None: all of a device's paths at once), rounded up to a
            multiple of 16 (a chunk's paths are vectorised lanes; see "Exactness" in the docs).
        mesh: spread the paths over this mesh's devices (None: the default device).
        tol: the trees' tol (default: the smallest fixed step, or 2^-12 of the interval with
            adaptive steps, rounded down to a power of 2).
        levy: the trees' Lévy area (default: what the solver needs).
        brownian_shape: the Brownian motion's shape (default: the structure of one path's `y0` for
            diagonal and additive noise, `()` for scalar noise; required for general and
            commutative noise, e.g. `(m,)`).

    Returns:
        A `Solution` whose leaves have a leading paths axis: `ys` leaves have shape
        `(n_paths, len(saved times), ...)`; `stats` and `result` are per path.

    Raises:
        ValueError, TypeError: for inconsistent inputs (see the messages).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> gbm = sk.SDE(lambda t, y, a: a * y, lambda t, y, a: 0.2 * y, noise="diagonal")
        >>> ts = jnp.linspace(0.0, 1.0, 11)
        >>> sol = sk.sample_paths(gbm, sk.solvers.euler_maruyama(), sk.PerPath(jnp.linspace(1, 2, 1000)),
        ...                       ts, jax.random.key(0), 1000, args=0.1, substeps=10, batch_size=256)
        >>> sol.ys.shape  # the same numbers as without batch_size, or over any mesh
        (1000, 11)
    """
    if not isinstance(problem, (SDE, ODE)):
        raise TypeError(f"sample_paths solves an sk.SDE or sk.ODE, got {type(problem).__name__}.")
    if not isinstance(n_paths, (int, np.integer)) or isinstance(n_paths, bool) or n_paths < 1:
        raise ValueError(f"n_paths must be a positive int, got {n_paths!r}.")
    n_paths = int(n_paths)
    if is_traced(ts):
        raise ValueError("sample_paths: ts must be concrete (they fix the grid and the trees), not traced.")
    ts_np = np.asarray(ts, dtype=np.float64)
    if ts_np.ndim != 1 or ts_np.shape[0] < 2 or np.any(np.diff(ts_np) <= 0):
        raise ValueError("sample_paths: ts must be a concrete, strictly increasing 1-D array of at least two times.")
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be a positive int, got {substeps!r}.")
    if controller is not None and substeps != 1:
        raise ValueError("sample_paths: substeps cuts the default grid; with a controller, give the steps there.")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
    if mesh is not None:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. sk.ensemble.path_mesh()), got {type(mesh).__name__}.")
        if n_paths % mesh.size:
            raise ValueError(f"sample_paths: n_paths={n_paths} must be a multiple of the mesh's {mesh.size} devices.")
        mesh = _distribute.auto_mesh(mesh)
    if isinstance(problem, SDE) and key is None:
        raise ValueError("sample_paths: an SDE needs a PRNG key.")
    for name, x in (("y0", y0), ("args", args)):
        if kind(x) == "axis":
            check_axis(name, x, n_paths)
    spec = _one_path.path_spec(problem, solver, y0, ts_np, n_paths, substeps=substeps, controller=controller,
                               saveat=saveat, dt0=dt0, max_steps=max_steps, throw=throw, tol=tol, levy=levy,
                               brownian_shape=brownian_shape)
    key_data, impl = _key_parts(key)
    sliced = tuple(x.value if kind(x) == "axis" else None for x in (y0, args))
    shared = tuple(None if kind(x) == "axis" else x for x in (y0, args))
    batch_size = None if batch_size is None else int(batch_size)
    # A run-time value (not a constant XLA could fold): see `_distribute.run_block`.
    n_chunks = np.asarray(_distribute.chunk_count(n_paths // (1 if mesh is None else mesh.size), batch_size), np.int32)
    if mesh is not None:
        sliced = _distribute.place(sliced, mesh)
        if jax.process_count() > 1:
            key_data, shared, n_chunks = _replicate((key_data, shared, n_chunks), mesh)
    return _ensemble(spec, key_data, impl, shared, sliced, n_paths, batch_size, mesh, n_chunks)


@partial(eqx.filter_jit, donate="none")
def _ensemble(spec, key_data, impl, shared, sliced, n_paths, batch_size, mesh, n_chunks):
    key = None if key_data is None else jax.random.wrap_key_data(key_data, impl=impl)
    y0, args = shared

    def one(i, sliced_i):
        y0_i, args_i = resolve(y0, sliced_i[0], i), resolve(args, sliced_i[1], i)
        return _one_path.solve_path(spec, key, i, y0_i, args_i)

    if mesh is None:
        return _distribute.run_block(one, 0, n_paths, n_paths, sliced, batch_size, n_chunks)
    return _distribute.run_sharded(one, n_paths, sliced, mesh, batch_size, n_chunks)


def _key_parts(key):
    if key is None:
        return None, None
    if not jnp.issubdtype(jnp.result_type(key), jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key))
    return jax.random.key_data(key), jax.random.key_impl(key)


def _replicate(tree, mesh):
    """Concrete array leaves as global arrays replicated over every process's devices."""
    sharding = NamedSharding(mesh, PartitionSpec())

    def one(x):
        if not isinstance(x, (jax.Array, np.ndarray)) or is_traced(x):
            return x
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)
