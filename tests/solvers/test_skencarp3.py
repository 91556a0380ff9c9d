"""SKenCarp3, the IMEX stochastic Runge--Kutta method for additive noise
(`sdekit/solvers/_skencarp3.py`).

- Its noise weights satisfy the strong order 1.5 conditions derived in its docstring (exactly).
- Strong order 1.5 measured on a nonlinear problem with time-dependent noise, split and unsplit,
  on one Brownian path per sample shared across resolutions (the harness of `test_srk.py`);
  the same test fails without the H weights.
- On a stiff Ornstein--Uhlenbeck process (rate 1e3): stable where SRA1 blows up, its
  stationary law, strong order 2 (linear drift), and adaptive steps with `sk.PID`.
- Without noise it is KenCarp3; the error estimate scales as declared; float32, vmap; bad input.
"""

from fractions import Fraction as F

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_srk import (  # the shared harness (tests/solvers is on sys.path under pytest)
    ADDITIVE,
    ADDITIVE_RES,
    ADDITIVE_Y0,
    M,
    _additive_diffusion,
    _errors,
    _fine_increments,
    _one_step_errors,
    _slope,
)

import sdekit as sk
from sdekit.brownian import Increment
from sdekit.solvers import _newton
from sdekit.solvers._skencarp3 import NOISE_H, NOISE_W, TABLEAU, imex_sra_solver

LAMBDA = 1e3


def _stiff_ou():
    return sk.SDE(lambda t, y, a: -LAMBDA * y, lambda t, y, a: jnp.ones_like(y), noise="additive")


def _split_additive():
    """`ADDITIVE`'s drift split into a nonlinear explicit part and a linear implicit part."""

    def explicit(t, y, args):
        return jnp.stack([jnp.sin(y[1]), jnp.sin(y[0]) + jnp.cos(t).astype(y.dtype)])

    return sk.SDE(sk.Split(explicit, lambda t, y, args: -0.5 * y), _additive_diffusion, noise="additive",
                  calculus="stratonovich")


def test_noise_weights_satisfy_the_order_conditions():
    b, c = TABLEAU.b, TABLEAU.c
    assert NOISE_W == c and NOISE_H[0] == NOISE_H[-1] == 0 and c[-1] == 1
    # KenCarp3's published rationals meet its own conditions to about 1e-27.
    assert abs(sum(x * p for x, p in zip(b, NOISE_W)) - F(1, 2)) < F(1, 10**25)
    assert abs(sum(x * q for x, q in zip(b, NOISE_H)) - 1) < F(1, 10**35)
    assert abs(sum(x * (p * p + q * q / 12) for x, p, q in zip(b, NOISE_W, NOISE_H)) - F(1, 2)) < F(1, 10**25)
    # The root nearer the conditional mean 6c(1 - c) of the path's H-part at the nodes.
    assert [round(float(q), 5) for q in NOISE_H] == [0.0, 0.96945, 1.62289, 0.0]


@pytest.mark.slow
def test_strong_order_one_and_a_half(x64):
    solver = sk.solvers.skencarp3()
    fine = _fine_increments()
    y0 = jnp.array(ADDITIVE_Y0)
    plain = _errors(solver, ADDITIVE, y0, fine, ADDITIVE_RES)
    split = _errors(solver, _split_additive(), y0, fine, ADDITIVE_RES)
    assert solver.sde.strong("additive") == 1.5
    assert abs(_slope(ADDITIVE_RES, plain) - 1.5) < 0.15, plain
    assert abs(_slope(ADDITIVE_RES, split) - 1.5) < 0.15, split
    # Negative controls: without its H weights the method is an additive RK of order 1; with H
    # weights meeting sum b q = 1 but not sum b q^2 = 2 (the a''(g, g) term's mean) it is too.
    options = _newton.check_options("broken", None, "lu")
    for q in ((0, 0, 0, 0), (0, -3, (1 - TABLEAU.b[1] * -3) / TABLEAU.b[2], 0)):
        errs = _errors(imex_sra_solver("broken", q, options), ADDITIVE, y0, fine, ADDITIVE_RES)
        assert _slope(ADDITIVE_RES, errs) < 1.5 - 0.3, (q, errs)


