"""Verification of the Runge--Kutta coefficient data in `sdekit/solvers/_*_data.py`.

Pure numpy / fractions (no JAX). Checks, for each tableau:

* structure (shapes, FSAL) and the row-sum condition $c_i = \\sum_j a_{ij}$;
* the Butcher order conditions $\\sum_i b_i \\Phi_i(\\tau) = 1/\\gamma(\\tau)$ for every rooted tree
  $\\tau$ up to the claimed order, for the solution weights $b$ and the embedded weights $b - e$
  (trees and elementary weights generated programmatically), and that the next order fails;
* that the tolerances used are discriminating: moving a little weight between two entries of a
  row of $A$ (row sums unchanged) or changing one weight breaks an order condition;
* for the dense outputs: $b_i(0) = 0$, $b_i(1) = b_i$ and the order conditions
  $\\sum_i b_i(\\theta) \\Phi_i(\\tau) = \\theta^{\\rho(\\tau)}/\\gamma(\\tau)$ for $\\rho(\\tau) \\le q$
  ($q = 4$ for Tsit5 and Dopri5, $q = 5$ for Dopri8, whose 14 stages cannot give order 6);
* empirical convergence on a nonlinear, non-autonomous ODE with a known solution: global
  error slopes of the solution (5, 5, 8) and of the embedded solution (4, 4, 7), and the local
  error slope of the dense output (interpolation order plus one for a single step: 5, 5, 6).
"""

import functools
import math
from fractions import Fraction

import numpy as np
import pytest

from sdekit.solvers._dopri5_data import DOPRI5_TABLEAU
from sdekit.solvers._dopri8_data import DOPRI8_TABLEAU
from sdekit.solvers._tableau import ButcherTableau
from sdekit.solvers._tsit5_data import TSIT5_TABLEAU

# name -> (tableau, order of b, order of b - e, dense order or None,
#          exact (published rationals are the exact method), tolerance otherwise).
# Residuals are computed in exact rational arithmetic from the stored coefficients, so the
# tolerance only has to absorb the rounding of the published numbers.
METHODS = {
    # Decimals printed to ~16 digits: residuals are at most ~1.1e-15.
    "tsit5": (TSIT5_TABLEAU, 5, 4, 4, False, 1e-14),
    "dopri5": (DOPRI5_TABLEAU, 5, 4, 4, True, 0.0),
    # Published rationals approximate the real coefficients to ~18 digits: residuals < 1e-17.
    "dopri8": (DOPRI8_TABLEAU, 8, 7, 5, False, 1e-16),
}


# ---------------------------------------------------------------------------------------------
# Rooted trees. A tree is the sorted tuple of its root's subtrees; the single node is ().


def _grow(tree):
    """All trees obtained by attaching one new leaf to some node of `tree`."""
    yield tuple(sorted(tree + ((),)))
    for k, child in enumerate(tree):
        for grown in _grow(child):
            yield tuple(sorted(tree[:k] + (grown,) + tree[k + 1 :]))


@functools.cache
def trees_of_order(n):
    if n == 1:
        return ((),)
    return tuple(sorted({g for t in trees_of_order(n - 1) for g in _grow(t)}))


def trees_up_to(p):
    return [t for n in range(1, p + 1) for t in trees_of_order(n)]


@functools.cache
def rho(tree):
    return 1 + sum(rho(child) for child in tree)


@functools.cache
def gamma(tree):
    return rho(tree) * math.prod(gamma(child) for child in tree)


class ElementaryWeights:
    """Exact $\\Phi_i(\\tau)$ for all stages $i$, memoised per tree.

    $\\Phi(\\bullet) = 1$ and, componentwise,
    $\\Phi([\\tau_1, \\ldots, \\tau_m]) = \\prod_k A \\Phi(\\tau_k)$.
    """

    def __init__(self, a_rows):
        self.rows = [()] + [tuple(Fraction(x) for x in row) for row in a_rows]
        self._cache = {}

    def __call__(self, tree):
        if tree not in self._cache:
            phi = [Fraction(1)] * len(self.rows)
            for child in tree:
                v = self(child)
                av = [sum((aij * vj for aij, vj in zip(row, v)), Fraction(0)) for row in self.rows]
                phi = [p * x for p, x in zip(phi, av)]
            self._cache[tree] = phi
        return self._cache[tree]


def _float_weights(tableau):
    return [list(map(float, r)) for r in tableau.a]


def _a_matrix(rows):
    s = len(rows) + 1
    A = np.zeros((s, s))
    for i, r in enumerate(rows):
        A[i + 1, : len(r)] = r
    return A


