"""SDEs through sk.solve: the grid fast path and the cursor path, strong orders of
Euler-Maruyama on one Brownian path across resolutions, ensembles, and bad input."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

MU, SIGMA, T = 0.5, 0.8, 1.0
GBM = sk.SDE(lambda t, y, a: MU * y, lambda t, y, a: SIGMA * y, noise="diagonal", calculus="ito")


def _trees(n_paths, shape=(), levy="increment", seed=0):
    keys = jax.random.split(jax.random.key(seed), n_paths)
    return jax.vmap(lambda k: sk.BrownianTree(k, 0.0, T, shape=shape, tol=2**-14, levy=levy))(keys)


def _final_values(problem, solver, y0, n_paths, max_steps):
    """Final values on n_paths trees, the step size a traced argument: one compilation serves every
    resolution (the cursor loop; test_cursor_loop_equals_grid_fast_path and
    test_every_sde_solver_runs_through_solve_on_both_paths show the grid path gives the same
    solution), where a StepTo grid per resolution compiled once per resolution."""
    trees = _trees(n_paths)

    def one(tree, dt):
        return sk.solve(problem, solver, 0.0, T, y0, dt0=dt, brownian=tree, max_steps=max_steps).ys[-1]

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))
    return trees, lambda n: run(trees, T / n)


def _slope(step_counts, errors):
    return np.polyfit(np.log(T / np.asarray(step_counts)), np.log(errors), 1)[0]


def test_euler_maruyama_strong_order_half_on_gbm(x64):
    steps = [16, 32, 64, 128, 256]
    trees, final = _final_values(GBM, sk.solvers.euler_maruyama(), jnp.ones(()), 2000, max(steps))
    exact = jax.jit(jax.vmap(lambda tree: jnp.exp((MU - SIGMA**2 / 2) * T + SIGMA * tree.evaluate(T))))(trees)
    errors = np.asarray([float(jnp.mean(jnp.abs(final(n) - exact))) for n in steps])
    assert abs(_slope(steps, errors) - 0.5) < 0.1, errors


def test_euler_maruyama_strong_order_one_on_additive_noise(x64):
    """dy = -sin(y) dt + 0.5 dW: reference = the same Brownian paths on a 16x finer grid (solved
    once, by the same compiled solve as the resolutions)."""
    problem = sk.SDE(lambda t, y, a: -jnp.sin(y), lambda t, y, a: 0.5 * jnp.ones_like(y), noise="additive")
    steps = [16, 32, 64, 128]
    _, final = _final_values(problem, sk.solvers.euler_maruyama(), jnp.ones(()), 500, 2048)
    reference = final(2048)
    errors = np.asarray([float(jnp.mean(jnp.abs(final(n) - reference))) for n in steps])
    assert abs(_slope(steps, errors) - 1.0) < 0.1, errors


def test_cursor_loop_equals_grid_fast_path(dtype):
    """ConstantStep queries the tree step by step through its cursor; StepTo draws the whole grid
    at once. Same path, same steps: the same solution to float rounding."""
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(4,), tol=2**-12, dtype=dtype)
    y0 = jnp.linspace(0.5, 2.0, 4, dtype=dtype)
    by_cursor = sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, dt0=1 / 64, brownian=tree, saveat=sk.SaveAt(steps=True), max_steps=64)
    by_grid = sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, controller=sk.StepTo(jnp.linspace(0.0, 1.0, 65, dtype=dtype)), brownian=tree, saveat=sk.SaveAt(steps=True))
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(by_cursor.ys, by_grid.ys, rtol=rtol)
    assert by_cursor.ys.dtype == dtype


def _primitives(fn, *args):
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


@pytest.mark.parametrize(
    "t1, dt0, steps", [(1.0, 1 / 64, 64), (1.0, 0.3, 4), (0.7, 0.1, 7)], ids=["even", "short-last", "snapped"]
)
def test_constant_steps_under_jit_run_as_the_grid_scan(dtype, t1, dt0, steps):
    """Under jit, Python t0/t1/dt0 fix the step ends for the trace: the solve scans the grid
    (increments drawn at once) instead of looping over the cursor, with the eager (while loop)
    solve's steps, shortened last step and values."""
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(4,), tol=2**-12, dtype=dtype)
    y0 = jnp.linspace(0.5, 2.0, 4, dtype=dtype)
    solve = lambda y: sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, t1, y, dt0=dt0, brownian=tree, max_steps=100)
    names = _primitives(solve, y0)
    assert "scan" in names and "while" not in names
    eager, jitted = solve(y0), jax.jit(solve)(y0)
    assert int(eager.stats["num_steps"]) == int(jitted.stats["num_steps"]) == steps
    assert jitted.stats["max_steps"] == 100
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(jitted.ys, eager.ys, rtol=rtol)
    # A traced step size keeps the while loop (one compilation for every dt0).
    assert "while" in _primitives(lambda y, h: sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, t1, y, dt0=h, brownian=tree), y0, dt0)


