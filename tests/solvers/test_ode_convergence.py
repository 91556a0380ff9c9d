"""Measured convergence orders of every ODE solver, and of its dense output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

T = 4.0


def vector_field(t, y, args):
    # Non-autonomous and nonlinear, pytree state: a = exp(sin 2t), b = 1 / (1 + t).
    return {"a": 2 * jnp.cos(2 * t) * y["a"], "b": -y["b"] * y["b"]}


def exact(t):
    return np.exp(np.sin(2 * t)), 1 / (1 + t)


# (order of the solution, order of the dense output = min(p, q + 1), step counts in the
# asymptotic range and above float64 rounding; Tsit5's small leading error term needs fine steps)
CASES = {
    "euler": (1, 1, [64, 128, 256, 512, 1024]),
    "heun": (2, 2, [32, 64, 128, 256, 512]),
    "midpoint": (2, 2, [32, 64, 128, 256, 512]),
    "ralston": (2, 2, [32, 64, 128, 256, 512]),
    "bosh3": (3, 3, [32, 64, 128, 256, 512]),
    "rk4": (4, 4, [32, 64, 128, 256, 512]),
    "tsit5": (5, 5, [128, 192, 256, 384, 512]),
    "dopri5": (5, 5, [64, 96, 128, 192, 256]),
    "dopri8": (8, 6, [16, 24, 32, 48, 64]),
}


def _errors(solver, num_steps):
    y0 = {"a": jnp.array(1.0), "b": jnp.array(1.0)}
    sol = sk.solve(
        sk.ODE(vector_field), solver, 0.0, T, y0, dt0=T / num_steps,
        saveat=sk.SaveAt(steps=True, dense=True), max_steps=1024,  # one compilation for all sizes
    )
    # Global error: the largest over every step end (robust to sign changes of the error).
    used = np.isfinite(np.asarray(sol.ts))
    assert used.sum() == num_steps
    exact_steps = exact(np.asarray(sol.ts)[used])
    end = max(np.max(np.abs(np.asarray(sol.ys[k])[used] - e)) for k, e in zip("ab", exact_steps))
    mid = (np.arange(num_steps) + 0.5) * T / num_steps
    dense = jax.vmap(sol.evaluate)(jnp.asarray(mid))
    dense_err = max(np.max(np.abs(np.asarray(dense[k]) - e)) for k, e in zip("ab", exact(mid)))
    return end, dense_err


def _slope(num_steps, errors):
    return np.polyfit(np.log(T / np.asarray(num_steps)), np.log(errors), 1)[0]


@pytest.mark.parametrize("name", list(CASES))
def test_solution_order(name, x64):
    order, _, steps = CASES[name]
    solver = getattr(sk.solvers, name)()
    assert solver.order == order
    errors = [_errors(solver, n)[0] for n in steps]
    assert abs(_slope(steps, errors) - order) < 0.15, errors


@pytest.mark.parametrize("name", list(CASES))
def test_dense_output_order(name, x64):
    _, dense_order, steps = CASES[name]
    solver = getattr(sk.solvers, name)()
    tolerance = 0.15
    if name == "dopri8":
        # Seventh-order terms lift the slope at coarse steps and rounding caps it at fine ones.
        steps, tolerance = [64, 96, 128, 192], 0.3
    assert min(solver.order, solver.interpolation_order + 1) == dense_order
    errors = [_errors(solver, n)[1] for n in steps]
    assert abs(_slope(steps, errors) - dense_order) < tolerance, errors


@pytest.mark.parametrize("name", ["heun", "bosh3", "tsit5", "dopri5", "dopri8"])
def test_embedded_error_order(name, x64):
    """The error estimate of one step scales like h^(embedded order + 1)."""
    solver = getattr(sk.solvers, name)()
    problem = sk.ODE(vector_field)
    y0 = {"a": jnp.array(1.0), "b": jnp.array(1.0)}
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    estimates = []
    for h in hs:
        state = solver.init(problem, jnp.array(0.3), y0, None)
        _, y_error, _, _ = solver.step(problem, jnp.array(0.3), jnp.array(0.3 + h), y0, None, None, state)
        estimates.append(max(abs(float(v)) for v in jax.tree.leaves(y_error)))
    slope = np.polyfit(np.log(hs), np.log(estimates), 1)[0]
    assert abs(slope - (solver.embedded_order + 1)) < 0.2, estimates