def test_without_noise_it_is_kencarp3(x64):
    explicit = lambda t, y, a: jnp.sin(y[::-1]) + jnp.cos(t)  # noqa: E731
    implicit = lambda t, y, a: jnp.array([-50.0, -0.5]) * y  # noqa: E731
    sde = sk.SDE(sk.Split(explicit, implicit), lambda t, y, a: jnp.zeros((2, 2)), noise="additive")
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time")
    y0 = jnp.array([1.0, -0.5])
    sde_sol = sk.solve(sde, sk.solvers.skencarp3(), 0.0, 1.0, y0, dt0=0.05, brownian=tree)
    ode_sol = sk.solve(sk.ODE(sk.Split(explicit, implicit)), sk.solvers.kencarp3(), 0.0, 1.0, y0, dt0=0.05)
    np.testing.assert_allclose(sde_sol.ys[-1], ode_sol.ys[-1], rtol=1e-13)
    # A plain drift: wholly implicit, as KenCarp3's ESDIRK on a plain ODE.
    plain = lambda t, y, a: explicit(t, y, a) + implicit(t, y, a)  # noqa: E731
    sde_sol = sk.solve(sk.SDE(plain, sde.diffusion, noise="additive"), sk.solvers.skencarp3(), 0.0, 1.0, y0, dt0=0.05,
                       brownian=tree)
    ode_sol = sk.solve(sk.ODE(plain), sk.solvers.kencarp3(), 0.0, 1.0, y0, dt0=0.05)
    np.testing.assert_allclose(sde_sol.ys[-1], ode_sol.ys[-1], rtol=1e-13)


def test_pytree_state_matches_flat_state(x64):
    tree = sk.BrownianTree(jax.random.key(8), 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time")
    rates = jnp.array([-40.0, -1.0, -0.5])

    def flat_drift(t, y, a):
        return rates * y + jnp.sin(y[::-1])

    def tree_drift(t, y, a):
        out = flat_drift(t, jnp.concatenate([y["u"][None], y["v"]]), a)
        return {"u": out[0], "v": out[1:]}

    g = jnp.array([[0.5, 0.0, 0.1], [0.0, 0.3, 0.0], [0.2, 0.0, 0.4]])
    flat = sk.SDE(flat_drift, lambda t, y, a: (1 + t) * g, noise="additive")
    pytree = sk.SDE(tree_drift, lambda t, y, a: {"u": (1 + t) * g[0], "v": (1 + t) * g[1:]}, noise="additive")
    y_flat = sk.solve(flat, sk.solvers.skencarp3(), 0.0, 1.0, jnp.array([1.0, 0.5, -0.5]), dt0=0.1,
                      brownian=tree).ys[-1]
    y_tree = sk.solve(pytree, sk.solvers.skencarp3(), 0.0, 1.0, {"u": jnp.array(1.0), "v": jnp.array([0.5, -0.5])},
                      dt0=0.1, brownian=tree).ys
    np.testing.assert_allclose(jnp.concatenate([y_tree["u"][-1:], y_tree["v"][-1]]), y_flat, rtol=1e-12)


def _one_step_coefficients(h):
    """On the OU process (g = 1) a step is linear: y1 = R y0 + u W + v H."""
    solver, ou = sk.solvers.skencarp3(), _stiff_ou()
    state = solver.init(ou, 0.0, jnp.array(0.0), None)

    def step(y0, w, hh):
        inc = Increment(jnp.asarray(h), jnp.asarray(w), jnp.asarray(hh), None)
        return float(solver.step(ou, 0.0, h, jnp.asarray(y0), None, inc, state)[0])

    return step(1.0, 0.0, 0.0), step(0.0, 1.0, 0.0), step(0.0, 0.0, 1.0)


def _stationary_std(h):
    r, u, v = _one_step_coefficients(h)
    return np.sqrt((u**2 * h + v**2 * h / 12) / (1 - r**2))


def test_stable_on_a_stiff_ou_where_sra1_blows_up(x64):
    h, exact_std = 1.0 / 128, 1 / np.sqrt(2 * LAMBDA)  # lambda h = 7.8
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-12, levy="space-time")
    sra1 = sk.solve(_stiff_ou(), sk.solvers.sra1(), 0.0, 1.0, jnp.array(1.0), dt0=h, brownian=tree,
                    max_steps=128, throw=False)
    assert int(sra1.result) == int(sk.RESULTS.nonfinite) or abs(float(sra1.ys[-1])) > 1e50

    # The stationary law: the method's own (from its linear recurrence) against the samples.
    # L-stable damping shrinks it at lambda h = 7.8 (implicit Euler's is 0.45 of the exact).
    method_std = _stationary_std(h)
    assert 0.75 * exact_std < method_std < exact_std
    assert abs(_stationary_std(0.5 / LAMBDA) / exact_std - 1) < 2e-3

    def end(key):
        tree = sk.BrownianTree(key, 0.0, 0.5, shape=(), tol=2**-12, levy="space-time")
        return sk.solve(_stiff_ou(), sk.solvers.skencarp3(), 0.0, 0.5, jnp.array(1.0), dt0=h, brownian=tree,
                        max_steps=64).ys[-1]

    ends = np.asarray(jax.jit(jax.vmap(end))(jax.random.split(jax.random.key(3), 2000)))
    # 2000 samples: the standard deviation's standard error is 1.6%.
    assert abs(np.std(ends) / method_std - 1) < 0.065, (np.std(ends), method_std)
    assert abs(np.mean(ends)) < 4 * method_std / np.sqrt(2000)


