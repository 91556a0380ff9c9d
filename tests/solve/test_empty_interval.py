"""`t0 == t1`: the trivial solution, successful, in every mode (as diffrax)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

ODE = sk.ODE(lambda t, y, a: -y)


@pytest.mark.parametrize("step", ["constant", "pid"])
def test_empty_interval_returns_y0_eagerly_and_under_jit(dtype, step):
    options = dict(dt0=0.1) if step == "constant" else dict(controller=sk.PID(rtol=1e-6, atol=1e-6))
    saveat = sk.SaveAt(t0=True, ts=jnp.array([0.5, 0.5]), t1=True, dense=True)

    def run(y0, throw):
        return sk.solve(ODE, sk.solvers.tsit5(), 0.5, 0.5, y0, saveat=saveat, throw=throw, **options)

    y0 = jnp.array([2.0, -1.0], dtype)
    for sol in (run(y0, True), jax.jit(run, static_argnums=1)(y0, True), jax.jit(run, static_argnums=1)(y0, False)):
        assert int(sol.result) == int(sk.RESULTS.successful)
        np.testing.assert_array_equal(sol.ys, np.broadcast_to(np.asarray(y0), (4, 2)))
        np.testing.assert_array_equal(sol.evaluate(0.5), y0)
        np.testing.assert_array_equal(sol.derivative(0.5), np.zeros(2))
        assert int(sol.stats["num_steps"]) == 0


def test_empty_interval_with_traced_times_under_throw_false():
    @jax.jit
    def run(t1):
        return sk.solve(ODE, sk.solvers.tsit5(), 0.0, t1, jnp.array(1.0), dt0=0.1, throw=False)

    sol = run(0.0)
    assert int(sol.result) == int(sk.RESULTS.successful)
    assert float(sol.ys[-1]) == 1.0
