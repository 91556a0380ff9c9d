"""The solve loop: saving, backward time, pytrees, grids, jumps, results, vmap/jit, dtypes."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


def decay(t, y, args):
    return -y


def exp_decay(t0, y0, t):
    return y0 * np.exp(-(t - t0))


def test_saveat_order_and_values(dtype):
    ts = jnp.linspace(0.2, 1.8, 5, dtype=dtype)
    sol = sk.solve(
        sk.ODE(decay), sk.solvers.tsit5(), 0.0, 2.0, jnp.ones(3, dtype),
        controller=sk.PID(rtol=1e-6, atol=1e-8), saveat=sk.SaveAt(t0=True, ts=ts, t1=True),
    )
    assert sol.ts.dtype == dtype and sol.ys.dtype == dtype
    expected_ts = np.concatenate([[0.0], np.asarray(ts), [2.0]])
    np.testing.assert_allclose(sol.ts, expected_ts, rtol=1e-6)
    tol = 1e-5 if dtype == jnp.float32 else 1e-6
    np.testing.assert_allclose(sol.ys[:, 0], np.exp(-expected_ts), rtol=tol)


def test_saveat_steps_and_dense(x64):
    sol = sk.solve(
        sk.ODE(decay), sk.solvers.dopri5(), 0.0, 3.0, jnp.array(2.0),
        controller=sk.PID(rtol=1e-8, atol=1e-10), saveat=sk.SaveAt(steps=True, dense=True), max_steps=64,
    )
    n = int(sol.stats["num_accepted_steps"])
    ts, ys = np.asarray(sol.ts), np.asarray(sol.ys)
    assert np.all(np.isfinite(ts[:n])) and np.all(np.isinf(ts[n:])) and np.all(np.isnan(ys[n:]))
    assert ts[n - 1] == 3.0 and np.all(np.diff(ts[:n]) > 0)
    np.testing.assert_allclose(ys[:n], 2 * np.exp(-ts[:n]), rtol=1e-7)
    query = jnp.linspace(0.0, 3.0, 101)
    np.testing.assert_allclose(jax.vmap(sol.evaluate)(query), 2 * np.exp(-query), rtol=1e-7)
    np.testing.assert_allclose(jax.vmap(sol.derivative)(query), -2 * np.exp(-query), rtol=1e-5)


def test_backward_in_time(x64):
    """y' = -y from t0 = 2 back to t1 = 0: y(t) = y0 exp(2 - t); dense output and saves in t."""
    ts = jnp.array([1.5, 1.0, 0.25])
    sol = sk.solve(
        sk.ODE(decay), sk.solvers.tsit5(), 2.0, 0.0, jnp.array(1.0), dt0=-0.1,
        controller=sk.PID(rtol=1e-9, atol=1e-12), saveat=sk.SaveAt(ts=ts, t1=True, dense=True),
    )
    np.testing.assert_allclose(sol.ts, [1.5, 1.0, 0.25, 0.0])
    np.testing.assert_allclose(sol.ys, np.exp(2 - np.asarray(sol.ts)), rtol=1e-8)
    np.testing.assert_allclose(sol.evaluate(0.7), np.exp(1.3), rtol=1e-8)
    np.testing.assert_allclose(sol.derivative(0.7), -np.exp(1.3), rtol=1e-6)
    # Forward then backward returns to the start.
    forward = sk.solve(sk.ODE(decay), sk.solvers.dopri8(), 0.0, 1.0, jnp.array(1.0), dt0=0.05)
    back = sk.solve(sk.ODE(decay), sk.solvers.dopri8(), 1.0, 0.0, forward.ys[-1], dt0=-0.05)
    np.testing.assert_allclose(back.ys[-1], 1.0, rtol=1e-12)


