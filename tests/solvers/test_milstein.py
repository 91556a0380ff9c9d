"""Milstein: strong order 1 on diagonal and commutative noise (Itô and Stratonovich), against
exact solutions on the same Brownian paths across resolutions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

T, N_PATHS, STEPS = 1.0, 500, [16, 32, 64, 128]
def _commutative_linear(calculus):
    """dY = A Y dt + sum_j B_j Y dW_j with diagonal (so commuting) matrices B_j."""
    B1, B2, A = jnp.array([0.3, 0.5]), jnp.array([0.2, -0.4]), jnp.array([0.1, -0.2])
    diffusion = lambda t, y, a: jnp.stack([B1 * y, B2 * y], axis=-1)  # (2, m=2)
    problem = sk.SDE(lambda t, y, a: A * y, diffusion, noise="commutative", calculus=calculus)
    shift = 0.5 * (B1**2 + B2**2) if calculus == "ito" else 0.0

    def exact(tree):
        w = tree.evaluate(T)
        return jnp.exp((A - shift) * T + B1 * w[0] + B2 * w[1])

    return problem, (2,), exact


def _gbm(calculus):
    mu, sigma = 0.5, 0.8
    problem = sk.SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal", calculus=calculus)
    shift = sigma**2 / 2 if calculus == "ito" else 0.0
    return problem, (2,), lambda tree: jnp.exp((mu - shift) * T + sigma * tree.evaluate(T))


@pytest.mark.parametrize("calculus", ["ito", "stratonovich"])
@pytest.mark.parametrize("make", [_gbm, _commutative_linear], ids=["diagonal-gbm", "commutative-linear"])
def test_milstein_strong_order_one(make, calculus, x64):
    problem, shape, exact = make(calculus)
    keys = jax.random.split(jax.random.key(11), N_PATHS)
    trees = jax.vmap(lambda k: sk.BrownianTree(k, 0.0, T, shape=shape, tol=2**-10))(keys)

    # One compiled program for every resolution: the constant step size is a traced argument
    # (a while loop of at most 128 steps), not a grid whose length recompiles per level.
    @jax.jit
    def mean_error(dt):
        def error(tree):
            sol = sk.solve(problem, sk.solvers.milstein(calculus), 0.0, T, jnp.ones(2), dt0=dt, brownian=tree,
                           max_steps=max(STEPS))
            return jnp.max(jnp.abs(sol.ys[-1] - exact(tree)))

        return jnp.mean(jax.vmap(error)(trees))

    errors = [float(mean_error(jnp.asarray(T / n))) for n in STEPS]
    slope = np.polyfit(np.log(T / np.asarray(STEPS)), np.log(errors), 1)[0]
    assert abs(slope - 1.0) < 0.15, errors


def test_milstein_refuses_general_noise():
    problem = sk.SDE(lambda t, y, a: y, lambda t, y, a: jnp.stack([y, y[::-1]], -1), noise="general")
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8)
    with pytest.raises(ValueError, match="does not support 'general' noise"):
        sk.solve(problem, sk.solvers.milstein(), 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    with pytest.raises(ValueError, match="calculus must be"):
        sk.solvers.milstein("itô")