def test_constant_steps_under_jit_keep_max_steps_and_tol_semantics():
    """Where the grid would change what the while loop reports, the while loop runs: more steps
    than `max_steps` (a result code, as before), a last step below the tree's tol, and outputs
    sized by `max_steps` (saved steps)."""
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(), tol=2**-8)
    solve = lambda **kw: jax.jit(lambda y: sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, y, brownian=tree, **kw))
    over = solve(dt0=1 / 64, max_steps=10, throw=False)(jnp.ones(()))
    assert int(over.result) == int(sk.RESULTS.max_steps_reached)
    with pytest.raises(RuntimeError, match="max_steps"):
        solve(dt0=1 / 64, max_steps=10)(jnp.ones(())).ys.block_until_ready()
    for kw in ({"dt0": 0.25 * (1 - 2**-10)}, {"dt0": 1 / 64, "saveat": sk.SaveAt(steps=True)}):
        assert "while" in _primitives(lambda y: sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, y, brownian=tree, **kw), jnp.ones(()))
    saved = solve(dt0=1 / 64, saveat=sk.SaveAt(steps=True), max_steps=100)(jnp.ones(()))
    assert saved.ys.shape == (100,)


@pytest.mark.parametrize(
    "adjoint, solver",
    [(sk.adjoint.Checkpointed(), "heun_sde"), (sk.adjoint.Checkpointed(checkpoints=8), "heun_sde"),
     (sk.adjoint.Backsolve(), "heun_sde"), (sk.adjoint.Reversible(), "reversible_heun")],
    ids=["default", "checkpoints", "backsolve", "reversible"],
)
def test_constant_steps_keep_the_while_loop_under_memory_bounded_adjoints(adjoint, solver):
    """Backsolve, Reversible and a chosen number of checkpoints bound the reverse pass's memory;
    a grid's stored carries and increments would not, so only the default adjoint scans."""
    problem = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.3 * jnp.cos(y), noise="diagonal", calculus="stratonovich")
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-10)
    solve = lambda y: sk.solve(problem, getattr(sk.solvers, solver)(), 0.0, 1.0, y, dt0=1 / 64, brownian=tree,
                               adjoint=adjoint)
    names = _primitives(jax.grad(lambda y: jnp.sum(solve(y).ys ** 2)), jnp.ones(3))
    scans = adjoint.__class__ is sk.adjoint.Checkpointed and adjoint.checkpoints is None
    assert ("while" not in names) == scans, names


def test_backward_ode_constant_steps_under_jit_equal_eager():
    ode = sk.ODE(lambda t, y, a: -y * jnp.cos(t))
    solve = lambda y: sk.solve(ode, sk.solvers.rk4(), 1.0, -0.5, y, dt0=-0.1, saveat=sk.SaveAt(ts=jnp.array([0.7, 0.0, -0.5])))
    assert "scan" in _primitives(solve, jnp.ones(2))
    eager, jitted = solve(jnp.ones(2)), jax.jit(solve)(jnp.ones(2))
    assert int(jitted.stats["num_steps"]) == 15
    np.testing.assert_allclose(jitted.ys, eager.ys, rtol=1e-6)
    np.testing.assert_allclose(jitted.ys[-1], np.exp(np.sin(1.0) - np.sin(-0.5)) * np.ones(2), rtol=1e-4)


