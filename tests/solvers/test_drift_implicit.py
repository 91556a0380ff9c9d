"""Drift-implicit SDE solvers: stable on a stiff Ornstein--Uhlenbeck process where
Euler--Maruyama blows up, with measured strong orders (one Brownian path per sample, shared
across step sizes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

KEYS = jax.random.split(jax.random.key(1), 64)
LAMBDA = 1e3


def _slope(ns, errors):
    return np.polyfit(np.log(1.0 / np.asarray(ns)), np.log(errors), 1)[0]


def _stiff_ou():
    return sk.SDE(lambda t, y, a: -LAMBDA * y, lambda t, y, a: jnp.ones_like(y), noise="additive")


def test_stable_where_euler_maruyama_blows_up(x64):
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-12)
    h = 1.0 / 128  # lambda h = 7.8: Euler-Maruyama's amplification |1 - lambda h| = 6.8 per step
    em = sk.solve(_stiff_ou(), sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.array(1.0), dt0=h, brownian=tree,
                  saveat=sk.SaveAt(steps=True), max_steps=128, throw=False)
    assert int(em.result) == int(sk.RESULTS.nonfinite) or np.nanmax(np.abs(np.asarray(em.ys))) > 1e50
    sol = sk.solve(_stiff_ou(), sk.solvers.implicit_euler_maruyama(), 0.0, 1.0, jnp.array(1.0), dt0=h,
                   brownian=tree, saveat=sk.SaveAt(steps=True), max_steps=128)
    # Implicit Euler's stationary standard deviation sqrt(1 / (lambda (2 + lambda h))) = 0.0106.
    ys = np.asarray(sol.ys)[64:]
    std = np.sqrt(1 / (LAMBDA * (2 + LAMBDA * h)))
    assert np.all(np.abs(ys) < 6 * std) and 0.5 * std < np.std(ys) < 1.5 * std


def test_strong_order_on_the_stiff_ou(x64):
    """Strong order 1 (additive noise) once lambda h <= 0.8; errors stay bounded above that."""
    T, n_ref = 0.05, 2048

    def end(key, n):
        tree = sk.BrownianTree(key, 0.0, T, shape=(), tol=T * 2**-13)
        sol = sk.solve(_stiff_ou(), sk.solvers.implicit_euler_maruyama(), 0.0, T, jnp.array(1.0), dt0=T / n,
                       brownian=tree, max_steps=n_ref)
        return sol.ys[-1]

    ends = jax.jit(jax.vmap(end, in_axes=(0, None)))
    reference = ends(KEYS, n_ref)
    ns = [8, 64, 128, 256, 512]  # lambda h = 6.25, then 0.78 .. 0.1
    errors = [float(jnp.mean(jnp.abs(ends(KEYS, n) - reference))) for n in ns]
    assert errors[0] < 0.05  # bounded at lambda h = 6.25 (Euler-Maruyama: |1 - 6.25|^8 ~ 6e5)
    assert abs(_slope(ns[1:], errors[1:]) - 1.0) < 0.15, errors


@pytest.mark.slow
@pytest.mark.parametrize("name, order", [("implicit_euler_maruyama", 0.5), ("implicit_milstein", 1.0)])
def test_strong_order_on_gbm(name, order, x64):
    mu, sigma = -1.0, 0.5
    sde = sk.SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal")
    solver = getattr(sk.solvers, name)()

    def error(key, n):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12)
        sol = sk.solve(sde, solver, 0.0, 1.0, jnp.array(1.0), dt0=1.0 / n, brownian=tree, max_steps=256)
        return jnp.abs(sol.ys[-1] - jnp.exp(mu - sigma**2 / 2 + sigma * tree.evaluate(1.0)))

    errors_at = jax.jit(jax.vmap(error, in_axes=(0, None)))
    ns = [16, 32, 64, 128, 256]
    errors = [float(jnp.mean(errors_at(KEYS, n))) for n in ns]
    assert abs(_slope(ns, errors) - order) < 0.15, errors
    assert solver.sde.strong("diagonal") == order


def test_theta_and_bad_input():
    with pytest.raises(ValueError, match="theta"):
        sk.solvers.implicit_euler_maruyama(theta=1.5)
    with pytest.raises(ValueError, match="calculus"):
        sk.solvers.implicit_milstein(calculus="both")
    # theta = 1/2 (trapezoidal drift) on the stiff OU in float32: finite, mean-square stable.
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-10)
    sol = sk.solve(_stiff_ou(), sk.solvers.implicit_euler_maruyama(theta=0.5), 0.0, 1.0, jnp.ones(3), dt0=1 / 64,
                   brownian=tree)
    assert sol.ys.dtype == jnp.float32 and np.all(np.abs(np.asarray(sol.ys)) < 1.0)
    # No error estimate: adaptive steps are refused, naming the adaptive stiff method.
    for solver in (sk.solvers.implicit_euler_maruyama(), sk.solvers.implicit_milstein()):
        with pytest.raises(ValueError, match="no embedded error estimate.*skencarp3"):
            sk.solve(_stiff_ou(), solver, 0.0, 1.0, jnp.ones(3), dt0=1 / 64, brownian=tree,
                     controller=sk.PID(rtol=1e-2, atol=1e-2))