def _phi_matrix(A, trees):
    """Float elementary weights, one column per tree (vectorised over stages)."""
    s = A.shape[0]
    cache = {}

    def phi(tree):
        if tree not in cache:
            v = np.ones(s)
            for child in tree:
                v = v * (A @ phi(child))
            cache[tree] = v
        return cache[tree]

    return np.stack([phi(t) for t in trees], axis=1)


def order_residuals(weights, phis, trees, theta=1):
    """Exact residuals sum_i w_i Phi_i(t) - theta^rho(t) / gamma(t) over `trees`."""
    out = []
    for t in trees:
        lhs = sum(w * p for w, p in zip(weights, phis(t)))
        out.append(lhs - Fraction(theta) ** rho(t) / gamma(t))
    return out


def _check(residuals, exact, tol):
    worst = max(abs(float(r)) for r in residuals)
    if exact:
        assert all(r == 0 for r in residuals), worst
    else:
        assert worst < tol, worst


def _embedded(tableau):
    return tuple(b - e for b, e in zip(tableau.b, tableau.e))


def _dense_weights(tableau, theta):
    theta = Fraction(theta)
    return tuple(sum(coef * theta ** (j + 1) for j, coef in enumerate(row)) for row in tableau.dense)


def _dense_stage_rows(tableau):
    """The `a` rows of the stage list the dense output refers to."""
    if tableau.fsal_dense:
        return tuple(tableau.a) + (tuple(tableau.b),)
    return tuple(tableau.a)


# ---------------------------------------------------------------------------------------------
# Tests


def test_tree_counts():
    # OEIS A000081: 1, 1, 2, 4, 9, 20, 48, 115, 286.
    assert [len(trees_of_order(n)) for n in range(1, 10)] == [1, 1, 2, 4, 9, 20, 48, 115, 286]
    assert gamma(((), ())) == 3 and gamma((((),),)) == 6  # [t, t] and [[t]]


@pytest.mark.parametrize("name", METHODS)
def test_structure(name):
    tab, *_ = METHODS[name]
    assert isinstance(tab, ButcherTableau)
    s = tab.num_stages
    assert tab.c[0] == 0
    assert [len(r) for r in tab.a] == list(range(1, s))
    assert len(tab.b) == s and len(tab.e) == s
    for value in (*tab.c, *(x for r in tab.a for x in r), *tab.b, *tab.e):
        assert type(value) is Fraction
    assert sum(tab.e) == 0 or abs(float(sum(tab.e))) < 1e-15
    if name in ("tsit5", "dopri5"):
        assert s == 7 and tab.fsal and not tab.fsal_dense
        assert len(tab.dense) == s and all(len(r) == 4 for r in tab.dense)
        assert all(type(x) is Fraction for r in tab.dense for x in r)
    else:
        assert s == 13 and not tab.fsal and tab.fsal_dense
        assert len(tab.dense) == s + 1 and all(len(r) == 7 for r in tab.dense)
        assert all(type(x) is Fraction for r in tab.dense for x in r)


@pytest.mark.parametrize("name", METHODS)
def test_row_sums(name):
    tab, _, _, _, exact, _ = METHODS[name]
    residuals = [sum(row) - c for row, c in zip(tab.a, tab.c[1:])]
    if exact:
        assert all(r == 0 for r in residuals)
    elif name == "tsit5":
        # a_i1 is derived from the row sum; the FSAL row is b, whose printed digits sum to
        # 1 - 1.7e-16.
        assert all(r == 0 for r in residuals[:-1])
        assert abs(float(residuals[-1])) < 5e-16
    else:
        # Rational approximations: |residual| <= ~1e-17.
        assert max(abs(float(r)) for r in residuals) < 5e-17


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("which", ["b", "embedded"])
def test_order_conditions(name, which):
    tab, p, q, _, exact, tol = METHODS[name]
    weights, order = (tab.b, p) if which == "b" else (_embedded(tab), q)
    phis = ElementaryWeights(tab.a)
    _check(order_residuals(weights, phis, trees_up_to(order)), exact, tol)
    # ... and not of the next order.
    assert max(abs(float(r)) for r in order_residuals(weights, phis, trees_of_order(order + 1))) > 1e-6


