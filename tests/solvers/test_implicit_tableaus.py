"""Implicit and IMEX tableaus against their order conditions, nodes and stability properties.

Pure numpy / fractions. For an ESDIRK the Butcher conditions $\\sum_i b_i \\Phi_i(\\tau) = 1/\\gamma(\\tau)$
over rooted trees; for an additive (IMEX) pair the coupled conditions over trees whose non-root
vertices are coloured explicit or implicit (each vertex's coefficients from its colour's matrix),
since both parts share $b$. Residuals are exact rational arithmetic on the stored numbers.
"""

import functools
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from sdekit.solvers._implicit_euler import IMPLICIT_EULER_TABLEAU
from sdekit.solvers._kencarp3 import KENCARP3_TABLEAU
from sdekit.solvers._kencarp4 import KENCARP4_TABLEAU
from sdekit.solvers._kencarp5 import KENCARP5_TABLEAU
from sdekit.solvers._kvaerno3 import GAMMA as GAMMA3, KVAERNO3_TABLEAU
from sdekit.solvers._kvaerno4 import GAMMA as GAMMA4, KVAERNO4_TABLEAU
from sdekit.solvers._kvaerno5 import KVAERNO5_TABLEAU

# name -> (tableau, order, embedded order, tolerance on the residuals: 0 means exact)
METHODS = {
    "implicit_euler": (IMPLICIT_EULER_TABLEAU, 1, 1, 0),
    # Coefficients are exact rational functions of gamma: the conditions hold exactly.
    "kvaerno3": (KVAERNO3_TABLEAU, 3, 2, 0),
    "kvaerno4": (KVAERNO4_TABLEAU, 4, 3, 0),
    # Published 17-digit decimals.
    "kvaerno5": (KVAERNO5_TABLEAU, 5, 4, 1e-14),
    # Published rationals approximating the real coefficients (ARK5(4)8L[2]SA's to ~2e-12).
    "kencarp3": (KENCARP3_TABLEAU, 3, 2, 1e-14),
    "kencarp4": (KENCARP4_TABLEAU, 4, 3, 1e-14),
    "kencarp5": (KENCARP5_TABLEAU, 5, 4, 5e-12),
}


def _grow(tree):
    yield tuple(sorted(tree + ((),)))
    for k, child in enumerate(tree):
        for grown in _grow(child):
            yield tuple(sorted(tree[:k] + (grown,) + tree[k + 1:]))


@functools.cache
def trees_of_order(n):
    if n == 1:
        return ((),)
    return tuple(sorted({g for t in trees_of_order(n - 1) for g in _grow(t)}))


@functools.cache
def rho(tree):
    return 1 + sum(rho(child) for child in tree)


@functools.cache
def gamma(tree):
    return rho(tree) * math.prod(gamma(child) for child in tree)


def _nodes(tree):
    return rho(tree) - 1  # non-root vertices


def _phi(tree, matrices, colours):
    """Elementary weights per stage, vertices (depth first) coloured by `colours`."""
    colours = list(colours)

    def go(t):
        v = np.array([Fraction(1)] * matrices[0].shape[0], dtype=object)
        for child in t:
            colour = colours.pop(0)
            v = v * matrices[colour].dot(go(child))
        return v

    return go(tree)


def residuals(tab, weights, order):
    """All order-condition residuals up to `order` (coloured trees for an IMEX pair)."""
    matrices = [tab.implicit_matrix()] + ([tab.explicit_matrix()] if tab.a_explicit is not None else [])
    out = []
    for n in range(1, order + 1):
        for tree in trees_of_order(n):
            for colours in itertools.product(range(len(matrices)), repeat=_nodes(tree)):
                phi = _phi(tree, matrices, colours)
                out.append(sum(Fraction(w) * p for w, p in zip(weights, phi)) - Fraction(1, gamma(tree)))
    return out


def _check(res, tol):
    worst = max(abs(float(r)) for r in res)
    if tol == 0:
        assert all(r == 0 for r in res), worst
    else:
        assert worst < tol, worst


