"""Drive a sampler's pure `init`/`step` over a fixture's grid, step by step, with injected noise:
the way a user runs a solver inside their own loop, and the way to compare with a reference
trajectory exactly."""

import jax
import jax.numpy as jnp

import sdekit as sk
import sdekit.diffusion as skd


def trajectory(sampler, model, ts, x_T, zs=None):
    """States after every step (`len(ts)` of them, `x_T` first). Stochastic samplers get the
    standard normals `zs[i]` at step i, as the Brownian increment over $s = -t$."""
    stochastic = sampler.sde is not None
    problem = skd.reverse_sde(model) if stochastic else skd.probability_flow(model)
    taus = -jnp.asarray(ts) if stochastic else jnp.asarray(ts)
    step = jax.jit(sampler.step)
    state = sampler.init(problem, taus[0], x_T, None)
    xs, x = [x_T], x_T
    for i in range(len(ts) - 1):
        inc = None
        if stochastic:
            dt = taus[i + 1] - taus[i]
            inc = sk.Increment(dt=dt, W=jnp.asarray(zs[i], x.dtype) * jnp.sqrt(dt), H=None, K=None)
        x, _, _, state = step(problem, taus[i], taus[i + 1], x, None, inc, state)
        xs.append(x)
    return jnp.stack(xs)
