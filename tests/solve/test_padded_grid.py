"""Padded fixed grids (`sk.StepTo(ts, padded=True)`): repeated times are skipped steps, so grids of
different step counts share one compiled solve and give what the unpadded grid gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


def decay(t, y, args):
    return -args * y


def _with_repeats(grid, at=(3, 4, 4)):
    """`grid` with interior times repeated and five copies of its end appended."""
    return jnp.sort(jnp.concatenate([grid, grid[jnp.asarray(at)], jnp.full(5, grid[-1])]))


@pytest.mark.parametrize("solver", [sk.solvers.tsit5(), sk.solvers.kvaerno3()], ids=["tsit5", "kvaerno3"])
def test_a_padded_grid_solves_as_the_unpadded_grid(dtype, solver):
    grid = jnp.linspace(0.0, 2.0, 9, dtype=dtype)
    save = jnp.asarray([0.0, 0.25, 0.3, 0.75, 1.1, 2.0], dtype)
    kwargs = dict(args=jnp.asarray(1.5, dtype), saveat=sk.SaveAt(ts=save, steps=True, dense=True))
    plain = sk.solve(sk.ODE(decay), solver, 0.0, 2.0, jnp.ones(2, dtype), controller=sk.StepTo(grid), **kwargs)
    padded = sk.solve(sk.ODE(decay), solver, 0.0, 2.0, jnp.ones(2, dtype),
                      controller=sk.StepTo(_with_repeats(grid), padded=True), **kwargs)
    tol = 1e-6 if dtype == jnp.float32 else 1e-14
    np.testing.assert_allclose(padded.ys[:6], plain.ys[:6], rtol=tol, atol=tol)
    for t in (0.0, 0.3, 0.75, 1.0, 1.99, 2.0):
        np.testing.assert_allclose(padded.evaluate(t), plain.evaluate(t), rtol=tol, atol=tol)
    for name in ("num_steps", "num_accepted_steps", "num_fevals"):
        assert int(padded.stats[name]) == int(plain.stats[name]), name
    # Saved steps: the steps taken, in order, with the skipped ones as inf times and NaN values.
    steps_ts, steps_ys = padded.ts[6:], padded.ys[6:]
    taken = np.isfinite(np.asarray(steps_ts))
    assert taken.sum() == 8 and np.all(np.isnan(np.asarray(steps_ys)[~taken]))
    np.testing.assert_allclose(np.asarray(steps_ts)[taken], grid[1:], rtol=tol)
    np.testing.assert_allclose(np.asarray(steps_ys)[taken], plain.ys[6:], rtol=tol, atol=tol)


def test_one_compilation_serves_every_step_count(x64):
    traces = []

    @jax.jit
    def final(ts, rate):
        traces.append(None)
        sol = sk.solve(sk.ODE(decay), sk.solvers.heun(), 0.0, 1.0, 1.0, args=rate, controller=sk.StepTo(ts, padded=True))
        return sol.ys[-1], sol.stats["num_steps"]

    errors = []
    for n in (8, 16, 32, 64):
        y1, num_steps = final(sk.StepTo.pad(jnp.linspace(0.0, 1.0, n + 1), 64).ts, 1.0)
        assert int(num_steps) == n
        errors.append(abs(float(y1) - np.exp(-1.0)))
    assert len(traces) == 1
    # Each count really took its own steps: Heun's error falls as h^2.
    slope = np.polyfit(np.log([8, 16, 32, 64]), np.log(errors), 1)[0]
    assert -2.1 < slope < -1.9


def test_per_lane_padded_grids_under_vmap(x64):
    grids = jnp.stack([sk.StepTo.pad(jnp.linspace(0.0, 1.0, n + 1), 16).ts for n in (5, 16)])

    def final(ts):
        return sk.solve(sk.ODE(decay), sk.solvers.rk4(), 0.0, 1.0, 1.0, args=1.0,
                        controller=sk.StepTo(ts, padded=True)).ys[-1]

    lanes = jax.vmap(final)(grids)
    alone = [sk.solve(sk.ODE(decay), sk.solvers.rk4(), 0.0, 1.0, 1.0, args=1.0,
                      controller=sk.StepTo(jnp.linspace(0.0, 1.0, n + 1))).ys[-1] for n in (5, 16)]
    np.testing.assert_allclose(lanes, alone, rtol=1e-14)
    assert abs(float(alone[0]) - float(alone[1])) > 1e-6  # the lanes did take different steps


@pytest.mark.parametrize("adjoint", [sk.adjoint.Checkpointed(), sk.adjoint.Backsolve()], ids=["checkpointed", "backsolve"])
def test_sde_noise_and_gradients_on_a_padded_grid(x64, adjoint):
    sde = sk.SDE(lambda t, y, a: -a * y, lambda t, y, a: 0.5 * y, noise="diagonal", calculus="stratonovich")
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(3,), tol=2**-12, levy="space-time")
    grid = jnp.linspace(0.0, 1.0, 17)

    def final(rate, controller):
        return jnp.sum(sk.solve(sde, sk.solvers.spark(), 0.0, 1.0, jnp.ones(3), args=rate, brownian=tree,
                                controller=controller, adjoint=adjoint).ys[-1])

    plain, padded = sk.StepTo(grid), sk.StepTo(_with_repeats(grid), padded=True)
    np.testing.assert_allclose(final(1.3, padded), final(1.3, plain), rtol=1e-13)
    grad = jax.grad(final)(1.3, padded)
    np.testing.assert_allclose(grad, jax.grad(final)(1.3, plain), rtol=1e-10)
    fd = (final(1.3 + 1e-6, padded) - final(1.3 - 1e-6, padded)) / 2e-6
    # Backsolve's gradient solves the adjoint SDE numerically: close to, not equal to, the discrete one.
    np.testing.assert_allclose(grad, fd, rtol=1e-6 if isinstance(adjoint, sk.adjoint.Checkpointed) else 2e-2)


def test_an_event_on_a_padded_grid(x64):
    event = sk.Event(lambda t, y, args: y - 0.5, terminate=True)
    grid = jnp.linspace(0.0, 2.0, 41)
    kwargs = dict(args=1.0, event=event, saveat=sk.SaveAt(t1=True))
    plain = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 2.0, 1.0, controller=sk.StepTo(grid), **kwargs)
    padded = sk.solve(sk.ODE(decay), sk.solvers.tsit5(), 0.0, 2.0, 1.0,
                      controller=sk.StepTo(_with_repeats(grid, at=(20, 21, 21)), padded=True), **kwargs)
    np.testing.assert_allclose(padded.t_event, np.log(2.0), rtol=1e-10)
    np.testing.assert_allclose(padded.t_event, plain.t_event, rtol=1e-14)
    np.testing.assert_allclose(padded.ys, plain.ys, rtol=1e-14)


def test_bad_padded_grids():
    problem, solver = sk.ODE(decay), sk.solvers.heun()
    with pytest.raises(ValueError, match="strictly monotonic.*padded=True"):
        sk.solve(problem, solver, 0.0, 1.0, 1.0, args=1.0, controller=sk.StepTo(jnp.array([0.0, 0.5, 0.5, 1.0])))
    with pytest.raises(ValueError, match="padded=True. must be monotonic"):
        sk.solve(problem, solver, 0.0, 1.0, 1.0, args=1.0,
                 controller=sk.StepTo(jnp.array([0.0, 0.6, 0.5, 1.0]), padded=True))
    with pytest.raises(ValueError, match="num_steps must be an int of at least the grid's 4 steps"):
        sk.StepTo.pad(jnp.linspace(0.0, 1.0, 5), 3)
    with pytest.raises(sk.SolveError, match="padded=True. must be monotonic"):  # a traced grid
        jax.vmap(lambda ts: sk.solve(problem, solver, 0.0, 1.0, 1.0, args=1.0, controller=sk.StepTo(ts, padded=True)).ys)(
            jnp.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.6, 0.5, 1.0]]))
    # Repeated times do not hide a step finer than the Brownian tree's tol.
    sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 1.0, noise="additive")
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=0.01)
    with pytest.raises(ValueError, match="smaller than the Brownian tree's tol"):
        sk.solve(sde, sk.solvers.euler_maruyama(), 0.0, 1.0, 1.0, brownian=tree,
                 controller=sk.StepTo(jnp.array([0.0, 0.5, 0.505, 1.0, 1.0]), padded=True))