@pytest.mark.parametrize("adjoint", [None, sk.adjoint.Reversible()])
def test_vmap_over_keys_equals_per_path_solves_values_and_gradients(x64, adjoint):
    """Under vmap over keys the trees' grids are built as one; each path's solution and its
    gradient must still be its own tree's (checked against solving each path alone and against
    central differences)."""
    keys = jax.random.split(jax.random.key(21), 6)
    grid = jnp.linspace(0.0, 1.0, 41)
    solver = sk.solvers.reversible_heun() if adjoint is not None else sk.solvers.spark()

    def one(key, mu):
        levy = solver.sde.levy_area
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-7, levy=levy)
        sde = sk.SDE(lambda t, y, a: a * y, lambda t, y, a: 0.4 * jnp.sin(y), noise="diagonal", calculus=solver.sde.calculus or "ito")
        sol = sk.solve(sde, solver, 0.0, 1.0, jnp.asarray([1.0, 0.5]), mu, controller=sk.StepTo(grid), brownian=tree, adjoint=adjoint)
        return jnp.sum(sol.ys[-1] ** 2)

    mu = 0.3
    batched = jax.jit(jax.vmap(one, in_axes=(0, None)))(keys, mu)
    alone = np.asarray([jax.jit(one)(k, mu) for k in keys])
    np.testing.assert_allclose(batched, alone, rtol=1e-10)
    assert np.std(alone) > 0.05  # distinct paths

    mean_loss = lambda m: jnp.mean(jax.vmap(one, in_axes=(0, None))(keys, m))  # noqa: E731
    grad = float(jax.jit(jax.grad(mean_loss))(mu))
    per_path = np.mean([float(jax.jit(jax.grad(one, argnums=1))(k, mu)) for k in keys])
    eps = 1e-5
    fd = float((mean_loss(mu + eps) - mean_loss(mu - eps)) / (2 * eps))
    np.testing.assert_allclose(grad, per_path, rtol=1e-9)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_general_noise_shapes_and_pytree_state(x64):
    """Two Brownian motions driving a pytree state through (*leaf.shape, m) diffusions."""

    def diffusion(t, y, args):
        return {"a": jnp.stack([y["a"], 0.5 * y["a"]], -1), "b": jnp.stack([jnp.zeros_like(y["b"]), jnp.ones_like(y["b"])], -1)}

    problem = sk.SDE(lambda t, y, a: jax.tree.map(jnp.zeros_like, y), diffusion, noise="general")
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(2,), tol=2**-10)
    y0 = {"a": jnp.ones(3), "b": jnp.zeros((2, 2))}
    sol = sk.solve(problem, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, dt0=2**-6, brownian=tree)
    w = tree.evaluate(1.0)
    np.testing.assert_allclose(sol.ys["b"][-1], w[1] * np.ones((2, 2)), rtol=1e-10)  # additive part is exact
    assert sol.ys["a"].shape == (1, 3)