@pytest.mark.parametrize("name", list(METHODS))
def test_order_conditions(name):
    tab, order, embedded_order, tol = METHODS[name]
    _check(residuals(tab, tab.b, order), tol)
    embedded = [b - e for b, e in zip(tab.b, tab.e)]
    _check(residuals(tab, embedded, embedded_order), tol)
    # Discriminating: the next order fails clearly (and so does a perturbed weight).
    assert max(abs(float(r)) for r in residuals(tab, tab.b, order + 1)) > 1e-4
    perturbed = list(tab.b)
    perturbed[0] += Fraction(1, 10**6)
    assert max(abs(float(r)) for r in residuals(tab, perturbed, order)) > 1e-8


@pytest.mark.parametrize("name", list(METHODS))
def test_nodes_are_row_sums(name):
    tab, _, _, tol = METHODS[name]
    tol = max(tol, 1e-15)
    for matrix in [tab.implicit_matrix()] + ([tab.explicit_matrix()] if tab.a_explicit is not None else []):
        sums = [sum(row) for row in matrix]
        assert max(abs(float(s - c)) for s, c in zip(sums, tab.c)) <= max(tol, 1e-15)
    assert tab.c[0] == 0 and all(row[i + 1] == tab.gamma for i, row in enumerate(tab.implicit_matrix()[1:]))


def exact_stability(tab, z: Fraction) -> Fraction:
    """$R(z)$ in rational arithmetic (forward substitution: A is lower triangular)."""
    a, k = tab.implicit_matrix(), []
    for i in range(a.shape[0]):
        k.append((1 + z * sum(a[i][j] * k[j] for j in range(i))) / (1 - z * a[i][i]))
    return 1 + z * sum(b * ki for b, ki in zip(tab.b, k))


def stability(tab, z):
    """$R(z) = 1 + z b^T (I - zA)^{-1} 1$ of the implicit method."""
    a = tab.implicit_matrix().astype(float)
    b = np.array([float(x) for x in tab.b])
    s = a.shape[0]
    return np.array([1 + zi * b @ np.linalg.solve(np.eye(s) - zi * a, np.ones(s)) for zi in z])


@pytest.mark.parametrize("name", list(METHODS))
def test_a_and_l_stable(name):
    tab = METHODS[name][0]
    # A-stable: |R| <= 1 on the imaginary axis (R is analytic in the left half-plane: the
    # maximum principle) and on a sample of the left half-plane.
    y = np.concatenate([-np.logspace(-3, 6, 400), np.logspace(-3, 6, 400)])
    assert np.max(np.abs(stability(tab, 1j * y))) <= 1 + 1e-12
    rng = np.random.default_rng(0)
    z = -np.abs(rng.standard_normal(300)) * np.logspace(-2, 4, 300) + 1j * rng.standard_normal(300) * 50
    assert np.max(np.abs(stability(tab, z))) <= 1 + 1e-12
    # L-stable: R(z) -> 0 as z -> -inf (like 1/z).
    assert abs(exact_stability(tab, Fraction(-10**12))) < 1e-9
    assert tab.stiffly_accurate == (tab.a_explicit is None)


def test_gammas_are_the_l_stable_roots():
    # Kvaerno's gamma for the 3(2) and 4(3) pairs: roots of these polynomials, to 35 digits.
    assert abs(6 * GAMMA3**3 - 18 * GAMMA3**2 + 9 * GAMMA3 - 1) < Fraction(1, 10**33)
    assert abs(24 * GAMMA4**4 - 96 * GAMMA4**3 + 72 * GAMMA4**2 - 16 * GAMMA4 + 1) < Fraction(1, 10**33)


