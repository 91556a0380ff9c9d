"""Implicit solvers on stiff problems: against diffrax, Jacobian reuse, user Jacobians and GMRES,
failures as result codes (never NaN states), float32, vmap, backwards in time and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


def robertson(t, y, args):
    a, b, c = y
    return jnp.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b**2, 3e7 * b**2])


Y0 = np.array([1.0, 0.0, 0.0])  # made an array inside each test, in its dtype
# scipy solve_ivp(Radau, rtol=1e-12, atol=1e-18) at t = 100 (the benchmark's tight reference);
# sdekit's kvaerno5 and radau5 at rtol 1e-12 agree to 1e-15 relative.
ROBERTSON_100 = np.array([6.172348823960897e-01, 6.153591274639151e-06, 3.827589640126373e-01])


@pytest.mark.slow
def test_kvaerno5_matches_diffrax_on_robertson(x64):
    diffrax = pytest.importorskip("diffrax")
    ours = sk.solve(sk.ODE(robertson), sk.solvers.kvaerno5(), 0.0, 100.0, jnp.asarray(Y0), controller=sk.PID(rtol=1e-8, atol=1e-12),
                    max_steps=20000)
    theirs = diffrax.diffeqsolve(diffrax.ODETerm(robertson), diffrax.Kvaerno5(), 0.0, 100.0, None, jnp.asarray(Y0),
                                 stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-12), max_steps=20000)
    np.testing.assert_allclose(ours.ys[-1], theirs.ys[-1], rtol=2e-6, atol=1e-12)
    np.testing.assert_allclose(ours.ys[-1], ROBERTSON_100, rtol=2e-6, atol=1e-12)


def test_jacobian_reused_across_steps_and_user_jacobian(x64):
    calls = []

    def jacobian(t, y, args):
        jax.debug.callback(lambda: calls.append(1))
        return jax.jacfwd(lambda z: robertson(t, z, args))(y)

    controller = sk.PID(rtol=1e-6, atol=1e-10)
    user = sk.solve(sk.ODE(robertson), sk.solvers.kvaerno3(jacobian=jacobian), 0.0, 100.0, jnp.asarray(Y0), controller=controller)
    auto = sk.solve(sk.ODE(robertson), sk.solvers.kvaerno3(), 0.0, 100.0, jnp.asarray(Y0), controller=controller)
    np.testing.assert_allclose(user.ys[-1], auto.ys[-1], rtol=1e-12)
    np.testing.assert_allclose(user.ys[-1], ROBERTSON_100, rtol=1e-4, atol=1e-10)
    steps = int(user.stats["num_steps"])
    assert 1 <= len(calls) < steps / 2, (len(calls), steps)
    # The adaptive loop counts every Newton iteration: more evaluations than steps times stages.
    assert int(user.stats["num_fevals"]) >= 3 * steps


def _heat(t, y, args):
    """Reaction (explicit) and diffusion (implicit) on 48 points, Dirichlet ends."""
    n = y.shape[0]
    lap = (jnp.concatenate([y[1:], jnp.zeros(1)]) - 2 * y + jnp.concatenate([jnp.zeros(1), y[:-1]])) * (n + 1) ** 2
    return 0.1 * lap


def _reaction(t, y, args):
    return y * (1 - y)


@pytest.mark.slow
def test_gmres_matches_lu_on_a_split_problem(x64):
    x = jnp.linspace(0, 1, 50)[1:-1]
    y0 = jnp.sin(jnp.pi * x) * 0.5
    problem = sk.ODE(sk.Split(_reaction, _heat))
    controller = sk.PID(rtol=1e-7, atol=1e-9)
    lu = sk.solve(problem, sk.solvers.kencarp4(), 0.0, 0.5, y0, controller=controller)
    gmres = sk.solve(problem, sk.solvers.kencarp4(linear_solver="gmres"), 0.0, 0.5, y0, controller=controller)
    np.testing.assert_allclose(gmres.ys[-1], lu.ys[-1], rtol=1e-6, atol=1e-9)
    # The IMEX split needs far fewer steps than an explicit method on the stiff diffusion.
    explicit = sk.solve(sk.ODE(sk.Split(_reaction, _heat)), sk.solvers.tsit5(), 0.0, 0.5, y0, controller=controller,
                        max_steps=100_000)
    np.testing.assert_allclose(explicit.ys[-1], lu.ys[-1], rtol=1e-5)
    assert int(lu.stats["num_steps"]) * 5 < int(explicit.stats["num_steps"])


@pytest.mark.parametrize("name", ["kvaerno3", "radau5"])
def test_a_state_too_large_for_a_constant_identity(name, x64):
    # 80 unknowns: I - h gamma J takes a computed identity (over
    # CONSTANT_IDENTITY_MAX_ELEMENTS), and the heat equation's first mode decays exactly.
    n = 80
    y0 = jnp.sin(jnp.pi * np.arange(1, n + 1) / (n + 1))
    rate = 0.4 * (n + 1) ** 2 * np.sin(np.pi / (2 * (n + 1))) ** 2
    sol = sk.solve(sk.ODE(_heat), getattr(sk.solvers, name)(), 0.0, 0.5, y0, controller=sk.PID(rtol=1e-8, atol=1e-10))
    np.testing.assert_allclose(sol.ys[-1], np.exp(-0.5 * rate) * y0, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["kvaerno3", "radau5"])
def test_singular_jacobian_gives_a_result_code_not_nan(name, x64):
    bad = getattr(sk.solvers, name)(jacobian=lambda t, y, a: jnp.full((2, 2), jnp.nan))
    problem = sk.ODE(lambda t, y, a: -y)
    sol = sk.solve(problem, bad, 0.0, 1.0, jnp.ones(2), controller=sk.PID(rtol=1e-6, atol=1e-8), throw=False)
    assert int(sol.result) == int(sk.RESULTS.implicit_solve_failed)
    assert np.all(np.isfinite(np.asarray(sol.ys)))
    # Fixed steps: the first step fails; the error names the cause.
    with pytest.raises(sk.SolveError, match="Newton iteration"):
        sk.solve(problem, bad, 0.0, 1.0, jnp.ones(2), dt0=0.1)
    # A fixed grid (the scan loop) names the cause too, not a non-finite state.
    grid = sk.StepTo(jnp.linspace(0.0, 1.0, 11))
    sol = sk.solve(problem, bad, 0.0, 1.0, jnp.ones(2), controller=grid, throw=False)
    assert int(sol.result) == int(sk.RESULTS.implicit_solve_failed)
    assert int(sol.stats["num_accepted_steps"]) == 0


@pytest.mark.parametrize("name", ["kvaerno3", "radau5"])
def test_fixed_grid_counts_the_newton_evaluations_each_step_made(name, x64):
    """The scan loop (StepTo) and the while loop (dt0) take the same ten steps: the same reported
    evaluations, which vary with the Newton iterations (a stiffer problem needs more)."""
    problem = sk.ODE(lambda t, y, a: -a * y * (1.0 + y**2))
    counts = []
    for rate in (1.0, 5.0):
        on_grid = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.ones(2), args=rate,
                           controller=sk.StepTo(jnp.linspace(0.0, 1.0, 11)))
        stepped = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.ones(2), args=rate, dt0=0.1)
        np.testing.assert_allclose(on_grid.ys[-1], stepped.ys[-1], rtol=1e-12)
        assert int(on_grid.stats["num_fevals"]) == int(stepped.stats["num_fevals"])
        counts.append(int(on_grid.stats["num_fevals"]))
    assert counts[1] > counts[0]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="linear_solver"):
        sk.solvers.kvaerno5(linear_solver="qr")
    with pytest.raises(ValueError, match="matrix-free"):
        sk.solvers.kencarp4(jacobian=lambda t, y, a: y, linear_solver="gmres")
    with pytest.raises(TypeError, match="jacobian"):
        sk.solvers.kvaerno3(jacobian=3.0)
    # A user Jacobian of the wrong shape is named, not left to fail deep in the linear algebra.
    for solver in (sk.solvers.kvaerno3(jacobian=lambda t, y, a: jnp.eye(2)), sk.solvers.radau5(jacobian=lambda t, y, a: jnp.eye(2))):
        with pytest.raises(ValueError, match=r"must return an \(3, 3\) array"):
            sk.solve(sk.ODE(lambda t, y, a: -y), solver, 0.0, 1.0, jnp.ones(3), dt0=0.1)


@pytest.mark.parametrize("name", ["kvaerno5", "radau5"])
def test_float32_and_vmap(name):
    # float32 Robertson under vmap over the fast rate; each lane as its own solve.
    def field(t, y, k):
        a, b, c = y
        return jnp.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - k * b**2, k * b**2])

    def solve(k):
        return sk.solve(sk.ODE(field), getattr(sk.solvers, name)(), 0.0, 100.0, jnp.asarray(Y0, jnp.float32), args=k,
                        controller=sk.PID(rtol=1e-4, atol=1e-7)).ys[-1]

    rates = jnp.array([3e7, 1e7], jnp.float32)
    batched = jax.vmap(solve)(rates)
    assert batched.dtype == jnp.float32
    np.testing.assert_allclose(batched[0], ROBERTSON_100, rtol=2e-3, atol=1e-7)
    np.testing.assert_allclose(batched[1], solve(rates[1]), rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_backwards_in_time(x64):
    """t1 < t0: the loop integrates in tau = -t (the field and a split are time-reversed)."""
    field = lambda t, y, a: 50.0 * (y - jnp.cos(t))  # noqa: E731  (stable backwards in time)
    reference = sk.solve(sk.ODE(field), sk.solvers.tsit5(), 1.0, 0.0, jnp.array(1.0),
                         controller=sk.PID(rtol=1e-11, atol=1e-12), max_steps=10_000)
    for problem in (sk.ODE(field), sk.ODE(sk.Split(lambda t, y, a: -50.0 * jnp.cos(t), lambda t, y, a: 50.0 * y))):
        back = sk.solve(problem, sk.solvers.kencarp3(), 1.0, 0.0, jnp.array(1.0), controller=sk.PID(rtol=1e-8, atol=1e-10))
        np.testing.assert_allclose(back.ys[-1], reference.ys[-1], rtol=1e-6)


def _rate_problem(split):
    """A stiff-ish 2-component ODE with the rate `k` as args; `split`: as an IMEX split (the
    rate term implicit)."""
    if split:
        return sk.ODE(sk.Split(lambda t, y, k: jnp.stack([y[1] ** 2, jnp.sin(t)]),
                               lambda t, y, k: jnp.stack([-k * y[0], -0.5 * y[1]])))
    return sk.ODE(lambda t, y, k: jnp.stack([-k * y[0] + y[1] ** 2, -0.5 * y[1] + jnp.sin(t)]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kvaerno3", "kencarp4", "radau5"])
def test_gradient_matches_finite_differences(name, x64):
    """Reverse mode through the solve: stages are differentiated by the implicit function theorem."""

    problem = _rate_problem(split=name == "kencarp4")

    def loss(k):
        sol = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.array([1.0, 0.5]), args=k, dt0=0.05)
        return jnp.sum(sol.ys[-1] ** 2)

    k, e = jnp.asarray(50.0), 1e-4
    fd = (loss(k + e) - loss(k - e)) / (2 * e)
    np.testing.assert_allclose(jax.grad(loss)(k), fd, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kvaerno3", "kencarp4", "radau5"])
def test_forward_mode_on_a_fixed_grid(name, x64):
    """`jax.jvp` goes through the implicit step (its Jacobian retry loop is not differentiated;
    the last attempt is), as through explicit steps on a fixed grid: it failed, the loop being
    a reverse-mode-only checkpointed loop. The tangent equals the reverse-mode gradient and
    central differences."""

    problem = _rate_problem(split=name == "kencarp4")

    def loss(k):
        sol = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.array([1.0, 0.5]), args=k,
                       controller=sk.StepTo(jnp.linspace(0.0, 1.0, 21)))
        return jnp.sum(sol.ys[-1] ** 2)

    k = jnp.asarray(50.0)
    tangent = jax.jvp(loss, (k,), (jnp.ones_like(k),))[1]
    np.testing.assert_allclose(tangent, jax.grad(loss)(k), rtol=1e-10)
    np.testing.assert_allclose(tangent, (loss(k + 1e-4) - loss(k - 1e-4)) / 2e-4, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kvaerno5", "kencarp4"])
def test_vmapped_gradients_through_adaptive_steps(name, x64):
    """Under vmap a lane that has finished still runs the loop's body (a step of length zero,
    discarded): its stages must not put 0/0 into the gradient. It did (k = (z - base) / h),
    and the backward pass stopped in the tangent solve on NaN input. Each lane's gradient
    equals its own solve's and finite differences."""

    problem = _rate_problem(split=name == "kencarp4")

    def loss(k):
        sol = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.array([1.0, 0.5]), args=k,
                       controller=sk.PID(rtol=1e-10, atol=1e-12))
        return jnp.sum(sol.ys[-1] ** 2)

    rates = jnp.array([10.0, 50.0])  # different numbers of steps
    steps = [int(sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 1.0, jnp.array([1.0, 0.5]), args=k,
                          controller=sk.PID(rtol=1e-10, atol=1e-12)).stats["num_steps"]) for k in rates]
    assert steps[0] != steps[1], steps
    batched = jax.vmap(jax.grad(loss))(rates)
    for k, g in zip(rates, batched):
        np.testing.assert_allclose(g, jax.grad(loss)(k), rtol=1e-9)
        np.testing.assert_allclose(g, (loss(k + 1e-4) - loss(k - 1e-4)) / 2e-4, rtol=1e-5)