@pytest.mark.slow
def test_strong_order_two_on_the_stiff_ou(x64):
    """Linear drift and constant noise: the local error is O(h^2.5), so strong order 2 once
    lambda h is small (1.95 measured for lambda h = 0.31 .. 0.04; 1.82 for 0.78 .. 0.1, not yet
    asymptotic); bounded at lambda h = 5."""
    T, n_ref = 0.02, 4096
    solver = sk.solvers.skencarp3()

    def end(key, n):
        tree = sk.BrownianTree(key, 0.0, T, shape=(), tol=T / n_ref, levy="space-time")
        return sk.solve(_stiff_ou(), solver, 0.0, T, jnp.array(1.0), dt0=T / n, brownian=tree, max_steps=n_ref).ys[-1]

    # The step count is traced (constant steps in the while loop): one compilation for all.
    ends = jax.jit(jax.vmap(end, in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(1), 256)
    reference = ends(keys, n_ref)
    ns = [4, 64, 128, 256, 512]  # lambda h = 5, then 0.31 .. 0.04
    errors = [float(jnp.mean(jnp.abs(ends(keys, n) - reference))) for n in ns]
    assert errors[0] < 0.05
    slope = np.polyfit(np.log(1.0 / np.asarray(ns[1:])), np.log(errors[1:]), 1)[0]
    assert abs(slope - 2.0) < 0.15, errors


def test_adaptive_steps_follow_the_tolerance(x64):
    """`sk.PID` on the split problem: errors against a fine fixed-step solve of the same path
    fall with the tolerance, in about as many steps as SRA1 takes (both estimates are the
    difference from an Euler--Maruyama step). On a stiff problem at a loose tolerance the
    filtered estimate lets the steps grow far beyond SRA1's stability limit h < 2 / lambda."""
    tree = sk.BrownianTree(jax.random.key(4), 0.0, 1.0, shape=(M,), tol=2**-14, levy="space-time")
    y0 = jnp.array(ADDITIVE_Y0)
    errors, steps = {}, {}
    for name, problem in (("skencarp3", _split_additive()), ("sra1", ADDITIVE)):
        solver = getattr(sk.solvers, name)()
        reference = sk.solve(problem, solver, 0.0, 1.0, y0, dt0=2**-12, brownian=tree, max_steps=2**12).ys[-1]
        for rtol in (1e-2, 1e-3, 1e-4):
            sol = sk.solve(problem, solver, 0.0, 1.0, y0, dt0=0.1, brownian=tree, controller=sk.PID(rtol=rtol, atol=rtol))
            errors.setdefault(name, []).append(float(jnp.max(jnp.abs(sol.ys[-1] - reference))))
            steps.setdefault(name, []).append(int(sol.stats["num_accepted_steps"]))
    ours = errors["skencarp3"]
    assert ours[1] < ours[0] / 3 and ours[2] < ours[1] / 3 and ours[0] < 2e-2, errors
    assert all(0.5 < a / b < 2 for a, b in zip(steps["skencarp3"], steps["sra1"])), steps

    drift = sk.Split(lambda t, y, a: jnp.sin(t) * jnp.ones_like(y), lambda t, y, a: -LAMBDA * y)
    stiff = sk.SDE(drift, lambda t, y, a: jnp.ones_like(y), noise="additive")
    stiff_tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-16, levy="space-time")
    reference = sk.solve(stiff, sk.solvers.skencarp3(), 0.0, 1.0, jnp.array(1.0), dt0=2**-16, brownian=stiff_tree,
                         max_steps=2**16).ys[-1]
    steps = {}
    for tol in (0.1, 0.01):
        run = dict(dt0=1e-3, brownian=stiff_tree, controller=sk.PID(rtol=tol, atol=tol), max_steps=10_000)
        ours = sk.solve(stiff, sk.solvers.skencarp3(), 0.0, 1.0, jnp.array(1.0), **run)
        theirs = sk.solve(stiff, sk.solvers.sra1(), 0.0, 1.0, jnp.array(1.0), **run)
        steps[tol] = int(ours.stats["num_accepted_steps"]), int(theirs.stats["num_accepted_steps"])
    assert steps[0.1][0] < 50 and steps[0.1][1] > 400, steps
    # Below the fast mode's spread 0.022 the estimate makes the steps resolve it, still in fewer
    # steps than SRA1, and the path is followed to a fraction of that spread.
    assert steps[0.01][0] < steps[0.01][1] / 2, steps
    assert abs(float(ours.ys[-1] - reference)) < 0.25 / np.sqrt(2 * LAMBDA)


