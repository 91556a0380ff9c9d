"""Events (`sk.Event`): event times against closed forms (bouncing ball, oscillator), under vmap
with per-lane times, in every loop (adaptive, constant steps, fixed grids), backwards in time;
what the solution holds after a terminating event; several and non-terminating events; the
root finder's precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from sdekit._solve._bracket import crossed_ends, max_iterations

G = 9.81
TIGHT = dict(controller=sk.PID(rtol=1e-12, atol=1e-12), dt0=0.01)


def fall(t, y, args):
    return jnp.stack([y[1], -args * jnp.ones_like(y[1])])


def oscillator(t, y, w):
    return jnp.stack([y[1], -w**2 * y[0]])


def first_zero(w, x0, u):
    """First zero of x(t) = x0 cos(wt) + (u/w) sin(wt) (x0 > 0): a down-crossing."""
    return (np.pi / 2 + np.arctan2(u, w * x0)) / w


GROUND = sk.Event(lambda t, y, args: y[0], direction=-1)


def bounce_times(h, e, n):
    """Closed form: the first `n` times a ball dropped from `h` hits the ground, each bounce
    keeping a fraction `e` of the speed."""
    v = np.sqrt(2 * G * h)
    times = [v / G]
    for k in range(1, n):
        times.append(times[-1] + 2 * e**k * v / G)
    return np.asarray(times)


def test_bouncing_ball_times_exact_under_vmap(x64):
    """Each lane's bounce times to 1e-10 of the closed form: chained solves, each stopped by the
    ground event, the velocity reflected (the ground state x = 0 at restart does not fire)."""
    e = 0.8
    heights = jnp.array([0.5, 1.0, 2.0, 7.5])

    def bounce(carry, _):
        t, y = carry
        sol = sk.solve(sk.ODE(fall), sk.solvers.tsit5(), t, t + 10.0, y, jnp.asarray(G), event=GROUND, **TIGHT)
        t, y = sol.ts[-1], sol.ys[-1]
        return (t, jnp.stack([y[0], -e * y[1]])), (t, sol.event_mask)

    def bounces(h):
        return jax.lax.scan(bounce, (jnp.zeros(()), jnp.stack([h, jnp.zeros(())])), length=3)[1]

    times, mask = jax.jit(jax.vmap(bounces))(heights)
    expected = np.stack([bounce_times(float(h), e, 3) for h in heights])
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-10)
    assert mask.shape == (4, 3) and bool(jnp.all(mask))
    assert len(set(np.asarray(times[:, 0]).tolist())) == 4  # per-lane times


@pytest.mark.parametrize("loop", ["adaptive", "constant", "grid"])
def test_oscillator_event_time_in_every_loop(x64, loop):
    """A non-polynomial solution: the first zero of x(t) to 1e-10 (adaptive, dopri8's accurate
    interpolant) or to the method's accuracy (fixed steps of rk4: constant steps in the while
    loop, a StepTo grid in the scan), per lane under jit and vmap."""
    ws = jnp.array([0.7, 1.3, 2.1])
    y0 = jnp.array([1.0, 0.4])
    expected = first_zero(np.asarray(ws), 1.0, 0.4)
    if loop == "adaptive":
        solver, kwargs, tol = sk.solvers.dopri8(), TIGHT, 1e-10
    elif loop == "grid":
        solver, kwargs, tol = sk.solvers.rk4(), dict(controller=sk.StepTo(jnp.linspace(0.0, 4.0, 801))), 1e-8
    else:
        # A traced dt0 keeps constant steps in the while loop under jit.
        solver, kwargs, tol = sk.solvers.rk4(), dict(dt0=jnp.asarray(0.005)), 1e-8

    def zero(w):
        return sk.solve(sk.ODE(oscillator), solver, 0.0, 4.0, y0, w, event=GROUND, **kwargs).ts[-1]

    np.testing.assert_allclose(jax.jit(jax.vmap(zero))(ws), expected, rtol=0, atol=tol)


def test_directions_non_terminating_events_and_backward_time(x64):
    """x = cos t: down-crossing at pi/2, up-crossing at 3pi/2. Non-terminating events record
    their first crossing in their direction and the solve goes on to t1; backwards from 2pi
    the first crossing met is 3pi/2."""
    y0 = jnp.array([1.0, 0.0])
    x = lambda t, y, a: y[0]  # noqa: E731
    events = sk.Event([x, x, x], terminate=False, direction=[None, -1, 1])
    sol = sk.solve(sk.ODE(oscillator), sk.solvers.dopri8(), 0.0, 6.0, y0, jnp.array(1.0), event=events, **TIGHT)
    assert float(sol.ts[-1]) == 6.0 and all(bool(m) for m in sol.event_mask)
    np.testing.assert_allclose(sol.t_event, [np.pi / 2, np.pi / 2, 3 * np.pi / 2], rtol=0, atol=1e-10)
    backward = sk.solve(sk.ODE(oscillator), sk.solvers.dopri8(), 2 * np.pi, 0.0, y0, jnp.array(1.0),
                        event=sk.Event(x), controller=sk.PID(rtol=1e-12, atol=1e-12), dt0=-0.01)
    assert abs(float(backward.ts[-1]) - 3 * np.pi / 2) < 1e-10 and float(backward.ys[-1, 0]) <= 0


def test_saves_after_a_terminating_event(x64):
    """SaveAt(ts): values up to the event, NaN after (times kept); SaveAt(t1) is the event;
    steps end with it; dense output is refused (throw=False: NaN) past it."""
    ts = jnp.linspace(0.0, 3.0, 13)
    t_star = np.pi / 2
    sol = sk.solve(sk.ODE(oscillator), sk.solvers.dopri5(), 0.0, 3.0, jnp.array([1.0, 0.0]), jnp.array(1.0),
                   event=GROUND, controller=sk.PID(rtol=1e-10, atol=1e-10), dt0=0.1, throw=False,
                   saveat=sk.SaveAt(t0=True, ts=ts, steps=True, t1=True, dense=True), max_steps=64)
    assert int(sol.result) == int(sk.RESULTS.successful)
    np.testing.assert_array_equal(sol.ts[1:14], ts)
    before = np.asarray(ts) <= t_star
    np.testing.assert_allclose(sol.ys[1:14][before, 0], np.cos(np.asarray(ts)[before]), atol=1e-8)
    assert np.all(np.isnan(np.asarray(sol.ys[1:14])[~before]))
    steps_ts = np.asarray(sol.ts[14:-1])
    n = int(sol.stats["num_accepted_steps"])
    assert steps_ts[n - 1] == sol.ts[-1] and np.all(np.isinf(steps_ts[n:]))
    np.testing.assert_array_equal(sol.ys[14 + n - 1], sol.ys[-1])
    assert abs(float(sol.ts[-1]) - t_star) < 1e-9 and abs(float(sol.t_event) - float(sol.ts[-1])) == 0
    assert float(sol.ys[-1, 0]) <= 0 and abs(float(sol.ys[-1, 0])) < 1e-14
    np.testing.assert_allclose(sol.evaluate(1.0), [np.cos(1.0), -np.sin(1.0)], atol=1e-8)
    assert np.all(np.isnan(np.asarray(sol.evaluate(t_star + 0.05))))


def test_several_events_and_non_terminating_ones(dtype):
    """x = cos t, v = -sin t: the earliest terminating crossing stops the solve; a
    non-terminating one records its first crossing (before the stop) and the solve goes on; a
    boolean condition fires where it becomes true; a later terminating one does not fire."""
    events = sk.Event(
        {"x": lambda t, y, a: y[0], "v": lambda t, y, a: y[1] + 0.5, "late": lambda t, y, a: t > 2.5,
         "never": lambda t, y, a: y[0] - 2.0, "after": lambda t, y, a: t - 2.9},
        terminate={"x": False, "v": False, "late": True, "never": False, "after": True},
    )
    sol = sk.solve(sk.ODE(oscillator), sk.solvers.dopri5(), 0.0, 5.0, jnp.array([1.0, 0.0], dtype),
                   jnp.asarray(1.0, dtype), event=events, controller=sk.PID(rtol=1e-7, atol=1e-7), dt0=0.1)
    mask = {k: bool(v) for k, v in sol.event_mask.items()}
    assert mask == {"x": True, "v": True, "late": True, "never": False, "after": False}
    tol = 1e-5 if dtype == jnp.float32 else 1e-7
    np.testing.assert_allclose([sol.t_event["x"], sol.t_event["v"], sol.t_event["late"], sol.ts[-1]],
                               [np.pi / 2, np.pi / 6, 2.5, 2.5], atol=tol)
    assert float(sol.t_event["late"]) > 2.5  # the first time the boolean holds
    assert np.isnan(float(sol.t_event["never"])) and np.isnan(float(sol.t_event["after"]))
    assert sol.t_event["x"].dtype == dtype and sol.event_mask["x"].dtype == jnp.bool_


def test_sde_event_on_the_discretised_path(x64):
    """SDE steps' dense output is linear: the event time is the root of the linear interpolant
    between the grid points where the condition changed sign."""
    bm = sk.SDE(lambda t, y, a: jnp.zeros_like(y), lambda t, y, a: jnp.ones_like(y), noise="additive")
    grid = jnp.linspace(0.0, 1.0, 65)
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(), tol=2.0**-10)
    event = sk.Event(lambda t, y, a: y - 0.5, direction=1)
    sol = sk.solve(bm, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.zeros(()), controller=sk.StepTo(grid),
                   brownian=tree, event=event)
    path = np.asarray(jax.jit(jax.vmap(tree.evaluate))(grid))
    k = int(np.argmax(path >= 0.5))
    assert k > 0 and bool(sol.event_mask)
    root = grid[k - 1] + (0.5 - path[k - 1]) / (path[k] - path[k - 1]) * (grid[k] - grid[k - 1])
    assert abs(float(sol.ts[-1]) - float(root)) < 1e-12 and abs(float(sol.ys[-1]) - 0.5) < 1e-12


def test_root_finder_reaches_a_few_ulps(x64):
    """Illinois then bisection: awkward brackets (a flat cubic, a kink, a steep exponential, a
    boolean) shrink to a few ulps within the iteration bound."""
    fns = [lambda x: (x - 0.3) ** 3, lambda x: jnp.where(x < 0.7, -1e-3, 1.0) * jnp.abs(x - 0.7),
           lambda x: jnp.exp(40 * (x - 0.55)) - 1, lambda x: jnp.where(x > 0.123, 1.0, -1.0)]
    roots = np.array([0.3, 0.7, 0.55, 0.123])

    def all_at(x):
        return jnp.stack([f(x[k]) for k, f in enumerate(fns)])

    a, b = jnp.zeros(4), jnp.ones(4)
    got = crossed_ends(all_at, a, b, all_at(a), all_at(b), jnp.ones(4, bool), jnp.array([False, False, False, True]))
    np.testing.assert_allclose(got, roots, rtol=0, atol=8 * np.finfo(np.float64).eps)
    assert np.all(np.asarray(all_at(got)) >= 0)  # the crossed side
    assert max_iterations(jnp.float64) < 100