def test_backward_fixed_grid_and_time_dependence(x64):
    """Non-autonomous field y' = cos(t): the vector field sees the true (decreasing) time."""
    field = sk.ODE(lambda t, y, args: jnp.cos(t) * jnp.ones_like(y))
    grid = jnp.linspace(3.0, 1.0, 41)
    sol = sk.solve(field, sk.solvers.rk4(), 3.0, 1.0, jnp.array(0.0), controller=sk.StepTo(grid))
    np.testing.assert_allclose(sol.ys[-1], np.sin(1.0) - np.sin(3.0), rtol=1e-6)


def test_pytree_state_with_mixed_shapes(dtype):
    y0 = {"position": jnp.ones((2, 3), dtype), "velocity": (jnp.zeros((2, 3), dtype), jnp.array(1.0, dtype))}

    def field(t, y, args):
        v, s = y["velocity"]
        return {"position": v, "velocity": (-args["k"] * y["position"], -s)}

    sol = sk.solve(sk.ODE(field), sk.solvers.tsit5(), 0.0, np.pi, y0, args={"k": 1.0}, controller=sk.PID(rtol=1e-6, atol=1e-8))
    assert sol.ys["position"].shape == (1, 2, 3) and sol.ys["position"].dtype == dtype
    np.testing.assert_allclose(sol.ys["position"][-1], -1.0, atol=1e-4)
    np.testing.assert_allclose(sol.ys["velocity"][1][-1], np.exp(-np.pi), rtol=1e-4)


def test_step_to_grid_matches_constant_step(x64):
    grid = jnp.linspace(0.0, 1.0, 21)
    a = sk.solve(sk.ODE(decay), sk.solvers.rk4(), 0.0, 1.0, jnp.array(1.0), controller=sk.StepTo(grid), saveat=sk.SaveAt(steps=True))
    b = sk.solve(sk.ODE(decay), sk.solvers.rk4(), 0.0, 1.0, jnp.array(1.0), dt0=0.05, saveat=sk.SaveAt(steps=True), max_steps=20)
    np.testing.assert_allclose(a.ts, b.ts, rtol=1e-14)
    np.testing.assert_allclose(a.ys, b.ys, rtol=1e-13)
    assert int(a.stats["num_steps"]) == int(b.stats["num_steps"]) == 20
    assert int(a.stats["num_fevals"]) == int(b.stats["num_fevals"]) == 80


def test_constant_step_count_and_last_step_shortened(x64):
    sol = sk.solve(sk.ODE(decay), sk.solvers.euler(), 0.0, 1.0, jnp.array(1.0), dt0=0.3, saveat=sk.SaveAt(steps=True), max_steps=8)
    assert int(sol.stats["num_steps"]) == 4
    np.testing.assert_allclose(sol.ts[:4], [0.3, 0.6, 0.9, 1.0], rtol=1e-14)
    np.testing.assert_allclose(sol.ys[3], 0.7**3 * 0.9, rtol=1e-14)


def test_fevals_counted(x64):
    sol = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), controller=sk.PID(rtol=1e-6, atol=1e-9))
    steps = int(sol.stats["num_steps"])
    # FSAL: 1 evaluation in init + 6 per step, plus 2 for the automatic initial step.
    assert int(sol.stats["num_fevals"]) == 1 + 6 * steps + 2
    calls = []

    def counting(t, y, args):
        jax.debug.callback(lambda: calls.append(1))
        return -y

    sol = sk.solve(sk.ODE(counting), sk.solvers.rk4(), 0.0, 1.0, jnp.array(1.0), dt0=0.1)
    jax.effects_barrier()
    assert len(calls) == int(sol.stats["num_fevals"]) == 40