@pytest.mark.slow
def test_gradient_through_rejected_steps_whose_newton_iteration_overflowed(x64):
    """y' = -k sinh(y) from y = (30, -20) with a first step of 0.5: the Newton iterations of the
    early, too-long steps overflow (16 of 19 failed iterations end non-finite) and those steps
    are rejected. Their stages are discarded, and so are their derivatives: the tangent solve
    of a failed iteration, linearised at its NaN iterate, stopped the backward pass on
    non-finite input. The gradient matches central differences."""

    def loss(k):
        sol = sk.solve(sk.ODE(lambda t, y, k: -k * jnp.sinh(y)), sk.solvers.kvaerno5(), 0.0, 1.0, jnp.array([30.0, -20.0]),
                       args=k, dt0=0.5, controller=sk.PID(rtol=1e-9, atol=1e-14))
        return jnp.sum(sol.ys[-1]), sol.stats["num_rejected_steps"]

    k = jnp.asarray(2.0)
    assert int(loss(k)[1]) >= 15
    fd = (loss(k + 1e-4)[0] - loss(k - 1e-4)[0]) / 2e-4
    np.testing.assert_allclose(jax.grad(lambda k: loss(k)[0])(k), fd, rtol=1e-3)


# ------------------------------------------------------------------------------ Radau IIA


