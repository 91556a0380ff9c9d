"""One conformance test over every solver in `sk.solvers.__all__` (ODE and SDE): pure init/step
usable in a user's own lax.scan, under jit and vmap, with a state whose structure and dtypes never
change, the same steps as `sk.solve`'s grid, and the facts it declares."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sdekit as sk



def _solver_factories():
    """Every public factory that makes a solver from its defaults."""
    names = []
    for name in sk.solvers.__all__:
        factory = getattr(sk.solvers, name)
        if isinstance(factory, type) or not callable(factory):
            continue
        try:
            made = factory()
        except TypeError:  # a constructor that needs a tableau: not a solver by itself
            continue
        if isinstance(made, sk.solvers.Solver):
            names.append(name)
    return names


ALL = _solver_factories()
NAMES = [n for n in ALL if getattr(sk.solvers, n)().order is not None]
# Underdamped Langevin methods solve only sk.UnderdampedLangevin: their conformance test (the same
# checks on a Langevin problem) is in tests/solvers/test_langevin.py.
LANGEVIN_NAMES = [n for n in ALL if getattr(sk.solvers, n)().sde is not None
                  and getattr(sk.solvers, n)().sde.strong("langevin") is not None]
SDE_NAMES = [n for n in ALL if getattr(sk.solvers, n)().sde is not None and n not in LANGEVIN_NAMES]


def test_every_public_solver_is_covered():
    assert set(NAMES) | set(SDE_NAMES) | set(LANGEVIN_NAMES) == set(ALL) and len(ALL) >= 20, ALL
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
    y_error = solver.step(sk.ODE(lambda t, y, a: -y), 0.0, 0.1, jnp.ones(1), None, None,
                          solver.init(sk.ODE(lambda t, y, a: -y), 0.0, jnp.ones(1), None))[1]
    assert solver.has_error_estimate == (y_error is not None)
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


@pytest.mark.parametrize("name", [n for n in ALL if getattr(sk.solvers, n)().is_reversible])
def test_declared_inverse_step_undoes_the_step(name, x64):
    """A solver that declares `inverse_step` (what `sk.adjoint.Reversible` needs) undoes `step`
    to rounding, on an ODE and on an SDE with its increment."""
    solver = getattr(sk.solvers, name)()
    sde, tree = _sde_for(solver)
    for problem, inc in ((sk.ODE(lambda t, y, a: jnp.sin(a * y)), None), (sde, None)):
        y0 = jnp.linspace(0.5, 1.5, 3) if problem is not sde else jnp.ones(tree.shape if tree.shape else ())
        args = jnp.asarray(0.7)
        if problem is sde:
            inc = tree.increment(0.25, 0.5)
        state = solver.init(problem, 0.25, y0, args)
        y1, _, _, state1 = solver.step(problem, 0.25, 0.5, y0, args, inc, state)
        y_back, state_back = solver.inverse_step(problem, 0.25, 0.5, y1, args, inc, state1)
        np.testing.assert_allclose(y_back, y0, rtol=1e-12, atol=1e-12)
        for a, b in zip(jax.tree.leaves(state_back), jax.tree.leaves(state)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- SDE solvers

_LEVY = {"increment": ("increment", False), "space-time": ("space-time", False),
         "space-time-time": ("space-time-time", False), "space-space": ("space-time", True)}


def _sde_for(solver):
    """An SDE of the first noise type the solver supports, in its calculus, and a matching tree."""
    noise = solver.sde.strong_order[0][0]
    m = 2
    if noise in ("general", "commutative"):
        diffusion = lambda t, y, a: 0.3 * y[:, None] * jnp.ones((1, m), y.dtype)  # noqa: E731
        shape = (m,)
    elif noise == "scalar":
        diffusion, shape = (lambda t, y, a: 0.3 * y), ()
    elif noise == "additive":
        diffusion, shape = (lambda t, y, a: 0.3 * jnp.ones_like(y)), (3,)
    else:
        diffusion, shape = (lambda t, y, a: 0.3 * y), (3,)
    problem = sk.SDE(lambda t, y, a: -a * y, diffusion, noise=noise, calculus=solver.sde.calculus)
    levy, area = _LEVY[solver.sde.levy_area]
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=shape, tol=2**-8, levy=levy, area=area)
    return problem, tree


@pytest.mark.parametrize("name", SDE_NAMES)
def test_sde_solver_init_step_in_user_scan_jit_vmap(name):
    solver = getattr(sk.solvers, name)()
    problem, tree = _sde_for(solver)
    grid = jnp.linspace(0.0, 1.0, 33)
    incs = tree.grid_increments(grid)
    y0 = jnp.ones(3)

    def scan_solve(rate):
        state = solver.init(problem, grid[0], y0, rate)

        def body(carry, x):
            y, state = carry
            t, tn, inc = x
            y1, err, _, new_state = solver.step(problem, t, tn, y, rate, inc, state)
            assert jax.tree.structure(new_state) == jax.tree.structure(state)
            assert (err is None) == (solver.sde.error(problem.noise) is None)
            return (y1, new_state), None

        (y, _), _ = lax.scan(body, (y0, state), (grid[:-1], grid[1:], incs))
        return y

    batched = jax.jit(jax.vmap(scan_solve))(jnp.array([0.5, 1.0]))
    assert batched.shape == (2, 3) and np.all(np.isfinite(batched))
    sol = sk.solve(problem, solver, 0.0, 1.0, y0, jnp.asarray(1.0), controller=sk.StepTo(grid), brownian=tree)
    np.testing.assert_allclose(sol.ys[-1], batched[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", SDE_NAMES)
def test_sde_solver_declared_facts(name):
    solver = getattr(sk.solvers, name)()
    facts = solver.sde
    assert facts.calculus in ("ito", "stratonovich")
    assert all(order >= 0.5 for _, order in facts.strong_order)
    problem, tree = _sde_for(solver)
    # The Lévy area it declares is the one it needs: a tree without it is refused.
    if facts.levy_area != "increment":
        poorer = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=tree.shape, tol=2**-8, levy="increment")
        with pytest.raises(ValueError, match="needs"):
            sk.solve(problem, solver, 0.0, 1.0, jnp.ones(3), jnp.asarray(1.0), dt0=0.1, brownian=poorer)
    # Noise types it does not declare are refused.
    for noise in ("additive", "scalar", "diagonal", "commutative", "general"):
        if facts.strong(noise) is None:
            other = sk.SDE(problem.drift, problem.diffusion, noise=noise, calculus=facts.calculus)
            with pytest.raises(ValueError, match="does not support"):
                sk.solve(other, solver, 0.0, 1.0, jnp.ones(3), jnp.asarray(1.0), dt0=0.1, brownian=tree)