def test_jump_ts_discontinuous_forcing(x64):
    """y' = 1 for t < 1, 0 after: stepping to the jump gives the exact answer y(2) = 1."""
    field = sk.ODE(lambda t, y, args: jnp.where(t < 1.0, 1.0, 0.0) * jnp.ones_like(y))
    controller = sk.PID(rtol=1e-8, atol=1e-8, jump_ts=jnp.array([1.0]))
    sol = sk.solve(field, sk.solvers.tsit5(), 0.0, 2.0, jnp.array(0.0), dt0=0.3, controller=controller, saveat=sk.SaveAt(steps=True), max_steps=64)
    np.testing.assert_allclose(sol.ys[int(sol.stats["num_accepted_steps"]) - 1], 1.0, rtol=1e-12)
    # The step ends one ulp before the jump, so no stage evaluates the far side of it.
    assert np.any(np.asarray(sol.ts) == np.nextafter(1.0, 0.0))
    without = sk.solve(field, sk.solvers.tsit5(), 0.0, 2.0, jnp.array(0.0), dt0=0.3, controller=sk.PID(rtol=1e-8, atol=1e-8))
    assert int(without.stats["num_rejected_steps"]) > int(sol.stats["num_rejected_steps"])


def test_step_ts_are_hit(x64):
    marks = jnp.array([0.1234, 0.5, 0.987])
    sol = sk.solve(
        sk.ODE(decay), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=0.4,
        controller=sk.PID(rtol=1e-3, atol=1e-6, step_ts=marks), saveat=sk.SaveAt(steps=True), max_steps=32,
    )
    for mark in np.asarray(marks):
        assert np.any(np.asarray(sol.ts) == mark)


def test_pid_gains_and_dt_bounds(x64):
    kwargs = dict(rtol=1e-6, atol=1e-9)
    classic = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 10.0, jnp.array(1.0), controller=sk.PID(**kwargs))
    pid = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 10.0, jnp.array(1.0), controller=sk.PID(**kwargs, pcoeff=0.2, icoeff=0.4))
    assert int(classic.stats["num_steps"]) != int(pid.stats["num_steps"])
    np.testing.assert_allclose(pid.ys[-1], np.exp(-10.0), rtol=1e-5)
    capped = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 10.0, jnp.array(1.0), controller=sk.PID(**kwargs, dtmax=0.05), saveat=sk.SaveAt(steps=True), max_steps=512)
    n = int(capped.stats["num_accepted_steps"])
    assert n >= 200 and np.max(np.diff(np.concatenate([[0.0], np.asarray(capped.ts[:n])]))) <= 0.05 + 1e-12


def test_predictive_pid_bounds_growth_by_gustafsson_and_after_rejections(x64):
    """`predictive=True`: the growth after an accepted step is at most Gustafsson's
    safety r^(-1/k) (h / h_prev)(r_prev / r)^(1/k) (so a rising error slows it; a falling one
    leaves the plain factor), and a step right after a rejection does not grow."""
    plain, predictive = sk.PID(rtol=1e-6, atol=1e-9), sk.PID(rtol=1e-6, atol=1e-9, predictive=True)
    h, k = jnp.asarray(0.1), 4.0

    def next_h(controller, state, r):
        return float(controller.adapt(state, h, jnp.asarray(r), k)[1])

    rising = predictive.init()._replace(prev_error=jnp.asarray(0.2), prev_h=jnp.asarray(0.1))
    expected = 0.1 * 0.9 * 0.8 ** -0.25 * (0.2 / 0.8) ** 0.25
    np.testing.assert_allclose(next_h(predictive, rising, 0.8), expected, rtol=1e-12)
    np.testing.assert_allclose(next_h(plain, rising, 0.8), 0.1 * 0.9 * 0.8 ** -0.25, rtol=1e-12)
    falling = rising._replace(prev_error=jnp.asarray(0.9))
    assert next_h(predictive, falling, 0.05) == next_h(plain, falling, 0.05) > 0.1
    # A rejection, then a small error: the plain controller grows, the predictive one holds.
    accepted, _, after_rejection = predictive.adapt(rising, h, jnp.asarray(5.0), k)
    assert not bool(accepted) and bool(after_rejection.rejected)
    assert next_h(predictive, after_rejection, 1e-3) == pytest.approx(0.1) and next_h(plain, after_rejection, 1e-3) > 0.5