def test_radau5_error_tracks_the_tolerance(x64):
    """Radau IIA's Newton iteration stops at a fraction of the tolerance that shrinks with it
    (Hairer's rule): with a fixed 1e-2, the iteration's error dominated the order-5 solution's
    (4e-10 at rtol 1e-7 here, 3e-9 at rtol 1e-8 on Robertson to t = 1e5). Against the reference
    the error falls with the tolerance and stays well below it."""
    solve = jax.jit(lambda rtol: sk.solve(sk.ODE(robertson), sk.solvers.radau5(), 0.0, 100.0, jnp.asarray(Y0),
                                          controller=sk.PID(rtol=rtol, atol=rtol * 1e-6)).ys[-1])
    errors = [np.max(np.abs(np.asarray(solve(rtol)) - ROBERTSON_100) / ROBERTSON_100) for rtol in (1e-5, 1e-7, 1e-9)]
    assert errors[0] < 1e-6 and errors[1] < 1e-10 and errors[2] < 5e-12, errors


def test_radau5_user_jacobian_and_fewer_evaluations_than_kvaerno5_at_equal_error(x64):
    """A user Jacobian gives the same solve as `jax.jacfwd`'s; and Radau IIA at rtol 1e-6 is as
    accurate as Kvaerno 5 at rtol 1e-9 for under half its evaluations (measured: 6.7e-10 with
    726 against 6.4e-10 with 3261): three coupled stages, about two chord iterations a step, and
    an error far below the order-3 estimate's tolerance."""
    jacobian = lambda t, y, args: jax.jacfwd(lambda z: robertson(t, z, args))(y)  # noqa: E731
    controller = sk.PID(rtol=1e-6, atol=1e-12)
    user = sk.solve(sk.ODE(robertson), sk.solvers.radau5(jacobian=jacobian), 0.0, 100.0, jnp.asarray(Y0), controller=controller)
    radau = sk.solve(sk.ODE(robertson), sk.solvers.radau5(), 0.0, 100.0, jnp.asarray(Y0), controller=controller)
    np.testing.assert_allclose(user.ys[-1], radau.ys[-1], rtol=1e-12)
    esdirk = sk.solve(sk.ODE(robertson), sk.solvers.kvaerno5(), 0.0, 100.0, jnp.asarray(Y0),
                      controller=sk.PID(rtol=1e-9, atol=1e-15), max_steps=10_000)
    error = lambda sol: np.max(np.abs(np.asarray(sol.ys[-1]) - ROBERTSON_100) / ROBERTSON_100)  # noqa: E731
    assert error(radau) < 1.5 * error(esdirk), (error(radau), error(esdirk))
    assert 2 * int(radau.stats["num_fevals"]) < int(esdirk.stats["num_fevals"]), (radau.stats, esdirk.stats)


