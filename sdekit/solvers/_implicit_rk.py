r"""Shared engine for ESDIRK and IMEX (additive) Runge--Kutta methods given by an `ImplicitTableau`.

The state is flattened to one vector (`ravel_pytree`); the stages run in a `lax.scan` over the
tableau's rows (one traced copy of the vector field and of the Newton loop, whatever the number
of stages: small programs, fast compiles); each implicit stage is a chord iteration
(`_newton.chord`) sharing one factorisation of $I - h\gamma J$ per step, started from the
stage derivative predicted by the earlier stages (`predictor_weights`). A step whose Newton
iteration fails even with a fresh Jacobian returns NaN and an infinite error (the loop rejects
it and keeps its state) and reports `RESULTS.implicit_solve_failed` in its state.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from ..terms import split_parts
from . import _newton
from ._base import Solver
from ._explicit_rk import HermiteDense, hermite_interpolate
from ._implicit_tableau import ImplicitTableau
from ._weighted import weighted_rows


#: Earlier stages whose derivatives predict a stage's (the Newton iteration's starting guess):
#: the polynomial through the most recent ones at distinct nodes, at the stage's node. A
#: quadratic (3) took 15-27% fewer evaluations than the previous stage's derivative (1) on
#: Robertson, Van der Pol and HIRES with Kvaerno 5; 2 and 4-6 points did no better than 3.
PREDICTOR_POINTS = 3


def predictor_weights(c: np.ndarray, points: int) -> np.ndarray:
    r"""`(s, s)` weights $P$: stage $i$'s guess for its derivative is $\sum_j P_{ij} k_j$, the
    Lagrange polynomial through the (up to) `points` most recent earlier stages with distinct
    nodes, at $c_i$ (`points=1`: the previous stage's derivative)."""
    s = len(c)
    weights = np.zeros((s, s))
    for i in range(1, s):
        chosen = []
        for j in range(i - 1, -1, -1):
            if len(chosen) < points and all(abs(c[j] - c[m]) > 1e-12 for m in chosen):
                chosen.append(j)
        for j in chosen:
            weights[i, j] = np.prod([(c[i] - c[m]) / (c[j] - c[m]) for m in chosen if m != j])
    return weights


def _with_explicit(implicit, explicit):
    """`implicit + explicit`, where `explicit` is `None` without an explicit part."""
    return implicit if explicit is None else implicit + explicit


class _Stages(NamedTuple):
    k_implicit: jax.Array  # (s, n)
    #: (s, n); `None` without an explicit part, rather than zeros that XLA:CPU would write and
    #: carry through the stage loop in kernels of their own.
    k_explicit: jax.Array | None
    z_last: jax.Array  # the last stage's value

    def k_total(self):
        return _with_explicit(self.k_implicit, self.k_explicit)


def _init(tableau: ImplicitTableau, options: _newton.NewtonOptions, problem, t0, y0, args):
    f0 = ()
    if tableau.stiffly_accurate:
        f0 = problem.vector_field(t0, y0, args)
    return _newton.initial_state(options, y0, f0)


class _Context(NamedTuple):
    """What every try at a step reads."""

    flat_implicit: _newton.Flat
    flat_explicit: _newton.Flat | None
    t0: jax.Array
    h: jax.Array
    v0: jax.Array
    #: The stage loop's starting buffers: `(s, n)`, the first stage's derivative in row 0.
    start: _Stages
    scale: jax.Array
    eta: jax.Array
    tied: jax.Array
    #: `(s, n)` additive shifts of the stages' values (an SDE's noise; `None` for ODEs).
    stage_noise: jax.Array | None = None


def _attempt(tableau: ImplicitTableau, options, ctx: _Context, jacobian) -> _newton.Attempt:
    """All stages with one Jacobian: the stages' derivatives, whether every Newton iteration
    converged, the last eta, the largest rate and the evaluations made."""
    arrays = tableau.arrays()
    s, v0 = tableau.num_stages, ctx.v0
    dtype = v0.dtype
    h = ctx.h.astype(dtype)
    h_gamma = h * jnp.asarray(arrays["gamma"], dtype)
    solve = _newton.linear_solver(options, ctx.flat_implicit, jacobian, h_gamma, ctx.t0, v0)
    explicit = ctx.flat_explicit is not None

    class _Carry(NamedTuple):
        k_implicit: jax.Array
        k_explicit: jax.Array | None
        z: jax.Array
        eta: jax.Array
        ok: jax.Array
        rate: jax.Array
        fevals: jax.Array

    def stage(c: _Carry, xs):
        index, a_row, ae_row, node, p_row, *noise_row = xs
        weighted = weighted_rows(a_row, c.k_implicit)
        if explicit:
            weighted = weighted + weighted_rows(ae_row, c.k_explicit)
        base = v0 + h * weighted
        if noise_row:
            base = base + noise_row[0]
        t_stage = ctx.t0 + node * ctx.h
        result = _newton.chord(
            lambda z: z - base - h_gamma * ctx.flat_implicit.f(t_stage, z), solve, base + h_gamma * weighted_rows(p_row, c.k_implicit),
            ctx.scale, c.eta, c.ok, _newton.tangent_solver(options), ctx.tied,
        )
        # The stage's derivative from the stage equation itself, not f(z): for stiff problems
        # f amplifies the iteration's error by the stiffness (Shampine). A step of length zero
        # (a finished lane of a vmapped loop) has k = 0, not 0/0: its NaN would reach the
        # gradient through the discarded step (0 * NaN).
        k = (result.z - base) / jnp.where(h_gamma == 0, 1, h_gamma)
        fevals = c.fevals + result.iterations
        k_implicit = c.k_implicit.at[index].set(k)
        k_explicit = c.k_explicit
        if explicit:
            k_explicit = k_explicit.at[index].set(ctx.flat_explicit.f(t_stage, result.z))
            fevals = fevals + 1
        return _Carry(k_implicit, k_explicit, result.z, result.eta, c.ok & result.converged,
                      jnp.maximum(c.rate, result.rate), fevals), None

    start = _Carry(ctx.start.k_implicit, ctx.start.k_explicit, v0, ctx.eta, jnp.ones((), bool),
                   jnp.zeros((), dtype), jnp.zeros((), jnp.int32))
    xs = (
        np.arange(1, s, dtype=np.int32),  # a constant, not an iota kernel
        jnp.asarray(arrays["a"][1:], dtype),
        jnp.asarray(arrays["a_explicit"][1:], dtype) if explicit else None,
        jnp.asarray(arrays["c"][1:], ctx.h.dtype),
        jnp.asarray(predictor_weights(arrays["c"], PREDICTOR_POINTS)[1:], dtype),
    ) + (() if ctx.stage_noise is None else (ctx.stage_noise[1:],))
    c, _ = lax.scan(stage, start, xs)
    return _newton.Attempt(_Stages(c.k_implicit, c.k_explicit, c.z), c.ok, c.eta, c.rate, c.fevals)


def _template(start: _Stages) -> _newton.Attempt:
    """An attempt's shapes, from arrays the step computes anyway: zeros would be written by
    kernels of their own (XLA:CPU), each step, only to be overwritten by the first attempt."""
    zero = jnp.zeros((), start.z_last.dtype)
    return _newton.Attempt(start, jnp.zeros((), bool), zero, zero, jnp.zeros((), jnp.int32))


def _with_first_row(s: int, k0):
    """An `(s, n)` stage buffer holding `k0` in row 0 and zeros below."""
    return jnp.zeros((s,) + k0.shape, k0.dtype).at[0].set(k0)


class SolvedStages(NamedTuple):
    """One step's stages, solved: what a method forms its solution, error and state from."""

    v0: jax.Array  # the flattened y0
    unravel: object
    k0_implicit: jax.Array
    k0_explicit: jax.Array | None  # `None` without an explicit part
    stages: _Stages
    failed: jax.Array  # the Newton iteration failed even with a fresh Jacobian
    tried: _newton.Attempt
    jacobian: jax.Array
    fevals: object  # evaluations made, beyond the Newton iterations'


def solve_stages(tableau: ImplicitTableau, options: _newton.NewtonOptions, explicit_field, implicit_field,
                 direction, t0, h, y0, args, state, stage_noise=None) -> SolvedStages:
    """Every stage of one step of `tableau` for $f_E$ = `explicit_field` (or `None`) and $f_I$ =
    `implicit_field`, each stage's value shifted by its row of `stage_noise` (`(s, n)`, flat;
    `None` for none), with the Jacobian retry of `_newton.with_fresh_retry`."""
    v0, flat_implicit = _newton.flat_field(implicit_field, y0, args)
    flat_explicit = None if explicit_field is None else _newton.flat_field(explicit_field, y0, args)[1]
    fevals = 0
    if tableau.stiffly_accurate:
        k0_implicit = ravel_pytree(state.f0)[0].astype(v0.dtype)
    else:
        k0_implicit = flat_implicit.f(t0, v0)
        fevals += 1
    k0_explicit = None
    if flat_explicit is not None:
        k0_explicit = flat_explicit.f(t0, v0)
        fevals += 1
    s = tableau.num_stages
    start = _Stages(_with_first_row(s, k0_implicit), None if k0_explicit is None else _with_first_row(s, k0_explicit), v0)
    ctx = _Context(flat_implicit, flat_explicit, t0, h, v0, start, _newton.tolerances(state, v0),
                   state.eta, state.tied, stage_noise)
    tried, jacobian, _, newton_fevals = _newton.with_fresh_retry(
        functools.partial(_attempt, tableau, options, ctx),
        lambda: _newton.jacobian_at(options, flat_implicit, t0, v0, args, direction),
        state,
        _template(start),
    )
    return SolvedStages(v0, flat_implicit.unravel, k0_implicit, k0_explicit, tried.outcome, ~tried.converged, tried, jacobian,
                        fevals + newton_fevals)


def _step(tableau: ImplicitTableau, options: _newton.NewtonOptions, problem, t0, t1, y0, args, inc, state):
    del inc
    t0, t1 = jnp.asarray(t0), jnp.asarray(t1)
    h = t1 - t0
    explicit_field, implicit_field, direction = split_parts(problem)
    if tableau.a_explicit is None and explicit_field is not None:
        # A fully implicit method on a split field: the whole field is implicit.
        explicit_field, implicit_field = None, problem.vector_field
    solved = solve_stages(tableau, options, explicit_field, implicit_field, direction, t0, h, y0, args, state)
    stages, failed, unravel, v0 = solved.stages, solved.failed, solved.unravel, solved.v0
    arrays = tableau.arrays()
    hy = h.astype(v0.dtype)
    k_total = stages.k_total()
    if tableau.stiffly_accurate:
        v1 = stages.z_last
    else:
        v1 = v0 + hy * weighted_rows(jnp.asarray(arrays["b"], v0.dtype), k_total)
    y1 = _newton.failed_to_nan(failed, unravel(v1))
    y_error = None
    if arrays["e"] is not None:
        y_error = _newton.failed_to_inf(failed, unravel(hy * weighted_rows(jnp.asarray(arrays["e"], v0.dtype), k_total)))
    f0 = unravel(_with_explicit(solved.k0_implicit, solved.k0_explicit))
    if tableau.stiffly_accurate:
        f1 = unravel(stages.k_implicit[-1])
        new_f0 = _newton.failed_to_nan(failed, f1)
    else:
        # Only computed when dense output is used; XLA removes it otherwise.
        f1 = problem.vector_field(t1, y1, args)
        new_f0 = ()
    new_state = _newton.next_state(state, solved.tried, solved.jacobian, new_f0, solved.fevals)
    return y1, y_error, HermiteDense(y0, y1, f0, f1), new_state


def implicit_rk_solver(
    name: str,
    tableau: ImplicitTableau,
    order: int,
    embedded_order: int | None,
    jacobian=None,
    linear_solver: str = "lu",
) -> Solver:
    """Build a `Solver` from an implicit tableau, with cubic Hermite dense output.

    `fevals_per_step` counts the places where a step's code calls the vector field (the
    Jacobian, the Newton iteration, the residual its implicit-function-theorem rule
    differentiates, the first stage when it is not reused), as traced: the evaluations a step makes
    vary with its Newton iterations, and the adaptive loop counts them from the state
    (`sol.stats["num_fevals"]`); fixed-grid (scan) solves report this static count per step."""
    options = _newton.check_options(name, jacobian, linear_solver)
    fsal = tableau.stiffly_accurate
    return Solver(
        name=name,
        init=functools.partial(_init, tableau, options),
        step=functools.partial(_step, tableau, options),
        interpolate=hermite_interpolate,
        order=order,
        embedded_order=embedded_order,
        interpolation_order=min(order, 3),
        fevals_per_step=3 if fsal else 4,
        init_fevals=1 if fsal else 0,
        dense_fevals=0 if fsal else 1,
    )
