"""Weak order of Euler-Maruyama, and its moments beside diffrax's on the same problem."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

MU, SIGMA, T = 0.5, 0.3, 1.0


def _gbm():
    return sk.SDE(lambda t, y, a: MU * y, lambda t, y, a: SIGMA * y, noise="diagonal")


@pytest.mark.slow
def test_euler_maruyama_weak_order_one(x64):
    """E[y_N] - E[y(T)] on GBM, estimated as the mean of y_N - y(T) on the same paths (a control
    variate: the exact solution's mean e^(mu T) is known), so Monte Carlo noise stays far below the
    weak error at every level. Also checked against the exact E[y_N] = (1 + mu h)^N."""
    n_paths, steps = 20_000, [8, 16, 32, 64]
    keys = jax.random.split(jax.random.key(3), n_paths)
    trees = jax.vmap(lambda k: sk.BrownianTree(k, 0.0, T, shape=(), tol=2**-8))(keys)
    weak, stderr = [], []

    # One compiled program for every level: the constant step size is a traced argument.
    @jax.jit
    def differences(dt):
        def difference(tree):
            y = sk.solve(_gbm(), sk.solvers.euler_maruyama(), 0.0, T, jnp.ones(()), dt0=dt, brownian=tree,
                         max_steps=max(steps)).ys[-1]
            return y - jnp.exp((MU - SIGMA**2 / 2) * T + SIGMA * tree.evaluate(T))

        return jax.vmap(difference)(trees)

    for n in steps:
        d = np.asarray(differences(jnp.asarray(T / n)))
        weak.append(abs(d.mean()))
        stderr.append(d.std() / np.sqrt(n_paths))
        exact_weak = abs((1 + MU * T / n) ** n - np.exp(MU * T))
        assert abs(d.mean() + exact_weak) < 4 * stderr[-1]  # the scheme's mean is below e^(mu T)
    assert max(s / w for s, w in zip(stderr, weak)) < 0.1
    slope = np.polyfit(np.log(T / np.asarray(steps)), np.log(weak), 1)[0]
    assert abs(slope - 1.0) < 0.15, weak


@pytest.mark.slow
def test_moments_beside_diffrax(x64):
    """Mean and variance of y_T from sdekit's and diffrax's Euler-Maruyama (each with its own
    Brownian trees) agree with the exact discrete law within 4 standard errors."""
    n_paths, n = 20_000, 16
    h = T / n
    a = 1 + MU * h
    m1, m2 = a**n, (a**2 + SIGMA**2 * h) ** n
    var = m2 - m1**2
    keys = jax.random.split(jax.random.key(9), n_paths)

    def ours(key):
        tree = sk.BrownianTree(key, 0.0, T, shape=(), tol=2**-8)
        return sk.solve(_gbm(), sk.solvers.euler_maruyama(), 0.0, T, jnp.ones(()), dt0=h, brownian=tree).ys[-1]

    def theirs(key):
        bm = diffrax.VirtualBrownianTree(0.0, T, tol=2**-8, shape=(), key=key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(lambda t, y, a: MU * y), diffrax.ControlTerm(lambda t, y, a: SIGMA * y, bm))
        return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, T, h, jnp.ones(())).ys[-1]

    for sampler in (ours, theirs):
        y = np.asarray(jax.jit(jax.vmap(sampler))(keys))
        assert abs(y.mean() - m1) < 4 * np.sqrt(var / n_paths)
        # SE of a sample variance is var * sqrt((kurtosis - 1) / n); this law's kurtosis is about 4.7.
        assert abs(y.var() / var - 1) < 4 * np.sqrt(3.7 / n_paths)
