r"""Radau IIA of order 5: three-stage collocation at the Radau points, L-stable, stiffly accurate.

The stages $Z_i = Y_i - y_0$ solve the coupled system $Z = h (A \otimes I) F(Z)$, with
$F_i = f(t_0 + c_i h, y_0 + Z_i)$, by a simplified Newton iteration whose matrix
$I - h A \otimes J$ is never formed: with $A^{-1} = V \Lambda V^{-1}$ (one real eigenvalue
$\lambda_0$ and a complex pair $\lambda_1, \bar\lambda_1$),

$$(I - hA\otimes J)^{-1} r = \sum_k V_{:k} \otimes (\lambda_k I - hJ)^{-1} \lambda_k (V^{-1} r)_k,$$

so each step factorises one real and one complex $n \times n$ matrix (Hairer & Wanner's
transformation), and the conjugate term is the complex one's conjugate. The iteration starts
from the last step's collocation polynomial, extrapolated. The error estimate is the difference
with an order-3 embedded formula $\hat y_1 = y_0 + h(\hat\gamma f_0 + \sum_j \hat b_j F_j)$,
$\hat\gamma = 1/\lambda_0$, filtered by $(I - h\hat\gamma J)^{-1}$ (the real factorisation) so
that it stays bounded on stiff components. Dense output is the collocation polynomial.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..terms import split_parts
from . import _newton
from ._base import Solver
from ._weighted import weighted_rows

#: Contraction rate above which the next step starts with a fresh Jacobian (scipy's Radau:
#: 1e-3). At the ESDIRKs' 0.05 this method took 10-30% more evaluations on Robertson and Van der
#: Pol at rtol 1e-8 (fewer Jacobians, more iterations); a Jacobian here costs about n evaluations
#: in one batched forward-mode pass.
REFRESH_RATE = 1e-3

_S6 = math.sqrt(6.0)
#: The Radau points (zeros of the Radau polynomial), then the collocation matrix (Hairer & Wanner,
#: Solving ODEs II, Table IV.5.6); b is A's last row (stiffly accurate).
C = np.array([(4 - _S6) / 10, (4 + _S6) / 10, 1.0])
A = np.array([
    [(88 - 7 * _S6) / 360, (296 - 169 * _S6) / 1800, (-2 + 3 * _S6) / 225],
    [(296 + 169 * _S6) / 1800, (88 + 7 * _S6) / 360, (-2 - 3 * _S6) / 225],
    [(16 - _S6) / 36, (16 + _S6) / 36, 1 / 9],
])
A_INV = np.linalg.inv(A)


def _eigen():
    """`(lambda_0, lambda_1, v_0, v_1, w_0, w_1)`: the real eigenvalue of A^-1 and the one with
    positive imaginary part, their eigenvectors (v_0 real) and the matching rows of V^-1."""
    lam, vectors = np.linalg.eig(A_INV)
    real, cplx = int(np.argmin(np.abs(lam.imag))), int(np.argmax(lam.imag))
    v0 = vectors[:, real] / vectors[np.argmax(np.abs(vectors[:, real])), real]
    v = np.stack([v0, vectors[:, cplx], vectors[:, cplx].conj()], axis=1)
    w = np.linalg.inv(v)
    return lam[real].real, lam[cplx], v0.real, v[:, 1], w[0].real, w[1]


LAMBDA_0, LAMBDA_1, V_0, V_1, W_0, W_1 = _eigen()


def _embedded():
    r"""Error weights $d$ with $\hat y_1 - y_1 = \hat\gamma (h f_0 + \sum_j d_j Z_j)$: $\hat b$
    from the quadrature conditions of order 3 (with $\hat b_0 = \hat\gamma$ at $c = 0$), and
    $\sum_j (\hat b - b)_j F_j h = \sum_j ((\hat b - b) A^{-1})_j Z_j$."""
    gamma_hat = 1 / LAMBDA_0
    vandermonde = np.stack([C**0, C, C**2])
    b_hat = np.linalg.solve(vandermonde, np.array([1 - gamma_hat, 1 / 2, 1 / 3]))
    return (b_hat - A[-1]) @ A_INV * LAMBDA_0


#: Hairer's RADAU5 constants: d = (-(13 + 7 sqrt 6), -13 + 7 sqrt 6, -1) / 3 (the test checks them).
ERROR_WEIGHTS = _embedded()


def collocation_weights(theta):
    r"""`(..., 3)`: the Lagrange basis on the nodes $(0, c_1, c_2, c_3)$ for $c_1..c_3$ at `theta`
    (the collocation polynomial is $y_0 + \sum_j L_j(\theta) Z_j$; node 0 carries $Z = 0$)."""
    theta = jnp.asarray(theta)
    columns = []
    for j in range(3):
        w = theta / C[j]
        for m in range(3):
            if m != j:
                w = w * (theta - C[m]) / (C[j] - C[m])
        columns.append(w)
    return jnp.stack(columns, axis=-1)


def newton_kappa(rtol, dtype):
    r"""Newton's stopping constant for Radau IIA: $\kappa = \max(10\epsilon/r, \min(0.03, \sqrt{r}))$
    with $r$ the relative tolerance (Hairer's RADAU5 rule). The embedded estimate (order 3) is
    far above the order-5 solution's own error, so an iteration error of a fixed 1e-2 of the
    tolerance would dominate the result: on Robertson at rtol 1e-8 it left an error of 7.6e-9
    against 8.9e-12 with this rule (benchmarks/results/stiff.md)."""
    eps = jnp.finfo(dtype).eps
    return jnp.maximum(10 * eps / rtol, jnp.minimum(0.03, jnp.sqrt(rtol)))


class CollocationDense(NamedTuple):
    """Dense output of a Radau IIA step: the start and the stage increments `z` (each leaf of the
    state with a leading axis of 3)."""

    y0: object
    z: object


def collocation_interpolate(dense: CollocationDense, t0, t1, t):
    """The step's collocation polynomial at `t` (order 3 inside the step, exact at the ends)."""
    h = jnp.asarray(t1) - jnp.asarray(t0)
    theta = jnp.where(h == 0, 0.0, (t - t0) / jnp.where(h == 0, 1.0, h))
    weights = collocation_weights(theta)
    return jax.tree.map(lambda y, z: y + jnp.tensordot(weights.astype(y.dtype), z, axes=1), dense.y0, dense.z)


class History(NamedTuple):
    """The last step's stage increments `(3, n)` and length (0 before the first step)."""

    z: jax.Array
    h: jax.Array


def _init(options, problem, t0, y0, args):
    v0, flat = _newton.flat_field(problem.vector_field, y0, args)
    f0 = flat.f(jnp.asarray(t0), v0)
    history = History(jnp.zeros((3,) + v0.shape, v0.dtype), jnp.zeros((), v0.dtype))
    return _newton.initial_state(options, y0, f0, history)


def _starting_stages(history: History, h, v0):
    """The last step's collocation polynomial at this step's nodes (0 at the first step)."""
    valid = history.h != 0
    ratio = h / jnp.where(valid, history.h, 1)
    extrapolated = weighted_rows(collocation_weights(1 + jnp.asarray(C, v0.dtype) * ratio), history.z) - history.z[2][None]
    return v0[None] + jnp.where(valid, extrapolated, 0)


class _Outcome(NamedTuple):
    stages: jax.Array  # (3 n,) stage values
    error: jax.Array  # (n,) filtered error estimate


def _attempt(options, flat, t0, h, v0, f0, start, state, jacobian) -> _newton.Attempt:
    n, dtype = v0.shape[0], v0.dtype
    hy = h.astype(dtype)
    eye = _newton.identity(n, dtype)
    solve_real = _newton.factorised_solver(LAMBDA_0 * eye - hy * jacobian)
    complex_dtype = jnp.complex128 if dtype == jnp.float64 else jnp.complex64
    solve_complex = _newton.factorised_solver(LAMBDA_1 * eye.astype(complex_dtype) - (hy * jacobian).astype(complex_dtype))
    w0, w1 = jnp.asarray(LAMBDA_0 * W_0, dtype), jnp.asarray(LAMBDA_1 * W_1, complex_dtype)
    v_0, v_1 = jnp.asarray(V_0, dtype), jnp.asarray(V_1, complex_dtype)

    def solve(r):
        r = r.reshape(3, n)
        x0 = solve_real(weighted_rows(w0, r))
        x1 = solve_complex(weighted_rows(w1, r.astype(complex_dtype)))
        return (jnp.outer(v_0, x0) + 2 * jnp.real(jnp.outer(v_1, x1))).reshape(-1)

    times = t0 + jnp.asarray(C, t0.dtype) * h
    a = jnp.asarray(A, dtype)

    def residual(stages):
        y = stages.reshape(3, n)
        return (y - v0[None] - hy * weighted_rows(a, jax.vmap(flat.f)(times, y))).reshape(-1)

    result = _newton.chord(residual, solve, start.reshape(-1), _newton.tolerances(state, jnp.tile(v0, 3)),
                           state.eta, jnp.ones((), bool), _newton.tangent_solver(options), state.tied,
                           newton_kappa(_newton.floored_rtol(state, dtype), dtype), first_may_stop=False)
    z = result.z.reshape(3, n) - v0[None]
    weighted = weighted_rows(jnp.asarray(ERROR_WEIGHTS, dtype), z)
    error = solve_real(hy * f0 + weighted)
    # A step the estimate would reject (adaptive steps) gets Hairer's second estimate, with f at
    # y0 + error in place of f0: the first overestimates stiff components on steps much longer
    # than their time scale (and at the first step), which would reject steps that are accurate.
    scale = _newton.tolerances(state, v0)(v0 + z[2])  # the controller's scale: atol + rtol max(|y0|, |y1|)
    refine = state.tied & result.converged & (_newton.rms(error / scale) > 1)
    error = lax.cond(refine, lambda: solve_real(hy * flat.f(t0, v0 + error) + weighted), lambda: error)
    fevals = 3 * result.iterations + refine.astype(jnp.int32)
    return _newton.Attempt(_Outcome(result.z, error), result.converged, result.eta, result.rate, fevals)


def _step(options, problem, t0, t1, y0, args, inc, state):
    del inc
    t0, t1 = jnp.asarray(t0), jnp.asarray(t1)
    h = t1 - t0
    direction = split_parts(problem)[2]
    v0, flat = _newton.flat_field(problem.vector_field, y0, args)
    dtype, n = v0.dtype, v0.shape[0]
    f0 = state.f0
    start = _starting_stages(state.history, h.astype(dtype), v0)
    template = _newton.Attempt(_Outcome(start.reshape(-1), v0), jnp.zeros((), bool),
                               jnp.zeros((), dtype), jnp.zeros((), dtype), jnp.zeros((), jnp.int32))
    tried, jacobian, _, fevals = _newton.with_fresh_retry(
        functools.partial(_attempt, options, flat, t0, h, v0, f0, start, state),
        lambda: _newton.jacobian_at(options, flat, t0, v0, args, direction),
        state,
        template,
    )
    failed = ~tried.converged
    z = tried.outcome.stages.reshape(3, n) - v0[None]
    hy = h.astype(dtype)
    # f(t1, y1) from the stage equations (F = A^-1 Z / h), not a new evaluation: for stiff
    # problems f amplifies the iteration's error by the stiffness (Shampine).
    f1 = weighted_rows(jnp.asarray(A_INV[2], dtype), z) / jnp.where(hy == 0, 1, hy)
    unravel = flat.unravel
    y1 = _newton.failed_to_nan(failed, unravel(v0 + z[2]))
    y_error = _newton.failed_to_inf(failed, unravel(tried.outcome.error))
    new_state = _newton.next_state(state, tried, jacobian, _newton.failed_to_nan(failed, f1), fevals, REFRESH_RATE)
    new_state = new_state._replace(history=History(z, hy))
    return y1, y_error, CollocationDense(y0, jax.vmap(unravel)(z)), new_state


@functools.cache
def radau5(jacobian=None) -> Solver:
    r"""Radau IIA of order 5: three-stage collocation, L-stable and stiffly accurate.

    Order 5 on ODEs (stage order 3), with an embedded order-3 estimate filtered through
    $(I - h\hat\gamma J)^{-1}$; dense output by the collocation polynomial (order 3). The three
    coupled stages are solved together by a simplified Newton iteration through one real and
    one complex LU factorisation per step (Hairer & Wanner's eigen-transformation), started from
    the previous step's collocation polynomial; the Jacobian is reused across steps until the
    iteration slows. Fewer evaluations than an ESDIRK of the same order at equal error; the
    method of scipy's `Radau` and Hairer's RADAU5, best with their step-size strategy,
    `sk.PID(rtol, atol, predictive=True)`. For large states use
    `kvaerno5(linear_solver="gmres")`: this method factorises dense matrices.

    Args:
        jacobian: `None` (`jax.jacfwd`), or `jacobian(t, y, args) -> (n, n)` for the flattened state.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> def robertson(t, y, args):
        ...     a, b, c = y
        ...     return jnp.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b**2, 3e7 * b**2])
        >>> sol = sk.solve(sk.ODE(robertson), sk.solvers.radau5(), 0.0, 100.0, jnp.array([1.0, 0.0, 0.0]),
        ...                controller=sk.PID(rtol=1e-4, atol=1e-8, predictive=True))
        >>> round(float(sol.ys[-1, 0]), 3), int(sol.result)
        (0.617, 0)

    References:
        E. Hairer, G. Wanner, Solving ODEs II (2nd ed., 1996), Sec. IV.5 and IV.8; B. L. Ehle,
        "On Padé approximations to the exponential function and A-stable methods for the
        numerical solution of initial value problems" (1969).
    """
    options = _newton.check_options("radau5", jacobian, "lu")
    return Solver(
        name="radau5",
        init=functools.partial(_init, options),
        step=functools.partial(_step, options),
        interpolate=collocation_interpolate,
        order=5,
        embedded_order=3,
        interpolation_order=3,
        # The places a step's code calls the vector field, as traced (the Jacobian, the Newton
        # iteration, vmapped over the stages, the residual its implicit-function rule
        # differentiates, the second error estimate); the evaluations made vary with the
        # Newton iterations and are counted from the state (`sol.stats["num_fevals"]`).
        fevals_per_step=4,
        init_fevals=1,
    )
