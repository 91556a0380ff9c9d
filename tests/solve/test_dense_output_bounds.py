"""`sol.evaluate` never extrapolates: an error with `throw=True`, NaN with `throw=False`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


@jax.jit
def _evaluate(sol, t):
    return sol.evaluate(t)


def _solve(throw, t0=0.0, t1=1.0):
    return sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), t0, t1, jnp.array(1.0), dt0=0.1 if t1 > t0 else -0.1,
                    saveat=sk.SaveAt(dense=True), throw=throw)


@pytest.mark.parametrize("t0, t1, outside", [(0.0, 1.0, 1.5), (0.0, 1.0, -0.1), (1.0, 0.0, 1.2)])
def test_evaluate_outside_the_solved_interval_raises_under_jit(t0, t1, outside):
    sol = _solve(True, t0, t1)
    inside = 0.5
    np.testing.assert_allclose(_evaluate(sol, inside), np.exp(-(inside - t0)), rtol=1e-5)
    # Under a user's `jit`, equinox's error surfaces wrapped by XLA's callback error.
    with pytest.raises((RuntimeError, ValueError), match="outside the solved interval"):
        jax.block_until_ready(_evaluate(sol, outside))


def test_evaluate_outside_is_nan_without_throw():
    sol = _solve(False)
    values = jax.jit(jax.vmap(_evaluate, (None, 0)))(sol, jnp.array([0.0, 1.0, 1.0001, -0.5]))
    assert np.all(np.isfinite(values[:2])) and np.all(np.isnan(values[2:]))