@pytest.mark.slow
def test_radau5_backwards_in_time_and_dense_output(x64):
    """t1 < t0 (the loop integrates in tau = -t) against a tight explicit solve, and the
    collocation polynomial between steps against the same reference's dense output."""
    field = lambda t, y, a: 50.0 * (y - jnp.cos(t))  # noqa: E731  (stable backwards in time)
    reference = sk.solve(sk.ODE(field), sk.solvers.tsit5(), 1.0, 0.0, jnp.array(1.0),
                         controller=sk.PID(rtol=1e-12, atol=1e-13), max_steps=10_000, saveat=sk.SaveAt(t1=True, dense=True))
    back = sk.solve(sk.ODE(field), sk.solvers.radau5(), 1.0, 0.0, jnp.array(1.0), controller=sk.PID(rtol=1e-8, atol=1e-10),
                    saveat=sk.SaveAt(t1=True, dense=True))
    np.testing.assert_allclose(back.ys[-1], reference.ys[-1], rtol=1e-7)
    ts = jnp.linspace(0.97, 0.03, 40)
    np.testing.assert_allclose(jax.vmap(back.evaluate)(ts), jax.vmap(reference.evaluate)(ts), rtol=1e-6, atol=1e-8)


def test_radau5_event_on_a_stiff_problem_under_vmap(x64):
    """y' = -k (y - cos t) - sin t from y(0) = 1 is cos t for every rate k: each lane stops at
    the zero pi/2, located on its step's collocation polynomial. (At k >= 1e4 the steps grow to
    0.1-0.5, where a cubic through the stages is accurate to only 1e-6-1e-3 between them:
    docs/stiff.md says to bound the step with `dtmax` when events must be sharp there.)"""
    field = lambda t, y, k: -k * (y - jnp.cos(t)) - jnp.sin(t)  # noqa: E731
    zero = sk.Event(lambda t, y, k: y, direction=-1)

    def hit(k):
        sol = sk.solve(sk.ODE(field), sk.solvers.radau5(), 0.0, 3.0, jnp.array(1.0), args=k, event=zero,
                       controller=sk.PID(rtol=1e-10, atol=1e-12))
        return sol.ts[-1], sol.event_mask, sol.stats["num_steps"]

    times, mask, steps = jax.jit(jax.vmap(hit))(jnp.array([1e1, 1e2, 1e3]))
    assert bool(jnp.all(mask))
    np.testing.assert_allclose(times, np.pi / 2, rtol=0, atol=1e-10)
    # Stiffness costs no steps: the fastest lane takes the fewest (the rate is never resolved).
    assert int(steps[2]) < int(steps[0]), steps