@pytest.mark.parametrize("name", METHODS)
def test_conditions_are_sensitive(name):
    """A wrong coefficient fails the order-condition checks above.

    Moving `delta` from a nonzero a_ij (j >= 2) to a_i1 (row sum unchanged), or changing one
    weight, changes some residual (of b up to order p, or of b - e up to order q) by at least
    `1e-4 * delta` (the smallest sensitivities are ~5e-4 for Dopri8, ~2e-3 for Tsit5). An error eps
    in one coefficient therefore gives a residual of at least ~1e-4 * eps: with the tolerances
    used, any error above ~1e-10 (Tsit5), ~1e-12 (Dopri8) or at all (Dopri5, exact) is caught; and
    row sums catch errors in a_i1 and c_i.
    """
    tab, p, q, _, _, _ = METHODS[name]
    delta = 1e-7
    rows = _float_weights(tab)
    sets = [(np.array([float(x) for x in w]), trees_up_to(o)) for w, o in ((tab.b, p), (_embedded(tab), q))]

    def residuals(rows, dw=None):
        A = _a_matrix(rows)
        return np.concatenate(
            [
                (w if dw is None else w + dw) @ _phi_matrix(A, trees) - [1 / gamma(t) for t in trees]
                for w, trees in sets
            ]
        )

    base = residuals(rows)
    assert np.abs(base).max() < 1e-13
    for i in range(tab.num_stages):
        dw = np.zeros(tab.num_stages)
        dw[i] = delta
        assert np.abs(residuals(rows, dw) - base).max() > 1e-4 * delta
    for i, row in enumerate(rows):
        for j in range(1, len(row)):
            if row[j] == 0:
                continue
            moved = [list(r) for r in rows]
            moved[i][j] += delta
            moved[i][0] -= delta
            change = np.abs(residuals(moved) - base).max()
            assert change > 1e-4 * delta, (i + 2, j + 1, change)


@pytest.mark.parametrize("name", ["tsit5", "dopri5", "dopri8"])
def test_dense_continuity(name):
    tab, _, _, _, exact, _ = METHODS[name]
    assert _dense_weights(tab, 0) == (0,) * len(tab.dense)
    at_one = _dense_weights(tab, 1)
    b = tuple(tab.b) + ((Fraction(0),) if tab.fsal_dense else ())
    if exact:
        assert at_one == b
    else:
        # The paper's factored polynomials carry 16-19 digits.
        assert max(abs(float(x - y)) for x, y in zip(at_one, b)) < 1e-14


def _dense_derivative(tableau, theta):
    theta = Fraction(theta)
    return tuple(sum((j + 1) * coef * theta**j for j, coef in enumerate(row)) for row in tableau.dense)


def test_dopri8_dense_endpoints():
    """Dopri8's dense output is exact at both ends and C1 across steps (slopes k_1 and f(t1, y1))."""
    tab = DOPRI8_TABLEAU
    assert _dense_weights(tab, 0) == (0,) * 14
    assert _dense_weights(tab, 1) == tuple(tab.b) + (0,)
    assert _dense_derivative(tab, 0) == (1,) + (0,) * 13
    assert _dense_derivative(tab, 1) == (0,) * 13 + (1,)
    assert all(x == 0 for r in tab.dense[1:5] for x in r)  # stages 2-5 unused


def test_dopri8_dense_order_6_impossible():
    """No dense output of order 6 exists on Dopri8's 14 stages: for some power theta^j the
    required values sum_i P_ij Phi_i(tau) = [rho(tau) = j] / gamma(tau), rho(tau) <= 6, are not
    in the span of the Phi_i (while they are for order 5)."""
    rows = [list(map(float, r)) for r in _dense_stage_rows(DOPRI8_TABLEAU)]
    A = _a_matrix(rows)
    for order, expect_consistent in ((5, True), (6, False)):
        trees = trees_up_to(order)
        phi = _phi_matrix(A, trees)  # (stage, tree)
        worst = 0.0
        for j in range(1, order + 1):
            target = np.array([1 / gamma(t) if rho(t) == j else 0.0 for t in trees])
            x = np.linalg.lstsq(phi.T, target, rcond=1e-12)[0]
            worst = max(worst, np.abs(phi.T @ x - target).max())
        assert (worst < 1e-12) if expect_consistent else (worst > 1e-5), (order, worst)


@pytest.mark.parametrize("name", ["tsit5", "dopri5", "dopri8"])
@pytest.mark.parametrize("theta", ["1/5", "1/2", "2/3", "9/10", "1"])
def test_dense_order_conditions(name, theta):
    tab, _, _, dense_order, exact, tol = METHODS[name]
    phis = ElementaryWeights(_dense_stage_rows(tab))
    weights = _dense_weights(tab, Fraction(theta))
    _check(order_residuals(weights, phis, trees_up_to(dense_order), theta=Fraction(theta)), exact, tol)
    if theta != "1":  # the next order holds only at theta = 1
        residuals = order_residuals(weights, phis, trees_of_order(dense_order + 1), theta=Fraction(theta))
        # Dopri8's free parameters minimise the order-6 residuals: still >= 4.7e-7 at these theta.
        assert max(abs(float(r)) for r in residuals) > (1e-7 if name == "dopri8" else 1e-6)


# ---------------------------------------------------------------------------------------------
# Empirical convergence on
#     y1' = m11 y1 + m12 (y2 - y1^2),
#     y2' = m21 y1 + m22 (y2 - y1^2) + 2 y1 y1',
#     y3' = -cos(t) y3^2,
# i.e. z = (y1, y2 - y1^2) solves z' = M z (so y1 = z1, y2 = z2 + z1^2) and y3 = 1 / (1 + sin t).

