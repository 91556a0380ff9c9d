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
    """d t*/d(w, x0, u) of the first zero: the closed form's gradient, and central finite
    differences of the solve itself; and the gradient of the state at the event (its speed)."""
    solver, kwargs = LOOPS[loop]

    def solved(p):
        w, x0, u = p
        sol = sk.solve(sk.ODE(oscillator), solver, 0.0, 4.0, jnp.stack([x0, u]), w, event=GROUND, **kwargs)
        return sol.ts[-1], sol.ys[-1, 1]

    p = jnp.array([1.3, 1.0, 0.4])
    grad_t, grad_v = jax.jit(jax.jacrev(solved))(p)
    exact = jax.grad(lambda p: first_zero(*p))(p)
    # Adaptive steps: the discrete solve's gradient (step sizes not differentiated); rk4 at h = 0.01.
    closed_tol = 1e-8 if loop == "adaptive" else 1e-6
    np.testing.assert_allclose(grad_t, exact, rtol=0, atol=closed_tol)

    eps = 1e-6
    run = jax.jit(solved)
    for j in range(3):
        step = jnp.zeros(3).at[j].set(eps)
        (tp, vp), (tm, vm) = run(p + step), run(p - step)
        np.testing.assert_allclose(grad_t[j], (tp - tm) / (2 * eps), rtol=0, atol=1e-7)
        np.testing.assert_allclose(grad_v[j], (vp - vm) / (2 * eps), rtol=0, atol=1e-7)
    # v(t*) = -w * sqrt(x0^2 + (u/w)^2) at the zero of x.
    speed = jax.grad(lambda p: -p[0] * jnp.sqrt(p[1] ** 2 + (p[2] / p[0]) ** 2))(p)
    np.testing.assert_allclose(grad_v, speed, rtol=0, atol=closed_tol * 10)


def test_gradient_of_a_closed_over_barrier_under_vmap(x64):
    """A fall to a barrier b closed over by the condition (closure-converted): t* = sqrt(2(h - b)/g),
    per lane under vmap."""
    def fall(t, y, g):
        return jnp.stack([y[1], -g * jnp.ones_like(y[1])])

    def hit(b):
        event = sk.Event(lambda t, y, a: y[0] - b)
        return sk.solve(sk.ODE(fall), sk.solvers.tsit5(), 0.0, 5.0, jnp.array([2.0, 0.0]), jnp.asarray(9.81),
                        event=event, controller=sk.PID(rtol=1e-10, atol=1e-10), dt0=0.01).ts[-1]

    barriers = jnp.array([0.0, 0.5, 1.5])
    grads = jax.jit(jax.vmap(jax.grad(hit)))(barriers)
    np.testing.assert_allclose(grads, -1 / np.sqrt(2 * 9.81 * (2.0 - np.asarray(barriers))), rtol=1e-9)