def test_predictive_pid_rejects_fewer_steps_on_van_der_pol(x64):
    """Van der Pol (mu = 1000) through two relaxation jumps with Radau IIA: the predictive
    controller rejects far fewer steps (scipy's Radau uses it) for about the same accuracy."""
    mu = 1000.0
    field = lambda t, y, a: jnp.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])  # noqa: E731
    sols = [sk.solve(sk.ODE(field), sk.solvers.radau5(), 0.0, 1200.0, jnp.array([2.0, 0.0]),
                     controller=sk.PID(rtol=1e-4, atol=1e-6, predictive=p), max_steps=4096) for p in (False, True)]
    plain, predictive = (int(s.stats["num_rejected_steps"]) for s in sols)
    assert 3 * predictive < plain, (plain, predictive)
    np.testing.assert_allclose(sols[1].ys[-1], sols[0].ys[-1], rtol=1e-2, atol=1e-3)


def test_result_max_steps(x64):
    sol = sk.solve(sk.ODE(decay), sk.solvers.euler(), 0.0, 1.0, jnp.array(1.0), dt0=0.01, max_steps=10, throw=False)
    assert int(sol.result) == sk.RESULTS.max_steps_reached
    with pytest.raises(RuntimeError, match="maximum number of solver steps"):
        sk.solve(sk.ODE(decay), sk.solvers.euler(), 0.0, 1.0, jnp.array(1.0), dt0=0.01, max_steps=10)


def test_result_dt_min(x64):
    stiff = sk.ODE(lambda t, y, args: -1e6 * (y - jnp.cos(t)))
    sol = sk.solve(stiff, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(0.0), controller=sk.PID(rtol=1e-10, atol=1e-10, dtmin=1e-3), throw=False)
    assert int(sol.result) == sk.RESULTS.dt_min_reached
    with pytest.raises(RuntimeError, match="dtmin"):
        sk.solve(stiff, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(0.0), controller=sk.PID(rtol=1e-10, atol=1e-10, dtmin=1e-3))


def test_force_dtmin_accepts_steps_at_dtmin(x64):
    """A tolerance the solve cannot meet at dtmin: reported, or (force_dtmin) stepped through at
    dtmin, each such step accepted with its error above the tolerance."""
    wave = sk.ODE(lambda t, y, args: jnp.cos(10.0 * t))
    tight = dict(rtol=1e-13, atol=1e-13, dtmin=0.01)
    sol = sk.solve(wave, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(0.0), controller=sk.PID(**tight), throw=False)
    assert int(sol.result) == sk.RESULTS.dt_min_reached
    forced = sk.solve(wave, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(0.0), controller=sk.PID(**tight, force_dtmin=True))
    assert int(forced.result) == sk.RESULTS.successful
    steps = int(forced.stats["num_accepted_steps"])
    assert 95 <= steps <= 101, steps  # about 1/dtmin steps: all at dtmin but the ends
    error = abs(float(forced.ys[-1]) - np.sin(10.0) / 10.0)
    assert 1e-13 < error < 1e-8, error
    with pytest.raises(ValueError, match="force_dtmin"):
        sk.PID(rtol=1e-3, atol=1e-3, force_dtmin=True)


