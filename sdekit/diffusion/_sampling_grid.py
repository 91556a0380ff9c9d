"""What sampling on a grid shares: the Brownian tree's fixed resolution and the grid's checks
(used by `skd.sample`, `skd.sample_with_log_density` and `skd.sample_superposed`)."""

import jax
import jax.numpy as jnp

from ._model import Model

# Brownian-tree resolution for stochastic samplers, relative to the grid's span: fixed (not
# taken from the grid) so that one key gives the same path whatever the number of steps.
TREE_DEPTH = 18


def tree_tol(s):
    # With a traced grid the depth alone fixes the resolution (the tree checks tol only against
    # a concrete interval).
    span = abs(float(s[-1] - s[0])) if concrete(s) else 1.0
    return span * 2.0**-TREE_DEPTH


def concrete(x):
    return not isinstance(x, jax.core.Tracer)


def samples_first(x, who: str, name: str):
    """`x` as an array, checked to be a float batch `(n, *event)` with samples first."""
    x = jnp.asarray(x)
    if x.ndim < 2 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{who}: {name} is a float array (n, *event) with samples first (one sample: {name}[None]); "
                         f"got shape {x.shape} and dtype {x.dtype}.")
    return x


def check_grid(model: Model, ts, padded: bool = False) -> None:
    """A grid must be 1-D with at least two times, strictly decreasing in noise level (`padded`:
    or repeating a time, a step the samplers skip)."""
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"a sampling grid is 1-D with at least two times; got shape {ts.shape}.")
    sched = model.schedule
    rho = sched.sigma(ts) / sched.alpha(ts)
    if not concrete(rho):  # traced grid or schedule: nothing to check before the run
        return
    # rho = sigma/alpha is +inf only where alpha = 0: allowed at the start (a flow's pure noise, for
    # models whose prediction is defined there), nowhere else.
    if not bool(jnp.all(jnp.isfinite(rho[1:]) & (rho[1:] >= 0)) & ~jnp.isnan(rho[0])):
        raise ValueError(
            f"the grid leaves {type(sched).__name__}'s domain (alpha = 0 or a NaN at some times): was it built "
            f"for another schedule? Use skd.time_grid(model.schedule, ...); got ts = {ts}.")
    decreasing = (rho[1:] < rho[:-1]) | ((ts[1:] == ts[:-1]) if padded else False)
    if not bool(jnp.all(decreasing)):
        raise ValueError("the sampling grid must go from noise to data: sigma/alpha strictly decreasing along ts "
                         f"(use skd.time_grid; repeated times need padded=True); got ts = {ts}.")
