"""Gradients of event times (`sk.adjoint.Checkpointed`, the implicit function theorem on the
dense output): against the closed form and finite differences of the solve, for adaptive steps
(while loop) and a fixed grid (scan); the state at the event; a barrier closed over."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

GROUND = sk.Event(lambda t, y, args: y[0], direction=-1)


def oscillator(t, y, w):
    return jnp.stack([y[1], -w**2 * y[0]])


def first_zero(w, x0, u):
    """First zero of x(t) = x0 cos(wt) + (u/w) sin(wt) (x0 > 0)."""
    return (jnp.pi / 2 + jnp.arctan2(u, w * x0)) / w


LOOPS = {
    "adaptive": (sk.solvers.tsit5(), dict(controller=sk.PID(rtol=1e-12, atol=1e-12), dt0=0.01)),
    "grid": (sk.solvers.rk4(), dict(controller=sk.StepTo(jnp.linspace(0.0, 4.0, 401)))),
}


@pytest.mark.parametrize("loop", list(LOOPS))
def test_event_time_gradient(x64, loop):
    """d/d(w, x0, u) of t* + v(t*)/4 (the first zero of x and the speed there, so that the
    event time and the state at the event are both checked by one reverse pass): the closed
    form's gradient, and central finite differences of the solve itself."""
    solver, kwargs = LOOPS[loop]

    def solved(p):
        w, x0, u = p
        sol = sk.solve(sk.ODE(oscillator), solver, 0.0, 4.0, jnp.stack([x0, u]), w, event=GROUND, **kwargs)
        return sol.ts[-1] + sol.ys[-1, 1] / 4

    def exact(p):
        w, x0, u = p
        # At the zero of x, v = -w * sqrt(x0^2 + (u/w)^2).
        return first_zero(w, x0, u) - w * jnp.sqrt(x0**2 + (u / w) ** 2) / 4

    p = jnp.array([1.3, 1.0, 0.4])
    grad = jax.jit(jax.grad(solved))(p)
    # Adaptive steps: the discrete solve's gradient (step sizes not differentiated); rk4 at h = 0.01.
    closed_tol = 1e-8 if loop == "adaptive" else 1e-6
    np.testing.assert_allclose(grad, jax.grad(exact)(p), rtol=0, atol=closed_tol)
    eps = 1e-6
    run = jax.jit(jax.vmap(solved))
    steps = eps * jnp.eye(3)
    fd = (run(p[None] + steps) - run(p[None] - steps)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7)


def test_gradient_of_a_closed_over_barrier_under_vmap(x64):
    """A fall to a barrier b closed over by the condition (closure-converted): t* = sqrt(2(h - b)/g),
    per lane under vmap."""
    def fall(t, y, g):
        return jnp.stack([y[1], -g * jnp.ones_like(y[1])])

    def hit(b):
        event = sk.Event(lambda t, y, a: y[0] - b)
        # rk4 is exact on this quadratic, and a fixed grid compiles faster than adaptive steps.
        return sk.solve(sk.ODE(fall), sk.solvers.rk4(), 0.0, 1.0, jnp.array([2.0, 0.0]), jnp.asarray(9.81),
                        event=event, controller=sk.StepTo(jnp.linspace(0.0, 1.0, 21))).ts[-1]

    barriers = jnp.array([0.0, 0.5, 1.5])
    grads = jax.jit(jax.vmap(jax.grad(hit)))(barriers)
    np.testing.assert_allclose(grads, -1 / np.sqrt(2 * 9.81 * (2.0 - np.asarray(barriers))), rtol=1e-9)
