"""Shared engine for explicit Runge--Kutta methods given by a `ButcherTableau`.

Stages are unrolled at trace time (the tableau is static method data), every linear combination
is one fused expression per leaf, and FSAL methods carry $f(t_1, y_1)$ into the next step.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._base import EmptyState, Solver
from ._tableau import ButcherTableau


class FSALState(NamedTuple):
    """Carried by first-same-as-last methods: $f(t, y)$ at the start of the next step."""

    f0: object


class PolynomialDense(NamedTuple):
    r"""Dense output $y_0 + h \sum_i b_i(\theta) k_i$ from the step's stages (stacked on axis 0)."""

    y0: object
    k: object


class HermiteDense(NamedTuple):
    """Cubic Hermite dense output from the end values and derivatives of a step."""

    y0: object
    y1: object
    f0: object
    f1: object


def _combine(y0, h, coeffs, ks):
    r"""$y_0 + h \sum_j c_j k_j$ leaf by leaf, skipping zero coefficients (exact method data)."""
    pairs = [(float(c), k) for c, k in zip(coeffs, ks) if c != 0]
    if not pairs:
        return y0
    weights = [c for c, _ in pairs]

    def leaf(y, *k_leaves):
        total = weights[0] * k_leaves[0]
        for w, k in zip(weights[1:], k_leaves[1:]):
            total = total + w * k
        return y + h.astype(y.dtype) * total

    return jax.tree.map(leaf, y0, *[k for _, k in pairs])


def _stages(tableau: ButcherTableau, f, t0, h, y0, args, k1):
    ks = [k1]
    y_stage = y0
    for i in range(1, tableau.num_stages):
        y_stage = _combine(y0, h, tableau.a[i - 1], ks)
        ks.append(f(t0 + float(tableau.c[i]) * h, y_stage, args))
    return ks, y_stage


def _erk_init(tableau: ButcherTableau, problem, t0, y0, args):
    if tableau.fsal:
        return FSALState(problem.vector_field(t0, y0, args))
    return EmptyState()


def _erk_step(tableau: ButcherTableau, hermite: bool, problem, t0, t1, y0, args, inc, state):
    del inc
    f = problem.vector_field
    t0, t1 = jnp.asarray(t0), jnp.asarray(t1)
    h = t1 - t0
    k1 = state.f0 if tableau.fsal else f(t0, y0, args)
    ks, y_last_stage = _stages(tableau, f, t0, h, y0, args, k1)
    if tableau.fsal:
        # The last stage is evaluated at y1 itself: reuse it rather than recombining.
        y1, f1 = y_last_stage, ks[-1]
        new_state = FSALState(f1)
    else:
        y1 = _combine(y0, h, tableau.b, ks)
        f1 = None
        new_state = state
    y_error = None
    if tableau.e is not None:
        y_error = _combine(jax.tree.map(jnp.zeros_like, y0), h, tableau.e, ks)
    if hermite:
        if f1 is None:
            # Only computed when dense output is used; XLA removes it otherwise.
            f1 = f(t1, y1, args)
        dense = HermiteDense(y0, y1, k1, f1)
    else:
        if tableau.fsal_dense:
            ks = ks + [f(t1, y1, args)]
        dense = PolynomialDense(y0, jax.tree.map(lambda *k: jnp.stack(k), *ks))
    return y1, y_error, dense, new_state


def _theta(t0, t1, t):
    h = t1 - t0
    return h, jnp.where(h == 0, 0.0, (t - t0) / jnp.where(h == 0, 1.0, h))


def _polynomial_interpolate(powers: np.ndarray, dense: PolynomialDense, t0, t1, t):
    h, theta = _theta(t0, t1, t)
    # b_i(θ) by Horner's rule on the static coefficient columns: no pow (exp/log) calls.
    columns = [jnp.asarray(powers[:, j], theta.dtype) for j in range(powers.shape[1])]
    weights = columns[-1]
    for column in reversed(columns[:-1]):
        weights = weights * theta + column
    weights = weights * theta

    def leaf(y, k):
        # Unrolled over the (static) stages: one fused elementwise expression. A dot or a reduction
        # over the stage axis is several times slower on CPU, especially under vmap.
        w = (h * weights).astype(y.dtype)
        total = w[0] * k[0]
        for i in range(1, k.shape[0]):
            total = total + w[i] * k[i]
        return y + total

    return jax.tree.map(leaf, dense.y0, dense.k)


def hermite_interpolate(dense: HermiteDense, t0, t1, t):
    """Cubic Hermite interpolation: third order, exact at both ends of the step."""
    h, theta = _theta(t0, t1, t)
    theta2 = theta * theta
    theta3 = theta2 * theta
    c_y0 = 2 * theta3 - 3 * theta2 + 1
    c_f0 = (theta3 - 2 * theta2 + theta) * h
    c_y1 = 3 * theta2 - 2 * theta3
    c_f1 = (theta3 - theta2) * h

    def leaf(y0, y1, f0, f1):
        dt = y0.dtype
        return c_y0.astype(dt) * y0 + c_f0.astype(dt) * f0 + c_y1.astype(dt) * y1 + c_f1.astype(dt) * f1

    return jax.tree.map(leaf, dense.y0, dense.y1, dense.f0, dense.f1)


def _dense_matrix(tableau: ButcherTableau) -> np.ndarray:
    rows = tableau.dense
    degree = max(len(r) for r in rows)
    return np.array([[float(x) for x in r] + [0.0] * (degree - len(r)) for r in rows])


def explicit_rk_solver(
    name: str,
    tableau: ButcherTableau,
    order: int,
    embedded_order: int | None,
    interpolation_order: int,
) -> Solver:
    """Build a `Solver` from a tableau. Dense output is the tableau's polynomial continuous
    extension when it has one, else cubic Hermite (using $f(t_1, y_1)$, free for FSAL methods)."""
    hermite = tableau.dense is None
    if hermite:
        interpolate = hermite_interpolate
        dense_fevals = 0 if tableau.fsal else 1
    else:
        interpolate = functools.partial(_polynomial_interpolate, _dense_matrix(tableau))
        dense_fevals = 1 if tableau.fsal_dense else 0
    fsal = tableau.fsal
    return Solver(
        name=name,
        init=functools.partial(_erk_init, tableau),
        step=functools.partial(_erk_step, tableau, hermite),
        interpolate=interpolate,
        order=order,
        embedded_order=embedded_order,
        interpolation_order=interpolation_order,
        fevals_per_step=tableau.num_stages - 1 if fsal else tableau.num_stages,
        init_fevals=1 if fsal else 0,
        dense_fevals=dense_fevals,
    )
