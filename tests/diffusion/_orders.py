"""Shared by the sampler tests: the 2-D Gaussian-mixture problem (the fixtures' too), its exact
probability-flow solution, and fitted convergence orders."""

import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk
import sdekit.diffusion as skd

WEIGHTS = [0.5, 0.3, 0.2]
MEANS = [[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]]
COVS = [[[0.3, 0.1], [0.1, 0.2]], [[0.1, 0.0], [0.0, 0.4]], [[0.2, -0.05], [-0.05, 0.15]]]


def mixture(dtype=None) -> skd.GaussianMixture:
    """The fixtures' 2-D, three-component mixture (in the default float dtype)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return skd.GaussianMixture(jnp.asarray(WEIGHTS, dtype), jnp.asarray(MEANS, dtype), jnp.asarray(COVS, dtype))


def starts(schedule, n=16, seed=0, t=None):
    """`n` starting samples from the prior at `t` (default the schedule's start)."""
    return schedule.prior(jax.random.key(seed), (n, 2), t=t)


def exact_pf(model, x_T, t0, t1, rtol=1e-11):
    """The probability-flow ODE solved to `rtol` by Dopri8 (call under float64)."""
    sol = sk.solve(skd.probability_flow(model), sk.solvers.dopri8(), t0, t1, x_T,
                   controller=sk.PID(rtol=rtol, atol=rtol), max_steps=100_000)
    return sol.ys[-1]


_EXACT = {}


def _exact_cached(model, x_T, t0, t1):
    # Many order tests share one problem (this module's mixture, a schedule, the same starts):
    # solve its flow once per process.
    key = (type(model.schedule).__name__, tuple(np.asarray(v).tobytes() for v in jax.tree.leaves(model)),
           np.asarray(x_T).tobytes(), float(t0), float(t1), str(np.asarray(x_T).dtype))
    if key not in _EXACT:
        _EXACT[key] = exact_pf(model, x_T, t0, t1)
    return _EXACT[key]


def final_states(model, sampler, x_T, steps_list, spacing="log_snr", **grid):
    """x_0 of a deterministic sampler for each number of steps in `steps_list` (the grid
    `skd.time_grid(model.schedule, n, spacing, **grid)`), from one compilation: the grids are
    padded to one length (`pad_to`, `padded=True`)."""
    longest = max(steps_list)
    return [skd.sample(model, sampler, x_T, skd.time_grid(model.schedule, n, spacing, pad_to=longest, **grid),
                       padded=True) for n in steps_list]


def errors(model, sampler, x_T, steps_list, spacing="log_snr", **grid):
    """Max error of x_0 against the exact probability-flow solution, for each number of steps
    (deterministic samplers; one compilation for all of them)."""
    ts0 = skd.time_grid(model.schedule, 2, spacing, **grid)
    exact = _exact_cached(model, x_T, ts0[0], ts0[-1])
    return np.array([float(jnp.max(jnp.abs(x0 - exact)))
                     for x0 in final_states(model, sampler, x_T, steps_list, spacing, **grid)])


def fitted_order(steps_list, errs):
    """Least-squares slope of log(error) against log(1 / steps)."""
    return float(-np.polyfit(np.log(np.asarray(steps_list, float)), np.log(errs), 1)[0])
