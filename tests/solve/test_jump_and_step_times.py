"""`PID(jump_ts=..., step_ts=...)` forwards and backwards in time, at and near the ends."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


def _steps(sol):
    ts = np.asarray(sol.ts)
    return ts[np.isfinite(ts)]


def test_step_ts_are_landed_on_backwards_in_time(x64):
    sol = sk.solve(sk.ODE(lambda t, y, a: -0.2 * y), sk.solvers.dopri5(), 5.0, 0.0, jnp.array(1.0),
                   controller=sk.PID(rtol=1e-4, atol=1e-6, step_ts=jnp.array([3.0, 4.0])), saveat=sk.SaveAt(steps=True))
    ends = _steps(sol)
    assert 3.0 in ends and 4.0 in ends, ends
    assert np.all(np.diff(ends) < 0) and ends[-1] == 0.0


def _switching(t, y, args):
    # Smooth on each side of 2.5, discontinuous across it.
    return jnp.where(t < 2.5, -y, 3.0 * y)


@pytest.mark.parametrize("t0, t1", [(2.5, 0.0), (2.5, 5.0)])
def test_a_jump_at_t0_uses_the_side_the_solve_runs_into(x64, t0, t1):
    sol = sk.solve(sk.ODE(_switching), sk.solvers.dopri5(), t0, t1, jnp.array(1.0),
                   controller=sk.PID(rtol=1e-8, atol=1e-8, jump_ts=jnp.array([2.5])))
    np.testing.assert_allclose(sol.ys[-1], np.exp(2.5) if t1 < t0 else np.exp(7.5), rtol=1e-6)


@pytest.mark.parametrize("t0, t1", [(0.0, 5.0), (5.0, 0.0)])
def test_jump_ts_restart_at_the_discontinuity_in_both_directions(x64, t0, t1):
    def solve(jump_ts):
        return sk.solve(sk.ODE(_switching), sk.solvers.dopri5(), t0, t1, jnp.array(1.0),
                        controller=sk.PID(rtol=1e-6, atol=1e-6, jump_ts=jump_ts))

    with_jump, without = solve(jnp.array([2.5])), solve(None)
    # Told of the jump, the controller does not shrink its steps to resolve it (rejections).
    assert int(with_jump.stats["num_rejected_steps"]) <= 1 < int(without.stats["num_rejected_steps"])
    assert int(with_jump.stats["num_steps"]) < int(without.stats["num_steps"])
    exact = np.exp(-2.5) * np.exp(3 * 2.5) if t1 > t0 else np.exp(-3 * 2.5) * np.exp(2.5)
    np.testing.assert_allclose(with_jump.ys[-1], exact, rtol=1e-3)  # the wrong side: 10%


def test_a_jump_at_t1_saves_the_value_at_t1(dtype):
    sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0, dtype),
                   controller=sk.PID(rtol=1e-6, atol=1e-6, jump_ts=jnp.array([1.0])),
                   saveat=sk.SaveAt(ts=jnp.array([0.5, 1.0]), t1=True))
    assert np.all(np.isfinite(sol.ys)), sol.ys
    np.testing.assert_allclose(sol.ys, np.exp(-np.array([0.5, 1.0, 1.0])), rtol=1e-4)


@pytest.mark.parametrize("t0", [float(np.nextafter(0.98, -np.inf)), 0.98])
def test_starting_at_or_one_ulp_before_a_jump(x64, t0):
    sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), t0, 2.0, jnp.array(1.0),
                   controller=sk.PID(rtol=1e-8, atol=1e-8, jump_ts=jnp.array([0.98])))
    assert int(sol.result) == int(sk.RESULTS.successful)
    np.testing.assert_allclose(sol.ys[-1], np.exp(-(2.0 - t0)), rtol=1e-7)


def test_float32_times_with_float64_jump_ts_under_strict_promotion(x64):
    sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), jnp.float32(0.0), jnp.float32(1.0),
                   jnp.array(1.0, jnp.float32), controller=sk.PID(rtol=1e-4, atol=1e-6, jump_ts=jnp.array([0.5]),
                                                                  step_ts=jnp.array([0.25])))
    np.testing.assert_allclose(sol.ys[-1], np.exp(-1.0), rtol=1e-4)
