"""Reversible Heun's declared strong orders are the ones it has (shared harness of test_srk.py)."""

import jax.numpy as jnp
import pytest
from test_srk import ADDITIVE, ADDITIVE_RES, ADDITIVE_Y0, GENERAL_RES, GENERAL_SDE, GENERAL_Y0, SCALAR, SCALAR_RES, \
    SCALAR_Y0, _channel, _errors, _fine_increments, _slope

import sdekit as sk

# Commutative noise with three channels: g_ij(y) = s_j y_i (the columns' Jacobians commute).
COMMUTATIVE = sk.SDE(lambda t, y, a: -0.5 * y + 0.2 * jnp.sin(y[::-1]),
                     lambda t, y, a: y[:, None] * jnp.array([[0.3, 0.2, 0.4]], y.dtype),
                     noise="commutative", calculus="stratonovich")


@pytest.mark.slow
def test_reversible_heun_strong_orders(x64):
    solver = sk.solvers.reversible_heun()
    fine = _fine_increments()
    cases = [
        ("additive", ADDITIVE, ADDITIVE_Y0, fine, ADDITIVE_RES),
        ("scalar", SCALAR, SCALAR_Y0, _channel(_fine_increments(), 0), SCALAR_RES),
        ("commutative", COMMUTATIVE, (0.3, 0.2), fine, SCALAR_RES),
        ("general", GENERAL_SDE, GENERAL_Y0, fine, GENERAL_RES),
    ]
    for noise, problem, y0, incs, res in cases:
        errs = _errors(solver, problem, jnp.array(y0), incs, res)
        assert abs(_slope(res, errs) - solver.sde.strong(noise)) < 0.15, (noise, _slope(res, errs), errs)
