"""`sample`: run a sampler over a grid with `sk.solve` and return $x_0$."""

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from ._model import Model
from ._problems import probability_flow, reverse_sde

from ._sampling_grid import TREE_DEPTH as TREE_DEPTH, check_grid, concrete as _concrete, tree_tol as _tree_tol
from ._superpose import Superposition, sample_superposed


def sample(
    model: Model,
    sampler: sk.solvers.Solver,
    x_T: Float[Array, "..."],
    ts: Float[ArrayLike, " n"],
    *,
    key: jax.Array | None = None,
    args: Any = None,
    progress: bool = False,
    adjoint: Any = None,
    padded: bool = False,
) -> Float[Array, "..."]:
    r"""Run `sampler` from `x_T` at `ts[0]` through the grid `ts` (noise to data); return $x_0$.

    Deterministic samplers solve `skd.probability_flow(model)` backwards in $t$; stochastic ones
    solve `skd.reverse_sde(model)` forwards in $s = -t$ with a `sk.BrownianTree` made from `key`
    over the whole grid at a fixed resolution, so one key fixes the noise whatever the number
    of steps, the batch size or the device. This is one `sk.solve(..., controller=sk.StepTo(ts))`
    call: call `sk.solve` yourself for `SaveAt`, other adjoints or your own tree.

    Args:
        model: an `skd.Model`.
        sampler: one of `skd.samplers` (a `sk.solvers.Solver`).
        x_T: the starting sample (e.g. `schedule.prior(key, shape)`); one array, any shape
            (a batch is the network's business).
        ts: the grid, decreasing in noise level (`skd.time_grid`); `len(ts) - 1` steps.
        key: a PRNG key, needed by stochastic samplers.
        args: passed to the network as `fn(x, t, args)` (class labels, conditioning).
        progress: a tqdm meter.
        adjoint: an `sk.adjoint` method for gradients through sampling (default checkpointed).
        padded: `ts` may repeat times (`skd.time_grid(..., pad_to=N)`): the repeats are skipped,
            so grids of different numbers of steps padded to one length share one compilation
            (`sk.StepTo(ts, padded=True)`). The noise is the same as on the unpadded grid.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, a: jnp.full_like(x, 2.0), sched, prediction="x0")
        >>> x_T = sched.prior(jax.random.key(0), (8, 2))
        >>> x0 = skd.sample(model, skd.samplers.dpm_solver_pp(order=2), x_T, skd.time_grid(sched, 10))
        >>> bool(jnp.allclose(x0, 2.0, atol=0.1))   # x0 is at t = 1e-3: sigma = 0.014 of noise left
        True
    """
    if isinstance(model, Superposition):
        if padded:
            raise ValueError("skd.sample of a superposition steps through its grid itself: padded grids are not "
                             "supported there; pass the grid unpadded.")
        return sample_superposed(model, sampler, x_T, ts, key=key, args=args).x
    if not isinstance(model, Model):
        raise TypeError(f"sample needs an skd.Model or an skd.superpose(...) result; got {type(model).__name__}.")
    if not isinstance(sampler, sk.solvers.Solver):
        raise TypeError(f"sampler must be one of skd.samplers; got {type(sampler).__name__}.")
    x_T = jnp.asarray(x_T)
    ts = jnp.asarray(ts, x_T.dtype) if jnp.issubdtype(x_T.dtype, jnp.floating) else jnp.asarray(ts)
    check_grid(model, ts, padded)
    kwargs = dict(args=args, controller=None, progress=progress, adjoint=adjoint)
    if sampler.sde is None:
        kwargs["controller"] = sk.StepTo(ts, padded=padded)
        return sk.solve(probability_flow(model), sampler, ts[0], ts[-1], x_T, **kwargs).ys[-1]
    if key is None:
        raise ValueError(f"the sampler {sampler.name} draws noise: pass key=jax.random.key(...).")
    s = -ts
    if _concrete(s) and not bool(jnp.all(jnp.isfinite(s))):
        raise ValueError(f"the stochastic sampler {sampler.name} needs finite times; this grid ends at t = -inf "
                         "(VE's sigma = 0): end at a small t instead, or use a deterministic sampler.")
    tree = sk.BrownianTree(key, s[0], s[-1], shape=x_T.shape, dtype=x_T.dtype,
                           tol=_tree_tol(s), depth=TREE_DEPTH, levy=sampler.sde.levy_area)
    kwargs["controller"] = sk.StepTo(s, padded=padded)
    return sk.solve(reverse_sde(model), sampler, s[0], s[-1], x_T, brownian=tree, **kwargs).ys[-1]
