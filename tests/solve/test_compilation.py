"""Numbers are traced: new values of t0, t1, dt0, y0, args, tolerances or save times do not
recompile. Counted by how often the vector field is traced."""

import jax.numpy as jnp
import numpy as np

import sdekit as sk


def _counting_problem():
    traces = []

    def field(t, y, args):
        traces.append(1)  # runs once per trace (per call site inside the traced program)
        return -args["rate"] * y

    return sk.ODE(field), traces


def test_adaptive_solve_compiles_once():
    problem, traces = _counting_problem()
    solver = sk.solvers.tsit5()

    def run(t0, t1, y0, rate, rtol, atol, ts):
        return sk.solve(
            problem, solver, t0, t1, y0, args={"rate": rate}, dt0=0.01 * np.sign(t1 - t0),
            controller=sk.PID(rtol=rtol, atol=atol), saveat=sk.SaveAt(ts=ts),
        )

    first = run(0.0, 1.0, jnp.ones(3), 1.0, 1e-3, 1e-6, jnp.linspace(0.0, 1.0, 5))
    per_compile = len(traces)
    assert per_compile > 0
    second = run(0.5, 3.0, 2 * jnp.ones(3), 2.0, 1e-7, 1e-9, jnp.linspace(0.5, 3.0, 5))
    third = run(1.0, 0.0, jnp.ones(3), 0.5, 1e-5, 1e-8, jnp.linspace(1.0, 0.0, 5))  # backwards too
    assert len(traces) == per_compile, "changing numbers recompiled the solve"
    np.testing.assert_allclose(first.ys[-1], np.exp(-1.0), rtol=1e-2)
    np.testing.assert_allclose(second.ys[-1], 2 * np.exp(-5.0), rtol=1e-5)
    np.testing.assert_allclose(third.ys[-1], np.exp(0.5), rtol=1e-4)


def test_constant_step_new_step_count_does_not_recompile():
    problem, traces = _counting_problem()
    run = lambda dt0: sk.solve(problem, sk.solvers.rk4(), 0.0, 1.0, jnp.ones(2), args={"rate": 1.0}, dt0=dt0)
    run(0.1)
    per_compile = len(traces)
    coarse, fine = run(0.25), run(0.001)
    assert len(traces) == per_compile
    assert int(fine.stats["num_steps"]) == 1000 and int(coarse.stats["num_steps"]) == 4


def test_step_to_new_grid_values_do_not_recompile():
    problem, traces = _counting_problem()
    run = lambda grid: sk.solve(problem, sk.solvers.rk4(), grid[0], grid[-1], jnp.ones(2), args={"rate": 1.0}, controller=sk.StepTo(grid))
    run(jnp.linspace(0.0, 1.0, 11))
    per_compile = len(traces)
    run(jnp.linspace(0.0, 2.0, 11) ** 2)
    assert len(traces) == per_compile


def test_solver_factories_are_cached():
    for name in ["euler", "heun", "midpoint", "ralston", "bosh3", "rk4", "tsit5", "dopri5", "dopri8"]:
        factory = getattr(sk.solvers, name)
        assert factory() is factory() and factory() == factory()
        assert hash(factory()) == hash(factory())