@pytest.mark.parametrize("adaptive", [False, True])
def test_result_nonfinite(adaptive, x64):
    """Blow-up y' = y^2 (y(t) = 1/(1-t)) and a NaN-producing field are reported, not returned."""
    blowup = sk.ODE(lambda t, y, args: y * y)
    nan_field = sk.ODE(lambda t, y, args: jnp.where(t > 0.5, jnp.nan, 1.0) * jnp.ones_like(y))
    options = dict(controller=sk.PID(rtol=1e-6, atol=1e-6)) if adaptive else dict(dt0=0.01)
    for field in (blowup, nan_field):
        sol = sk.solve(field, sk.solvers.tsit5(), 0.0, 2.0, jnp.array(1.0), throw=False, max_steps=100000, **options)
        assert int(sol.result) in (sk.RESULTS.nonfinite, sk.RESULTS.dt_min_reached)
        assert np.all(np.isfinite(np.asarray(sol.ys)))  # the last good state is kept
    sol = sk.solve(nan_field, sk.solvers.tsit5(), 0.0, 2.0, jnp.array(1.0), throw=False, max_steps=100000, **options)
    assert int(sol.result) == sk.RESULTS.nonfinite
    assert float(sol.ts[-1]) == pytest.approx(0.5, abs=0.02)
    with pytest.raises(RuntimeError, match="non-finite"):
        sk.solve(nan_field, sk.solvers.tsit5(), 0.0, 2.0, jnp.array(1.0), max_steps=100000, **options)


def test_vmap_over_initial_conditions_and_tolerances(x64):
    def solve_one(y0, rtol):
        return sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 1.0, y0, controller=sk.PID(rtol=rtol, atol=1e-12)).ys[-1]

    y0s = jnp.linspace(1.0, 2.0, 4)
    rtols = jnp.array([1e-3, 1e-5, 1e-7, 1e-9])
    out = jax.jit(jax.vmap(solve_one))(y0s, rtols)
    errors = np.abs(np.asarray(out) - np.asarray(y0s) * np.exp(-1.0)) / np.asarray(y0s)
    assert np.all(errors < 10 * np.asarray(rtols))
    assert errors[-1] < errors[0]


def test_throw_under_vmap_and_jit(x64):
    def solve_one(y0):
        return sk.solve(sk.ODE(decay), sk.solvers.euler(), 0.0, 1.0, y0, dt0=0.01, max_steps=50).ys

    with pytest.raises(RuntimeError, match="maximum number of solver steps"):
        jax.block_until_ready(jax.jit(jax.vmap(solve_one))(jnp.ones(3)))


def test_args_equinox_module_vector_field(x64):
    import equinox as eqx

    class Linear(eqx.Module):
        rate: jax.Array

        def __call__(self, t, y, args):
            return -self.rate * y

    sol = sk.solve(sk.ODE(Linear(jnp.array(2.0))), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), controller=sk.PID(rtol=1e-8, atol=1e-10))
    np.testing.assert_allclose(sol.ys[-1], np.exp(-2.0), rtol=1e-7)


def test_args_module_with_non_array_leaves(x64):
    """`args` may be an equinox module holding functions (an MLP's activation), for ODEs and SDEs,
    with gradients flowing to its arrays."""
    import equinox as eqx

    mlp = eqx.nn.MLP(2, 2, 8, 1, activation=jnp.tanh, key=jax.random.key(0))
    f = lambda t, y, m: -y + 0.1 * m(y)  # noqa: E731
    y0 = jnp.array([1.0, -0.5])
    ode = sk.solve(sk.ODE(f), sk.solvers.tsit5(), 0.0, 1.0, y0, args=mlp, dt0=0.1)
    assert np.all(np.isfinite(ode.ys))
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(2,), tol=2**-6)
    sde = sk.SDE(f, lambda t, y, m: 0.1 * jnp.ones_like(y), noise="diagonal")

    def loss(m):
        return jnp.sum(sk.solve(sde, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, args=m, dt0=0.05,
                                brownian=tree).ys[-1] ** 2)

    grads = eqx.filter_grad(loss)(mlp)
    assert float(jnp.sum(jnp.abs(grads.layers[0].weight))) > 0


def test_fixed_grid_is_differentiable(x64):
    """Reverse and forward mode through the scan loop agree with finite differences."""

    def final(rate):
        grid = jnp.linspace(0.0, 1.0, 51)
        return sk.solve(sk.ODE(lambda t, y, k: -k * y), sk.solvers.rk4(), 0.0, 1.0, jnp.array(1.0), args=rate, controller=sk.StepTo(grid)).ys[-1]

    rate = jnp.array(0.7)
    fd = (final(rate + 1e-6) - final(rate - 1e-6)) / 2e-6
    np.testing.assert_allclose(jax.grad(final)(rate), -np.exp(-0.7), rtol=1e-7)
    np.testing.assert_allclose(jax.grad(final)(rate), fd, rtol=1e-6)
    np.testing.assert_allclose(jax.jvp(final, (rate,), (jnp.array(1.0),))[1], fd, rtol=1e-6)