def test_error_estimate_scales_with_declared_order(x64):
    solver = sk.solvers.skencarp3()
    hs = 2.0 ** -np.arange(6, 12)
    errs = _one_step_errors(solver, ADDITIVE, jnp.array(ADDITIVE_Y0), (M,), hs)
    assert solver.has_error_estimate and solver.embedded_order == 1
    assert abs(np.polyfit(np.log(hs), np.log(errs), 1)[0] - solver.sde.error("additive")) < 0.1, errs


def test_float32_vmap_and_jit():
    problem, solver = _split_additive(), sk.solvers.skencarp3()

    @jax.jit
    @jax.vmap
    def final(key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(M,), tol=2**-8, levy="space-time")
        return sk.solve(problem, solver, 0.0, 1.0, jnp.array(ADDITIVE_Y0, jnp.float32), dt0=1 / 32,
                        brownian=tree).ys[-1]

    keys = jax.random.split(jax.random.key(0), 8)
    ys = final(keys)
    assert ys.dtype == jnp.float32 and ys.shape == (8, 2) and bool(jnp.all(jnp.isfinite(ys)))
    with jax.enable_x64(True):
        tree = sk.BrownianTree(keys[3], 0.0, 1.0, shape=(M,), tol=2**-8, levy="space-time")
        y64 = sk.solve(problem, solver, 0.0, 1.0, jnp.array(ADDITIVE_Y0, jnp.float64), dt0=1 / 32,
                       brownian=tree).ys[-1]
    np.testing.assert_allclose(ys[3], y64, atol=2e-5)


