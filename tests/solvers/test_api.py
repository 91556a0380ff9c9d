"""One conformance test over every solver: pure init/step usable in a user's own lax.scan, under
jit and vmap, with a state whose structure and dtypes never change."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sdekit as sk

NAMES = ["euler", "heun", "midpoint", "ralston", "bosh3", "rk4", "tsit5", "dopri5", "dopri8"]
PROBLEM = sk.ODE(lambda t, y, args: {"u": -args * y["u"], "v": jnp.cos(t) * jnp.ones_like(y["v"])})


def _scan_solve(solver, y0, rate, num_steps=100):
    state = solver.init(PROBLEM, jnp.zeros(()), y0, rate)
    h = 1.0 / num_steps

    def body(carry, i):
        y, state = carry
        t = i * h
        y1, _, _, new_state = solver.step(PROBLEM, t, t + h, y, rate, None, state)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
            assert a.shape == b.shape and a.dtype == b.dtype
        return (y1, new_state), None

    (y, _), _ = lax.scan(body, (y0, state), jnp.arange(num_steps, dtype=jnp.float32))
    return y


@pytest.mark.parametrize("name", NAMES)
def test_init_step_in_user_scan_jit_vmap(name):
    solver = getattr(sk.solvers, name)()
    assert isinstance(solver, sk.solvers.Solver) and solver.name == name
    y0 = {"u": jnp.ones(3), "v": jnp.zeros((2, 2))}
    rates = jnp.array([0.5, 1.0, 2.0])
    batched = jax.jit(jax.vmap(lambda r: _scan_solve(solver, y0, r)))(rates)
    assert batched["u"].shape == (3, 3) and batched["v"].shape == (3, 2, 2)
    tol = {1: 0.03, 2: 5e-4}.get(solver.order, 2e-5)
    np.testing.assert_allclose(batched["u"][:, 0], np.exp(-np.asarray(rates)), rtol=tol)
    np.testing.assert_allclose(batched["v"][0], np.sin(1.0) * np.ones((2, 2)), rtol=tol)
    # The user's scan and sk.solve's fixed grid take identical steps.
    sol = sk.solve(PROBLEM, solver, 0.0, 1.0, y0, args=jnp.asarray(1.0), controller=sk.StepTo(jnp.linspace(0.0, 1.0, 101)))
    np.testing.assert_allclose(sol.ys["u"][-1], batched["u"][1], rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_declared_facts(name):
    solver = getattr(sk.solvers, name)()
    assert solver.order >= 1 and solver.interpolation_order >= 1
    assert solver.has_error_estimate == (name not in ("euler", "rk4"))
    if solver.has_error_estimate:
        assert solver.error_order == solver.embedded_order + 1 <= solver.order + 1
    calls = []
    problem = sk.ODE(lambda t, y, args: (calls.append(1), -y)[1])
    state = solver.init(problem, 0.0, jnp.ones(1), None)
    init_calls = len(calls)
    jax.make_jaxpr(lambda y: solver.step(problem, 0.0, 0.1, y, None, None, state)[:2])(jnp.ones(1))
    assert init_calls == solver.init_fevals
    # Traced evaluations per step (the dense-only evaluation, if any, is traced too).
    assert len(calls) - init_calls == solver.fevals_per_step + solver.dense_fevals