def _zero_fills(jaxpr, shape) -> int:
    """`broadcast_in_dim` of a literal 0 to `shape`, in `jaxpr` and every jaxpr inside it."""
    count = sum(
        eqn.primitive.name == "broadcast_in_dim" and tuple(eqn.params["shape"]) == shape
        and isinstance(eqn.invars[0], jax.extend.core.Literal) and float(eqn.invars[0].val) == 0
        for eqn in jaxpr.eqns
    )
    return count + sum(_zero_fills(sub, shape) for sub in jax.extend.core.subjaxprs(jaxpr))


@pytest.mark.parametrize("name, split, stages", [("kvaerno5", False, 7), ("kencarp4", True, 6)])
def test_a_step_fills_its_stage_buffers_with_zeros_once(name, split, stages, x64):
    # One zero fill per stage buffer per step: none for an absent explicit part, none for the
    # retry loop's first value (each was a kernel of its own on XLA:CPU, about 7 ms of compile).
    y0 = jnp.asarray(Y0)
    field = sk.ODE(robertson) if not split else sk.ODE(sk.Split(lambda t, y, a: -0.1 * y, robertson))
    solver = getattr(sk.solvers, name)()
    state = solver.init(field, 0.0, y0, None)
    jaxpr = jax.make_jaxpr(lambda y, s: solver.step(field, 0.0, 1e-3, y, None, None, s))(y0, state).jaxpr
    assert _zero_fills(jaxpr, (stages, 3)) == (2 if split else 1)
