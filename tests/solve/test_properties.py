"""Property tests (hypothesis) of solve invariants over random intervals and step sizes. Numbers
are traced, so every example reuses one compilation."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

import sdekit as sk

RATE = sk.ODE(lambda t, y, k: -k * y)
# A damped, forced pendulum. Module level, like RATE: a vector field built inside the example
# is a new function each time, and the solve compiled again for every example.
PENDULUM = sk.ODE(lambda t, y, a: jnp.stack([y[1], -jnp.sin(y[0]) + 0.1 * jnp.cos(t)]))


@settings(max_examples=30, deadline=None)
@given(
    t0=st.floats(-5.0, 5.0),
    length=st.floats(0.05, 3.0),
    dt0=st.floats(0.01, 0.5),
    rate=st.floats(-1.0, 2.0),
)
def test_constant_steps_land_on_t1_and_match_the_exact_solution(t0, length, dt0, rate):
    with jax.enable_x64(True):
        t1 = t0 + length
        sol = sk.solve(RATE, sk.solvers.rk4(), t0, t1, jnp.array(1.0), args=rate, dt0=dt0,
                       saveat=sk.SaveAt(t0=True, t1=True), max_steps=512)
        # ceil(length / dt0), up to how a ratio within rounding of an integer is snapped.
        ratio = length / dt0
        assert int(sol.stats["num_steps"]) in {int(np.ceil(ratio - 1e-6)), int(np.ceil(ratio + 1e-6))}
        assert float(sol.ts[-1]) == t1
        h = min(dt0, length)
        np.testing.assert_allclose(sol.ys[-1], np.exp(-rate * length), rtol=20 * (abs(rate) * h) ** 4 + 1e-12)


@settings(max_examples=20, deadline=None)
@given(t0=st.floats(-3.0, 3.0), length=st.floats(0.1, 2.0), rtol=st.sampled_from([1e-6, 1e-8, 1e-10]))
def test_backward_solve_inverts_forward_solve(t0, length, rtol):
    with jax.enable_x64(True):
        field = PENDULUM
        controller = sk.PID(rtol=rtol, atol=rtol)
        y0 = jnp.array([0.4, -0.2])
        forward = sk.solve(field, sk.solvers.dopri8(), t0, t0 + length, y0, controller=controller)
        back = sk.solve(field, sk.solvers.dopri8(), t0 + length, t0, forward.ys[-1], controller=controller)
        np.testing.assert_allclose(back.ys[-1], y0, atol=100 * rtol)