def test_progress_meter(capsys, x64):
    sol = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=0.01, progress=True)
    jax.effects_barrier()
    err = capsys.readouterr().err
    assert "100/100%" in err
    np.testing.assert_allclose(sol.ys[-1], np.exp(-1.0), rtol=1e-8)


def test_adaptive_steps_never_leave_a_last_step_below_dtmin():
    """A step that would leave less than dtmin before t1 stops dtmin short of it instead (for SDEs,
    dtmin >= the tree's tol, below which increments stop being exact in joint law)."""
    sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 1.0, jnp.ones(()), dt0=0.95,
                   controller=sk.PID(rtol=1e-1, atol=1e-1, dtmin=0.1), saveat=sk.SaveAt(steps=True))
    ends = np.asarray(sol.ts)[np.isfinite(np.asarray(sol.ts))]
    steps = np.diff(np.concatenate([[0.0], ends]))
    assert int(sol.result) == 0 and ends[-1] == 1.0
    np.testing.assert_allclose(ends[0], 0.9)  # not 0.95, which would leave 0.05 < dtmin
    assert steps.min() >= 0.1 - 1e-7, steps


class _StateDependentSteps(eqx.Module):
    """A user controller (the single-seed paper's CIR rule, on an ODE): the step allowed is
    c * min(y_n, y_n+1), and after an accepted step the next proposal is c * y_n+1. Its scaled
    error is an array of those two numbers, which `adapt` reads."""

    c: float
    dtmin: float | None = None
    dtmax: float | None = None
    jump_ts: None = None
    step_ts: None = None
    error_order: None = eqx.field(static=True, default=None)
    adaptive = True

    def revisits(self, noise):
        return 0

    def init(self):
        return jnp.zeros(())

    def scaled_error(self, y0, y1, y_error):
        return jnp.stack([self.c * jnp.minimum(y0, y1), self.c * y1])

    def adapt(self, state, h, desired, error_order):
        accept = h <= 1.1 * desired[0]
        return accept, jnp.where(accept, desired[1], desired[0]), state

    def below_dtmin(self, h, accept):
        return jnp.zeros((), bool)


def test_a_user_controller_may_pass_an_array_from_scaled_error_to_adapt(x64):
    """Every accepted step obeys the rule that needs both numbers, rejections happen (the first
    proposal is too long), and the solution is Heun's on those steps (the rule ignores the error
    estimate)."""
    problem = sk.ODE(lambda t, y, a: -y)
    sol = jax.jit(lambda y0: sk.solve(problem, sk.solvers.heun(), 0.0, 2.0, y0, dt0=0.5, max_steps=256,
                                      controller=_StateDependentSteps(0.05), saveat=sk.SaveAt(steps=True)))(jnp.asarray(1.0))
    n = int(sol.stats["num_accepted_steps"])
    ts, ys = np.asarray(sol.ts[:n]), np.asarray(sol.ys[:n])
    starts, y_starts = np.concatenate([[0.0], ts[:-1]]), np.concatenate([[1.0], ys[:-1]])
    h = ts - starts
    assert int(sol.stats["num_rejected_steps"]) >= 1 and sol.result == sk.RESULTS.successful
    # the last step is cut short to end at t1; every other one is within the rule
    assert np.all(h[:-1] <= 1.1 * 0.05 * np.minimum(y_starts, ys)[:-1] * (1 + 1e-12))
    np.testing.assert_allclose(ys, y_starts * (1 - h + h**2 / 2), rtol=1e-12)