def test_sample_paths_moments_of_gbm(x64):
    """Mean and variance of Euler-Maruyama GBM against the exact law of the discrete scheme:
    E[y_n] = (1 + mu h)^n, E[y_n^2] = ((1 + mu h)^2 + sigma^2 h)^n, E[y_n^4] likewise, so the
    thresholds are in exact standard errors. 25,000 paths make a 5% variance error a >4 SE miss."""
    mu, sigma, n_paths, substeps = 0.5, 0.3, 25_000, 8
    gbm = sk.SDE(lambda t, y, a: mu * y, lambda t, y, a: sigma * y, noise="diagonal")
    ts = jnp.linspace(0.0, T, 5)
    sol = sk.sample_paths(gbm, sk.solvers.euler_maruyama(), jnp.ones(()), ts, jax.random.key(7), n_paths, substeps=substeps)
    assert sol.ys.shape == (n_paths, 5)
    final = np.asarray(sol.ys[:, -1])
    h, n = T / (4 * substeps), 4 * substeps
    a = 1 + mu * h
    m1 = a**n
    m2 = (a**2 + sigma**2 * h) ** n
    m3 = (a**3 + 3 * a * sigma**2 * h) ** n
    m4 = (a**4 + 6 * a**2 * sigma**2 * h + 3 * sigma**4 * h**2) ** n
    var = m2 - m1**2
    central4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    assert abs(final.mean() - m1) < 4 * np.sqrt(var / n_paths)
    var_se = np.sqrt((central4 - var**2) / n_paths)
    assert 4 * var_se < 0.05 * var  # the test has the power to see a 5% variance error
    assert abs(final.var() - var) < 4 * var_se
    # Independent paths: no correlation between neighbours.
    assert abs(np.corrcoef(final[:-1], final[1:])[0, 1]) < 4 / np.sqrt(n_paths)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(brownian=None), "needs brownian="),
        (dict(solver=sk.solvers.tsit5()), "is an ODE method"),
        (dict(problem=sk.SDE(GBM.drift, GBM.diffusion, noise="diagonal", calculus="stratonovich")), "converges to the ito solution"),
        (dict(dt0=2**-14), "smaller than the Brownian tree's tol"),
        (dict(t1=2.0), "must contain the solve's"),
        (dict(t0=1.0, t1=0.0, dt0=-0.1), "forwards in time"),
        (dict(dt0=None), "dt0"),
        (dict(dt0=None, controller=sk.PID(rtol=1e-3, atol=1e-3)), "need an explicit dt0"),
        (dict(controller=sk.PID(rtol=1e-3, atol=1e-3)), "no embedded error estimate"),
        (dict(problem=sk.SDE(GBM.drift, lambda t, y, a: jnp.ones((2, 3)), noise="general")), "cannot multiply a Brownian increment"),
    ],
)
def test_sde_bad_input(kwargs, message):
    options = dict(problem=GBM, solver=sk.solvers.euler_maruyama(), t0=0.0, t1=1.0, y0=jnp.ones(2), dt0=0.01,
                   brownian=sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-10))
    options.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        sk.solve(options.pop("problem"), options.pop("solver"), options.pop("t0"), options.pop("t1"), options.pop("y0"), **options)


@pytest.mark.parametrize("throw", [True, False])
@pytest.mark.parametrize(
    "grid, message",
    [
        ([0.0, 0.6, 0.5, 1.0], "strictly monotonic"),
        ([0.0, 0.5, 0.5 + 2**-12, 1.0], "smaller than the Brownian tree's tol"),
        ([0.0, 0.5, 0.9], "ts\\[-1\\] must equal t1"),
    ],
)
def test_traced_bad_grid_raises_at_run_time_under_vmap(throw, grid, message):
    """A traced StepTo grid is checked when the solve runs, whether or not `throw` (with it, the
    checks share the result's error check); a good grid runs through."""

    def run(ts, key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-10)
        sol = sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(2), controller=sk.StepTo(ts),
                       brownian=tree, throw=throw)
        return sol.ys

    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(run, in_axes=(None, 0)))
    good = batched(jnp.linspace(0.0, 1.0, len(grid)), keys)
    assert np.isfinite(np.asarray(good)).all()
    # (Under jax.jit, not equinox.filter_jit, the callback's error reaches Python as a ValueError.)
    with pytest.raises((RuntimeError, ValueError), match=message):
        jax.block_until_ready(batched(jnp.asarray(grid), keys))


def test_traced_grid_solve_failure_raises_the_failed_paths_message():
    """With a traced grid the result's check and the input checks are one: a path whose state turns
    NaN fails the whole vmapped solve with the non-finite message, not an input one."""
    problem = sk.SDE(lambda t, y, a: jnp.where(a > 0, jnp.nan, 0.0) * y, lambda t, y, a: 0.1 * y, noise="diagonal")

    def run(ts, key, flag):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-10)
        return sk.solve(problem, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(2), args=flag,
                        controller=sk.StepTo(ts), brownian=tree).ys

    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(run, in_axes=(None, 0, 0)))
    grid = jnp.linspace(0.0, 1.0, 9)
    assert np.isfinite(np.asarray(batched(grid, keys, jnp.zeros(3)))).all()
    with pytest.raises((RuntimeError, ValueError), match="non-finite"):
        jax.block_until_ready(batched(grid, keys, jnp.array([0.0, 1.0, 0.0])))


