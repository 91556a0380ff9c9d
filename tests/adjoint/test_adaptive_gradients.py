"""Gradients through adaptive (and fixed) SDE and ODE solves are those of the same discrete solve
replayed on its accepted steps (`StepTo(sol.ts)`): the controller's choices and the Brownian
path's times are not differentiated. Checked against the replay's own gradient and its finite
differences, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from _gradcheck import assert_trees_close, finite_differences

T1 = 1.0


def _y0():
    return jnp.array([1.0, 0.5])


def _args():
    return {"mu": jnp.array(0.3), "sigma": jnp.array(0.6)}


def _diagonal():
    # Stratonovich geometric Brownian motion, one Brownian motion per component.
    return sk.SDE(lambda t, y, a: a["mu"] * y, lambda t, y, a: a["sigma"] * y, noise="diagonal",
                  calculus="stratonovich")


def _additive():
    return sk.SDE(lambda t, y, a: -a["mu"] * y + jnp.sin(y), lambda t, y, a: a["sigma"] * jnp.ones(2),
                  noise="additive", calculus="stratonovich")


def _general():
    def diffusion(t, y, a):
        return a["sigma"] * jnp.stack([jnp.stack([y[0], 0.5 * y[1]]), jnp.stack([jnp.sin(y[0]), y[1]])])

    return sk.SDE(lambda t, y, a: -a["mu"] * y, diffusion, noise="general", calculus="stratonovich")


CASES = {
    "heun_sde": (_diagonal, sk.solvers.heun_sde, "increment"),
    "shark": (_additive, sk.solvers.shark, "space-time"),
    "spark": (_general, sk.solvers.spark, "space-time"),
    "general_shark": (_general, sk.solvers.general_shark, "space-time"),  # no error estimate: fixed steps
}


def _tree(levy):
    return sk.BrownianTree(jax.random.key(3), 0.0, T1, shape=(2,), tol=2**-14, levy=levy)


def _loss(problem, solver, tree, args, controller, dt0, adjoint):
    sol = sk.solve(problem, solver, 0.0, T1, _y0(), args, dt0=dt0, controller=controller, brownian=tree, adjoint=adjoint,
                   max_steps=4096)
    return jnp.sum(sol.ys[-1] ** 2)


def _accepted_steps(problem, solver, tree, controller, dt0):
    sol = sk.solve(problem, solver, 0.0, T1, _y0(), _args(), dt0=dt0, controller=controller, brownian=tree,
                   saveat=sk.SaveAt(steps=True), max_steps=4096)
    ends = np.asarray(sol.ts)
    return jnp.asarray(np.concatenate([[0.0], ends[np.isfinite(ends)]]))


@pytest.mark.parametrize("solver_name", list(CASES))
def test_sde_gradients_equal_the_replayed_discrete_solve(x64, solver_name):
    make_problem, make_solver, levy = CASES[solver_name]
    adaptive = solver_name != "general_shark"  # it has no error estimate: constant steps
    problem, solver, tree = make_problem(), make_solver(), _tree(levy)
    controller, dt0 = (sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3), 0.05) if adaptive else (None, 1 / 32)
    grid = _accepted_steps(problem, solver, tree, controller, dt0)
    replay = lambda a: _loss(problem, solver, tree, a, sk.StepTo(grid), None, None)  # noqa: E731
    expected = jax.grad(replay)(_args())
    if solver_name == "heun_sde":  # the replay's own gradient against finite differences (once: compile time)
        assert_trees_close(expected, finite_differences(replay, _args()), rtol=1e-6)
    # (Enough checkpoints that nothing is recomputed: a recomputed adaptive step may be decided
    # differently in the last bits, and the reverse pass then differentiates another path.)
    grads = jax.grad(lambda a: _loss(problem, solver, tree, a, controller, dt0, sk.adjoint.Checkpointed()))(_args())
    assert_trees_close(grads, expected, rtol=1e-9)


@pytest.mark.parametrize("solver_name", ["heun_sde", "spark"])
def test_backsolve_through_adaptive_sde_solves_is_close_to_the_discrete_gradient(x64, solver_name):
    """The stochastic adjoint is the continuous gradient: equal to the discrete one up to the
    solvers' errors (here ~1e-3 relative), never garbage."""
    make_problem, make_solver, levy = CASES[solver_name]
    problem, solver, tree = make_problem(), make_solver(), _tree(levy)
    controller = sk.PID(rtol=1e-4, atol=1e-4, pcoeff=0.1, icoeff=0.3)
    grid = _accepted_steps(problem, solver, tree, controller, 0.05)
    expected = jax.grad(lambda a: _loss(problem, solver, tree, a, sk.StepTo(grid), None, None))(_args())
    grads = jax.grad(lambda a: _loss(problem, solver, tree, a, controller, 0.05, sk.adjoint.Backsolve()))(_args())
    assert_trees_close(grads, expected, rtol=2e-2)


def test_ode_gradients_through_pid_equal_the_replayed_solve(x64):
    problem = sk.ODE(lambda t, y, a: -a["mu"] * y + a["sigma"] * jnp.sin(t) * y[::-1])
    controller = sk.PID(rtol=1e-5, atol=1e-7)
    sol = sk.solve(problem, sk.solvers.dopri5(), 0.0, T1, _y0(), _args(), controller=controller, saveat=sk.SaveAt(steps=True))
    ends = np.asarray(sol.ts)
    grid = jnp.asarray(np.concatenate([[0.0], ends[np.isfinite(ends)]]))

    def loss(a, controller):
        return jnp.sum(sk.solve(problem, sk.solvers.dopri5(), 0.0, T1, _y0(), a, controller=controller).ys[-1] ** 2)

    expected = jax.grad(lambda a: loss(a, sk.StepTo(grid)))(_args())
    assert_trees_close(expected, finite_differences(lambda a: loss(a, sk.StepTo(grid)), _args()), rtol=1e-6)
    assert_trees_close(jax.grad(lambda a: loss(a, controller))(_args()), expected, rtol=1e-9)