def test_kvaerno5_nodes_match_published():
    published = [0.52, 1.230333209967908, 0.8957659843500759, 0.43639360985864756, 1.0, 1.0]
    np.testing.assert_allclose([float(c) for c in KVAERNO5_TABLEAU.c[1:]], published, rtol=0, atol=2e-16)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_stage_predictor_is_exact_on_low_degree_polynomials(name):
    """The Newton starting guess of each stage: the weights reproduce every polynomial in c of
    degree below the number of distinct earlier nodes used (at most PREDICTOR_POINTS), so a
    derivative that is smooth in time is predicted to that order; the first stage after the
    explicit one is the previous stage's derivative."""
    from sdekit.solvers._implicit_rk import PREDICTOR_POINTS, predictor_weights

    c = METHODS[name][0].arrays()["c"]
    weights = predictor_weights(c, PREDICTOR_POINTS)
    assert np.all(weights[0] == 0) and (len(c) < 2 or weights[1, 0] == 1.0)
    for i in range(1, len(c)):
        used = np.flatnonzero(weights[i])
        distinct = len(set(np.round(c[:i], 12)))
        assert len(used) == min(PREDICTOR_POINTS, distinct) or (len(used) < min(PREDICTOR_POINTS, distinct)
                                                                 and np.any(np.isclose(c[used], c[i])))
        for degree in range(len(used)):
            np.testing.assert_allclose(weights[i] @ c**degree, c[i] ** degree, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Radau IIA


class _FullTableau:
    """A fully implicit tableau (Radau IIA) in the shape `residuals` and `stability` read."""

    a_explicit = None

    def __init__(self, a, b):
        self.a, self.b = a, b

    def implicit_matrix(self):
        return np.array([[Fraction(float(x)) for x in row] for row in self.a], dtype=object)


def test_radau5_tableau_is_the_order_5_collocation_method():
    from sdekit.solvers._radau5 import A, C

    tab = _FullTableau(A, A[-1])
    assert max(abs(float(r)) for r in residuals(tab, tab.b, 5)) < 1e-14
    assert max(abs(float(r)) for r in residuals(tab, tab.b, 6)) > 1e-4
    # Stage order 3 (collocation: A c^(k-1) = c^k / k), rows summing to the nodes.
    for k in (1, 2, 3):
        np.testing.assert_allclose(A @ C ** (k - 1), C**k / k, rtol=0, atol=1e-15)
    # The nodes are the right Radau points: zeros of P_3(2x - 1) - P_2(2x - 1).
    legendre = np.polynomial.legendre
    np.testing.assert_allclose(legendre.legval(2 * C - 1, [0, 0, -1, 1]), 0, atol=1e-14)
    # L-stable: A-stable on the imaginary axis and R(z) -> 0 as z -> -inf.
    y = np.concatenate([-np.logspace(-3, 6, 400), np.logspace(-3, 6, 400)])
    assert np.max(np.abs(stability(tab, 1j * y))) <= 1 + 1e-12
    assert np.max(np.abs(stability(tab, np.array([-1e8])))) < 1e-7


def test_radau5_transformed_newton_solve_and_error_constants():
    """The eigen-transformed solve of (I - h A (x) J) r, done with one real and one complex
    n x n system, equals the dense 3n x 3n solve; the error weights are Hairer's RADAU5 ones."""
    from sdekit.solvers._radau5 import A, ERROR_WEIGHTS, LAMBDA_0, LAMBDA_1, V_0, V_1, W_0, W_1

    rng = np.random.default_rng(0)
    n, h = 4, 0.3
    jacobian = rng.standard_normal((n, n)) * 5
    r = rng.standard_normal((3, n))
    dense = np.linalg.solve(np.eye(3 * n) - h * np.kron(A, jacobian), r.reshape(-1)).reshape(3, n)
    x0 = np.linalg.solve(LAMBDA_0 * np.eye(n) - h * jacobian, LAMBDA_0 * W_0 @ r)
    x1 = np.linalg.solve(LAMBDA_1 * np.eye(n) - h * jacobian, LAMBDA_1 * W_1 @ r)
    np.testing.assert_allclose(np.outer(V_0, x0) + 2 * np.real(np.outer(V_1, x1)), dense, rtol=1e-12, atol=1e-12)
    s6 = math.sqrt(6)
    np.testing.assert_allclose(ERROR_WEIGHTS, np.array([-(13 + 7 * s6), -13 + 7 * s6, -1]) / 3, rtol=1e-13)
    np.testing.assert_allclose(1 / LAMBDA_0, np.max(np.linalg.eigvals(A).real[np.abs(np.linalg.eigvals(A).imag) < 1e-12]),
                               rtol=1e-13)
