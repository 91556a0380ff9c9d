"""Stratonovich Euler--Heun, Heun and midpoint for SDEs (`sdekit/solvers/_heun_sde.py`).

Same harness as `test_srk.py` (shared Brownian paths, Chen-coarsened across resolutions): agreement
with diffrax's `EulerHeun`, `Heun`, `Midpoint` to rounding, strong orders, error-estimate scaling.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_srk import (  # the shared harness (tests/solvers is on sys.path under pytest)
    ADDITIVE,
    ADDITIVE_RES,
    ADDITIVE_Y0,
    GENERAL_RES,
    GENERAL_SDE,
    GENERAL_Y0,
    GBM,
    M,
    MU,
    N_FINE,
    SCALAR,
    SCALAR_RES,
    SCALAR_Y0,
    SIGMA,
    T,
    _case,
    _channel,
    _diffrax_terms,
    _errors,
    _fine_increments,
    _GridPath,
    _one_path,
    _one_step_errors,
    _scan_solve,
    _slope,
)

import sdekit as sk
from sdekit.brownian import Increment
from sdekit.solvers._heun_sde import euler_heun, heun_sde, midpoint_sde

SOLVERS = {"euler_heun": euler_heun, "heun_sde": heun_sde, "midpoint_sde": midpoint_sde}
DIFFRAX = {"euler_heun": diffrax.EulerHeun, "heun_sde": diffrax.Heun, "midpoint_sde": diffrax.Midpoint}


def _w_only(inc: Increment) -> Increment:
    return Increment(inc.dt, inc.W, None, None)


@pytest.mark.parametrize("name", list(SOLVERS))
@pytest.mark.parametrize("kind", ["additive", "general"])
def test_matches_diffrax_one_step_and_solve(name, kind, x64):
    problem, y0 = _case(kind)
    ts, incs = _one_path(32)
    incs = _w_only(incs)
    terms = _diffrax_terms(problem, _GridPath(ts, incs))
    ours, theirs = SOLVERS[name](), DIFFRAX[name]()
    i = 5
    t0, t1 = ts[i], ts[i + 1]
    inc = jax.tree.map(lambda x: x[i], incs)
    y1, err, _, _ = ours.step(problem, t0, t1, y0, None, inc, ours.init(problem, t0, y0, None))
    y1_dx, err_dx, _, _, _ = theirs.step(terms, t0, t1, y0, None, theirs.init(terms, t0, t1, y0, None), False)
    np.testing.assert_allclose(y1, y1_dx, rtol=1e-13, atol=1e-14)
    assert (err is None) == (err_dx is None)
    if err is not None:
        np.testing.assert_allclose(err, err_dx, rtol=1e-12, atol=1e-14)
    y_end = jax.jit(lambda y: _scan_solve(ours, problem, y, incs))(y0)
    sol = diffrax.diffeqsolve(
        terms, theirs, ts[0], ts[-1], None, y0, stepsize_controller=diffrax.StepTo(ts),
        saveat=diffrax.SaveAt(t1=True),
    )
    np.testing.assert_allclose(y_end, sol.ys[0], rtol=1e-12, atol=1e-13)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOLVERS))
def test_strong_orders(name, x64):
    solver = SOLVERS[name]()
    # (H is kept only to coarsen the path by Chen's relation; these methods ignore it.)
    fine = _fine_increments()
    cases = [
        ("additive", ADDITIVE, ADDITIVE_Y0, fine, ADDITIVE_RES),
        ("scalar", SCALAR, SCALAR_Y0, _channel(_fine_increments(), 0), SCALAR_RES),
        ("general", GENERAL_SDE, GENERAL_Y0, fine, GENERAL_RES),
    ]
    for noise, problem, y0, incs, res in cases:
        errs = _errors(solver, problem, jnp.array(y0), incs, res)
        assert abs(_slope(res, errs) - solver.sde.strong(noise)) < 0.15, (noise, errs)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOLVERS))
def test_converges_to_stratonovich_gbm(name, x64):
    fine = _channel(_fine_increments(), 0)
    exact = jnp.exp(MU * T + SIGMA * jnp.sum(fine.W, axis=1))
    errs = _errors(SOLVERS[name](), GBM, jnp.array(1.0), fine, (N_FINE,), reference=exact)
    assert errs[0] < (5e-3 if name == "euler_heun" else 2e-4), errs


@pytest.mark.parametrize(
    "name, problem, y0, w_shape, noise",
    [
        ("heun_sde", ADDITIVE, ADDITIVE_Y0, (M,), "additive"),
        ("heun_sde", SCALAR, SCALAR_Y0, (), "scalar"),
        ("midpoint_sde", GENERAL_SDE, GENERAL_Y0, (M,), "general"),
    ],
)
def test_error_estimate_scales_with_declared_order(name, problem, y0, w_shape, noise, x64):
    solver = SOLVERS[name]()
    hs = 2.0 ** -np.arange(6, 12)
    errs = _one_step_errors(solver, problem, jnp.array(y0), w_shape, hs)
    assert abs(np.polyfit(np.log(hs), np.log(errs), 1)[0] - solver.sde.error(noise)) < 0.1, errs


@pytest.mark.parametrize("name, evals", [("euler_heun", (1, 2)), ("heun_sde", (2, 2)), ("midpoint_sde", (2, 2))])
def test_declared_facts(name, evals):
    solver = SOLVERS[name]()
    assert solver is SOLVERS[name]() and solver.name == name and solver.order is None
    assert solver.sde.calculus == "stratonovich" and solver.sde.levy_area == "increment"
    assert solver.has_error_estimate == (name != "euler_heun")
    from sdekit.solvers._heun_sde import EULER_HEUN_TABLEAU, HEUN_SDE_TABLEAU, MIDPOINT_SDE_TABLEAU

    tableau = {"euler_heun": EULER_HEUN_TABLEAU, "heun_sde": HEUN_SDE_TABLEAU, "midpoint_sde": MIDPOINT_SDE_TABLEAU}
    assert tableau[name].evaluations() == evals
    # An increment-only tree suffices.
    problem, y0 = _case("general")
    inc = Increment(jnp.asarray(0.1), jnp.ones(M), None, None)
    y1, _, _, _ = solver.step(problem, 0.0, 0.1, y0, None, inc, solver.init(problem, 0.0, y0, None))
    assert y1.shape == y0.shape


def test_sk_namespace_unchanged():
    # The ODE heun/midpoint stay ODE-only; the SDE variants are separate factories.
    assert sk.solvers.heun().sde is None