def test_ito_stratonovich_conversion(x64):
    """The converted drift solves the same SDE: for GBM, Stratonovich drift mu - sigma^2/2."""
    strat = sk.terms.stratonovich_drift(GBM)
    assert strat.calculus == "stratonovich"
    np.testing.assert_allclose(strat.drift(0.0, jnp.array(2.0), None), 2 * (MU - SIGMA**2 / 2))
    back = sk.terms.stratonovich_drift(strat)
    assert back.calculus == "ito"
    np.testing.assert_allclose(back.drift(0.0, jnp.array(2.0), None), 2 * MU)


def _additive_problem():
    return sk.SDE(
        lambda t, y, a: -jnp.sin(3 * y) - y**3,
        lambda t, y, a: (1 + jnp.sin(t)) * 0.6 * jnp.ones_like(y),
        noise="additive",
    )


def test_adaptive_shark_converges_and_respects_tol(x64):
    """PID + ShARK's embedded error on 64 paths: the mean error against a fine fixed-step solution
    on the same paths falls with the tolerance; steps get rejected (and their ends revisited), and
    no step is below the tree's tol, revisits and the last step included (a step stopping just
    short of a rejected end used to leave a sliver step of 1e-7 there, and one stopping just short
    of t1 a last step of 1.1e-5 < tol = 1.5e-5)."""
    problem = _additive_problem()
    keys = jax.random.split(jax.random.key(4), 64)
    tol = 2**-16

    def run(key, rtol):
        tree = sk.BrownianTree(key, 0.0, 2.0, shape=(), tol=tol, levy="space-time")
        grid = jnp.linspace(0, 2, 2**14 + 1)
        reference = sk.solve(problem, sk.solvers.shark(), 0.0, 2.0, jnp.array(1.0), controller=sk.StepTo(grid),
                             brownian=tree).ys[-1]
        sol = sk.solve(problem, sk.solvers.shark(), 0.0, 2.0, jnp.array(1.0), dt0=0.01, brownian=tree,
                       max_steps=4096, controller=sk.PID(rtol=rtol, atol=rtol, pcoeff=0.1, icoeff=0.3, revisit_rejected=32),
                       saveat=sk.SaveAt(steps=True))
        n = sol.stats["num_accepted_steps"]
        ends = jnp.concatenate([jnp.zeros(1), sol.ts])
        shortest = jnp.min(jnp.where(jnp.arange(sol.ts.shape[0], dtype=n.dtype) < n, jnp.diff(ends), jnp.inf))
        return jnp.abs(sol.ys[n - 1] - reference), sol.stats["num_rejected_steps"], shortest, n, sol.result

    run = jax.jit(jax.vmap(run, in_axes=(0, None)))
    errors, steps = [], []
    for rtol in [1e-2, 1e-3, 1e-4]:
        error, rejected, shortest, n, result = run(keys, rtol)
        assert np.all(np.asarray(result) == 0)
        assert int(rejected.sum()) > 0
        assert float(shortest.min()) >= tol
        errors.append(float(error.mean()))
        steps.append(float(n.mean()))
    # Measured 3.3e-3, 1.1e-3, 1.3e-4: a method that does not adapt, or adapts to a wrong error
    # estimate, does not gain a factor 15 over two decades of tolerance.
    assert errors[0] > 2 * errors[1] > 8 * errors[2] and errors[0] > 15 * errors[2], errors
    assert steps[0] < steps[1] < steps[2]