def test_bad_input_is_refused():
    solver = sk.solvers.skencarp3()
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time")
    state_dependent = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.1 * y, noise="additive")
    with pytest.raises(ValueError, match="depends on y"):
        sk.solve(state_dependent, solver, 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    no_h = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8)
    with pytest.raises(ValueError, match="space-time"):
        sk.solve(_stiff_ou(), solver, 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=no_h)
    diagonal = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.1 * y, noise="diagonal")
    with pytest.raises(ValueError, match="additive"):
        sk.solve(diagonal, solver, 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    with pytest.raises(TypeError, match="jacobian"):
        sk.solvers.skencarp3(jacobian="yes")


def test_failed_newton_iteration_gives_a_result_code_not_nan(x64):
    bad = sk.solvers.skencarp3(jacobian=lambda t, y, a: jnp.full((2, 2), jnp.nan))
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-10, levy="space-time")
    sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.1 * jnp.ones_like(y), noise="additive")
    sol = sk.solve(sde, bad, 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree, controller=sk.PID(rtol=1e-3, atol=1e-6),
                   throw=False)
    assert int(sol.result) == int(sk.RESULTS.implicit_solve_failed)
    assert np.all(np.isfinite(np.asarray(sol.ys)))
    with pytest.raises(sk.SolveError, match="Newton iteration"):
        sk.solve(sde, bad, 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)


def test_gradient_matches_finite_differences(x64):
    """Reverse mode through a fixed-step solve on one Brownian path (stages by the implicit
    function theorem), with respect to the stiff rate in the implicit part and the noise scale."""
    tree = sk.BrownianTree(jax.random.key(2), 0.0, 1.0, shape=(2,), tol=2**-10, levy="space-time")
    explicit = lambda t, y, p: jnp.stack([y[1] ** 2, jnp.sin(t)])  # noqa: E731
    implicit = lambda t, y, p: jnp.stack([-p[0] * y[0], -0.5 * y[1]])  # noqa: E731
    sde = sk.SDE(sk.Split(explicit, implicit), lambda t, y, p: p[1] * (1 + t) * jnp.ones_like(y), noise="additive")

    def loss(p):
        sol = sk.solve(sde, sk.solvers.skencarp3(), 0.0, 1.0, jnp.array([1.0, 0.5]), args=p, dt0=0.05, brownian=tree)
        return jnp.sum(sol.ys[-1] ** 2)

    p, e = jnp.array([50.0, 0.3]), 1e-5
    fd = [(loss(p.at[i].add(e)) - loss(p.at[i].add(-e))) / (2 * e) for i in range(2)]
    np.testing.assert_allclose(jax.grad(loss)(p), fd, rtol=1e-5)


def test_gmres_matches_lu(x64):
    """The matrix-free linear solver (the Newton iteration and the error estimate's filter)
    gives the LU solution, adaptively on a 48-point stochastic heat equation."""
    x = jnp.linspace(0, 1, 50)[1:-1]
    dx2 = float(x[1] - x[0]) ** 2

    def heat(t, u, args):
        padded = jnp.concatenate([jnp.zeros(1), u, jnp.zeros(1)])
        return (padded[2:] - 2 * u + padded[:-2]) / dx2

    sde = sk.SDE(sk.Split(lambda t, u, a: u * (1 - u), heat), lambda t, u, a: 0.05 * jnp.ones_like(u),
                 noise="additive")
    tree = sk.BrownianTree(jax.random.key(6), 0.0, 0.1, shape=(48,), tol=2**-16, levy="space-time")
    run = dict(dt0=1e-3, brownian=tree, controller=sk.PID(rtol=1e-3, atol=1e-3))
    lu = sk.solve(sde, sk.solvers.skencarp3(), 0.0, 0.1, 0.5 * jnp.sin(jnp.pi * x), **run)
    gmres = sk.solve(sde, sk.solvers.skencarp3(linear_solver="gmres"), 0.0, 0.1, 0.5 * jnp.sin(jnp.pi * x), **run)
    np.testing.assert_allclose(gmres.ys[-1], lu.ys[-1], rtol=1e-5, atol=1e-7)
    # The fastest mode's rate is 9600: an explicit method is held to h < 2.1e-4 (470 steps).
    # (With atol below that mode's stationary spread, 3.6e-4, the estimate asks to resolve it.)
    assert int(lu.stats["num_accepted_steps"]) < 50
