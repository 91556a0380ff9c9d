"""Gradients through sampling (discretise-then-optimise, `sk.adjoint.Checkpointed`): with respect
to the initial noise, the model's parameters and a conditioning vector, through a 10-step
DPM-Solver++ 2M sample and a 100-step reverse-SDE sample on a fixed Brownian tree, checked by
central finite differences to 1e-6 relative in float64. (Backsolve on the probability-flow ODE
against the discrete gradient: tests/diffusion/test_sample.py::test_backsolve_adjoint_through_a_sampler.)"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd


def _mixture(shift):
    return skd.GaussianMixture(jnp.array([0.4, 0.6]), jnp.array([[-1.0, 0.5], [1.0, -0.5]]) + shift,
                               jnp.stack([0.2 * jnp.eye(2), 0.3 * jnp.eye(2)]))


def _conditioned(sched):
    """A model conditioned on a vector c: the mixture shifted by c, E[x0 | x] = c + D(x - alpha c)."""
    exact = _mixture(0.0).model(sched)

    def fn(x, t, c):
        c = jnp.broadcast_to(c, x.shape)
        return c + exact.fn(x - sched.alpha(t).astype(x.dtype) * c, t, None)

    return lambda: skd.Model(fn, sched, prediction="x0")


def _check_directional(loss, theta, key, eps=1e-6):
    grad = jax.grad(loss)(theta)
    v = jax.random.normal(key, theta.shape, theta.dtype)
    fd = (loss(theta + eps * v) - loss(theta - eps * v)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.sum(grad * v)), float(fd), rtol=1e-6)
    return grad


@pytest.mark.parametrize("sampler, steps", [(skd.samplers.dpm_solver_pp(order=2), 10),
                                            (skd.samplers.euler_ancestral(), 100)], ids=["dpm2m-10", "sde-100"])
def test_gradients_match_finite_differences(sampler, steps, x64):
    sched = skd.VP.linear()
    ts = skd.time_grid(sched, steps)
    x_T = sched.prior(jax.random.key(0), (6, 2))
    key = jax.random.key(1)  # a fixed Brownian tree for the stochastic sampler
    target = jnp.array([0.5, -0.25])

    sample = eqx.filter_jit(lambda m, x, c: skd.sample(m, sampler, x, ts, key=key, args=c))  # compiled once per structure

    def run(model, x, c=None):
        return sample(model, x, c)

    def loss_of_x0(x0):
        return jnp.mean(jnp.sum((x0 - target[None]) ** 2, axis=-1))

    # initial noise
    _check_directional(lambda x: loss_of_x0(run(_mixture(0.0).model(sched), x)), x_T, jax.random.key(2))
    # model parameters (the mixture's means)
    _check_directional(lambda s: loss_of_x0(run(_mixture(s).model(sched), x_T)), jnp.zeros((2, 2)), jax.random.key(3))
    # a conditioning vector passed as args
    model = _conditioned(sched)()
    grad = _check_directional(lambda c: loss_of_x0(run(model, x_T, c)), jnp.array([0.3, 0.1]), jax.random.key(4))
    assert bool(jnp.all(grad != 0))
