"""Gradients with respect to parameters however they are passed: Python floats in `args` or in
an equinox module, values the vector field closes over, and through PID steps whose error is zero
or whose trial step blows up. Checked against finite differences and the default adjoint."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

ADJOINTS = {"checkpointed": sk.adjoint.Checkpointed, "backsolve": sk.adjoint.Backsolve}


def _central(fn, x, eps=1e-6):
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


@pytest.mark.parametrize("adjoint", list(ADJOINTS))
def test_python_float_args_get_their_gradient(x64, adjoint):
    def final(k):
        return sk.solve(sk.ODE(lambda t, y, a: -a * y), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), k, dt0=0.01,
                        adjoint=ADJOINTS[adjoint]()).ys.sum()

    np.testing.assert_allclose(jax.grad(final)(0.5), -np.exp(-0.5), rtol=1e-6)


class _Decay(eqx.Module):
    rate: float

    def __call__(self, t, y, args):
        return -self.rate * y


@pytest.mark.parametrize("adjoint", list(ADJOINTS))
def test_python_float_module_fields_get_their_gradient(x64, adjoint):
    def final(module):
        return sk.solve(sk.ODE(module), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=0.01,
                        adjoint=ADJOINTS[adjoint]()).ys.sum()

    np.testing.assert_allclose(jax.grad(final)(_Decay(0.5)).rate, -np.exp(-0.5), rtol=1e-6)


@pytest.mark.parametrize("step", ["pid", "constant", "jit-constant"])
@pytest.mark.parametrize("adjoint", list(ADJOINTS))
def test_vector_fields_closing_over_differentiated_values(x64, step, adjoint):
    options = dict(controller=sk.PID(rtol=1e-10, atol=1e-10)) if step == "pid" else dict(dt0=0.01)

    def final(k):
        problem = sk.ODE(lambda t, y, a: -k * y)  # closes over k, a tracer under grad
        return sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), adjoint=ADJOINTS[adjoint](),
                        **options).ys[-1]

    grad = jax.jit(jax.grad(final)) if step == "jit-constant" else jax.grad(final)
    k = jnp.array(2.0)
    g = grad(k)
    # Central differences through one jitted solve: eagerly each call's new closure compiled anew.
    np.testing.assert_allclose(g, _central(jax.jit(final), k), rtol=1e-6)
    np.testing.assert_allclose(g, -np.exp(-2.0), rtol=1e-6)


def test_sde_closing_over_differentiated_values(x64):
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-10)

    def final(sigma, adjoint):
        sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: sigma * jnp.ones_like(y), noise="additive",
                     calculus="stratonovich")
        return sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, jnp.array(1.0), dt0=2**-6, brownian=tree,
                        adjoint=adjoint).ys[-1]

    sigma = jnp.array(0.5)
    exact = jax.grad(final)(sigma, sk.adjoint.Checkpointed())
    np.testing.assert_allclose(exact, _central(lambda s: final(s, None), sigma), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(final)(sigma, sk.adjoint.Backsolve()), exact, rtol=1e-6)


def _replayed_gradient(problem, y0, controller):
    """d y(1)/d y0 of the solve replayed on the PID solve's accepted steps, by central differences."""
    steps = sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, y0, controller=controller, dt0=0.1 if y0 == 0 else 1.0,
                     saveat=sk.SaveAt(steps=True)).ts
    grid = sk.StepTo(jnp.concatenate([jnp.zeros(1), steps[jnp.isfinite(steps)]]))
    return _central(lambda y: sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, y, controller=grid).ys[-1], y0)


def test_no_nan_gradient_through_pid_when_the_error_is_exactly_zero(x64):
    problem, controller = sk.ODE(lambda t, y, a: -y), sk.PID(rtol=1e-6, atol=1e-6)
    y0 = jnp.array(0.0)  # zero state: every error estimate is exactly zero
    grad = jax.grad(lambda y: sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, y, controller=controller,
                                       dt0=0.1).ys[-1])(y0)
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, _replayed_gradient(problem, y0, controller), rtol=1e-7)
    np.testing.assert_allclose(grad, np.exp(-1.0), rtol=1e-3)  # few, long steps: the discrete answer


def test_no_nan_gradient_through_pid_after_a_non_finite_trial_step(x64):
    # The first trial step (dt0 = 1) overshoots into the region where f is infinite and is rejected.
    problem = sk.ODE(lambda t, y, a: jnp.where(jnp.abs(y) > 10, jnp.inf, -3 * y))
    controller = sk.PID(rtol=1e-6, atol=1e-6)
    y0 = jnp.array(1.0)
    sol = sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, y0, controller=controller, dt0=1.0)
    assert int(sol.stats["num_rejected_steps"]) >= 1
    grad = jax.grad(lambda y: sk.solve(problem, sk.solvers.tsit5(), 0.0, 1.0, y, controller=controller,
                                       dt0=1.0).ys[-1])(y0)
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, _replayed_gradient(problem, y0, controller), rtol=1e-7)
    np.testing.assert_allclose(grad, np.exp(-3.0), rtol=1e-4)