@pytest.mark.parametrize("noise, revisits", [("general", 32), ("additive", 0)])
def test_rejected_ends_are_revisited_by_default_only_for_general_noise(noise, revisits):
    """The default `revisit_rejected=None` is 32 for non-commutative (general) noise, where
    adaptive steps need it to converge to the right solution, and 0 for the commutative noise
    types: the default solve equals the one with that setting, and differs from the other."""
    matrix = jnp.array([[0.3, 0.1], [-0.2, 0.4]])
    if noise == "general":
        problem = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.stack([jnp.sin(y), jnp.cos(y) * y[::-1]], -1) @ matrix,
                         noise="general", calculus="stratonovich")
    else:
        problem = sk.SDE(lambda t, y, a: -y**3, lambda t, y, a: jnp.broadcast_to(matrix, (2, 2)), noise="additive")
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 2.0, shape=(2,), tol=2**-14, levy="space-time")

    def solve(**kw):
        controller = sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3, **kw)
        sol = sk.solve(problem, sk.solvers.spark(), 0.0, 2.0, jnp.array([1.0, 0.5]), dt0=0.1, brownian=tree,
                       controller=controller, max_steps=2048)
        return np.asarray(sol.ys[-1]), int(sol.stats["num_steps"]), int(sol.stats["num_rejected_steps"])

    default, same, other = solve(), solve(revisit_rejected=revisits), solve(revisit_rejected=32 - revisits)
    assert default[2] > 0  # rejections happen, so the setting matters
    np.testing.assert_array_equal(default[0], same[0])
    assert default[1:] == same[1:] and default[1] != other[1]


def test_adaptive_spark_on_commutative_noise(x64):
    """SPaRK adapts on non-additive (scalar, Stratonovich) noise, y = y0 exp(mu t + sigma W):
    the mean error over 64 paths falls steadily as the tolerance tightens."""
    problem = sk.SDE(lambda t, y, a: 0.5 * y, lambda t, y, a: 0.8 * y, noise="scalar", calculus="stratonovich")
    keys = jax.random.split(jax.random.key(5), 64)
    trees = jax.vmap(lambda k: sk.BrownianTree(k, 0.0, 1.0, shape=(), tol=2**-16, levy="space-time"))(keys)

    def error(tree, rtol):
        sol = sk.solve(problem, sk.solvers.spark(), 0.0, 1.0, jnp.array(1.0), dt0=0.01, brownian=tree,
                       controller=sk.PID(rtol=rtol, atol=rtol, pcoeff=0.1, icoeff=0.3), max_steps=8192)
        return jnp.abs(sol.ys[-1] - jnp.exp(0.5 + 0.8 * tree.evaluate(1.0)))

    run = jax.jit(jax.vmap(error, in_axes=(0, None)))
    errors = [float(run(trees, rtol).mean()) for rtol in (1e-2, 1e-3, 1e-4)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < errors[0] / 5, errors


@pytest.mark.parametrize("name", ["shark", "sra1", "sea", "spark", "general_shark", "slow_rk", "euler_heun", "heun_sde", "midpoint_sde"])
def test_every_sde_solver_runs_through_solve_on_both_paths(name, x64):
    """Grid fast path and cursor path give the same answer for every SDE solver."""
    solver = getattr(sk.solvers, name)()
    problem = _additive_problem() if solver.sde.strong("scalar") is None else sk.SDE(
        lambda t, y, a: -y, lambda t, y, a: 0.3 * jnp.sin(y), noise="scalar", calculus="stratonovich")
    tree = sk.BrownianTree(jax.random.key(2), 0.0, 1.0, shape=(), tol=2**-10, levy="space-time")
    grid = sk.solve(problem, solver, 0.0, 1.0, jnp.array(0.7), controller=sk.StepTo(jnp.linspace(0.0, 1.0, 33)), brownian=tree)
    cursor = sk.solve(problem, solver, 0.0, 1.0, jnp.array(0.7), dt0=1 / 32, brownian=tree)
    np.testing.assert_allclose(grid.ys, cursor.ys, rtol=1e-12)


def test_solver_needing_space_time_area_refuses_increment_tree():
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-8)
    with pytest.raises(ValueError, match="levy='space-time'"):
        sk.solve(_additive_problem(), sk.solvers.shark(), 0.0, 1.0, jnp.array(0.0), dt0=0.1, brownian=tree)
    with pytest.raises(ValueError, match="does not support 'diagonal' noise"):
        sk.solve(GBM, sk.solvers.shark(), 0.0, 1.0, jnp.ones(2), dt0=0.1,
                 brownian=sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time"))