_M = np.array([[-0.4, 2.0], [-2.5, -0.1]])
_Z0 = np.array([1.0, 0.5])


def _f(t, y):
    z = np.array([y[0], y[1] - y[0] ** 2])
    dz = _M @ z
    return np.array([dz[0], dz[1] + 2 * y[0] * dz[0], -np.cos(t) * y[2] ** 2])


def _exact(t):
    # exp(M t) for a 2x2 matrix with complex eigenvalues mu +- i nu.
    mu, nu = np.trace(_M) / 2, math.sqrt(np.linalg.det(_M) - (np.trace(_M) / 2) ** 2)
    expm = math.exp(mu * t) * (math.cos(nu * t) * np.eye(2) + math.sin(nu * t) / nu * (_M - mu * np.eye(2)))
    z = expm @ _Z0
    return np.array([z[0], z[1] + z[0] ** 2, 1 / (1 + math.sin(t))])


def _numeric(tab):
    s = tab.num_stages
    rows = _float_weights(tab) + ([list(map(float, tab.b))] if tab.fsal_dense else [])
    A = _a_matrix(rows)
    c = np.array([float(x) for x in tab.c] + ([1.0] if tab.fsal_dense else []))
    b = np.array([float(x) for x in tab.b] + ([0.0] if tab.fsal_dense else []))
    e = np.array([float(x) for x in tab.e] + ([0.0] if tab.fsal_dense else []))
    dense = None if tab.dense is None else np.array([[float(x) for x in r] for r in tab.dense])
    return s, A, c, b, e, dense


def _stages(num, t, y, h):
    _, A, c, _, _, _ = num
    k = np.zeros((len(c), len(y)))
    for i in range(len(c)):
        k[i] = _f(t + c[i] * h, y + h * (A[i, :i] @ k[:i]))
    return k


def _global_error(num, weights, n, t_end=2.0):
    """Max-norm error over all step points of n fixed steps on [0, t_end]."""
    h, t, y, error = t_end / n, 0.0, _exact(0.0), 0.0
    for _ in range(n):
        y = y + h * (weights @ _stages(num, t, y, h))
        t += h
        error = max(error, np.abs(y - _exact(t)).max())
    return error


def _slope(hs, errors):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


# Step counts on [0, 2] chosen so that errors are asymptotic but well above round-off. The
# fifth-order pairs have small leading error terms: at coarser steps (n < ~48) the higher-order
# terms dominate and the observed slopes are ~7, then dip below 5 before settling.
_STEPS = {"tsit5": [64, 96, 128, 192], "dopri5": [64, 96, 128, 192], "dopri8": [12, 16, 24, 32]}


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("which", ["b", "embedded"])
def test_convergence(name, which):
    tab, p, q, _, _, _ = METHODS[name]
    num = _numeric(tab)
    weights, order = (num[3], p) if which == "b" else (num[3] - num[4], q)
    ns = np.array(_STEPS[name])
    errors = [_global_error(num, weights, n) for n in ns]
    assert max(errors) < 1e-3 and min(errors) > 1e-13, errors
    slope = _slope(2.0 / ns, errors)
    assert abs(slope - order) < 0.3, (slope, errors)


# Dopri8's dense output has small order-6 error coefficients (the order-7 terms dominate the
# local error down to h ~ 0.1 here) and its error reaches rounding level below h ~ 0.02.
_DENSE_STEPS = {"tsit5": [0.1, 0.05, 0.025, 0.0125], "dopri5": [0.1, 0.05, 0.025, 0.0125], "dopri8": [0.08, 0.056, 0.04, 0.028]}


@pytest.mark.parametrize("name", ["tsit5", "dopri5", "dopri8"])
def test_dense_convergence(name):
    """Local error of the dense output after one step from the exact solution: O(h^(q+1))."""
    tab, _, _, dense_order, _, _ = METHODS[name]
    num = _numeric(tab)
    dense = num[5]
    t0, thetas, hs = 0.3, np.array([0.3, 0.5, 0.8]), np.array(_DENSE_STEPS[name])
    errors = []
    for h in hs:
        k = _stages(num, t0, _exact(t0), h)
        powers = thetas[:, None] ** np.arange(1, dense.shape[1] + 1)  # (theta, power)
        ys = _exact(t0) + h * (powers @ dense.T) @ k
        errors.append(max(np.abs(y - _exact(t0 + th * h)).max() for y, th in zip(ys, thetas)))
    assert min(errors) > 1e-13, errors
    slope = _slope(hs, errors)
    assert abs(slope - (dense_order + 1)) < 0.3, (slope, errors)
