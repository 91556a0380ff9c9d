r"""Simplified Newton (chord) iteration for the stages of implicit methods.

Each implicit stage solves $z = \beta + h\gamma f(t, z)$. The chord iteration

$$z_{k+1} = z_k - M^{-1}\big(z_k - \beta - h\gamma f(t, z_k)\big), \qquad M = I - h\gamma J,$$

uses one Jacobian $J$ (carried between steps in the solver's state and refreshed when the
iteration converged slowly) and one LU factorisation of $M$ per step for every stage and
iteration. It stops (Hairer & Wanner, Solving ODEs II, Sec. IV.8) when
$\eta_k \|\Delta z_k\| \le \kappa$, with the rate $\theta_k = \|\Delta z_k\| / \|\Delta z_{k-1}\|$,
$\eta_k = \theta_k / (1 - \theta_k)$ and the norm scaled by $\text{atol} + \text{rtol}|y_0|$: the
step-size controller's tolerances, so the iteration error stays a small fraction of the error
the controller accepts. It fails (and the step is rejected) when $\theta_k \ge 1$, when the rate
predicts no convergence within the remaining iterations, or on a non-finite value (a singular
$M$). Linear solves: LU (`factorised_solver`), or matrix-free GMRES (lineax) on $v \mapsto v - h\gamma J v$ by
Jacobian-vector products.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import lineax as lx
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from .._results import RESULTS
from .._xla_cpu import CONSTANT_IDENTITY_MAX_ELEMENTS, SMALL_SYSTEM_INVERSE_MAX

#: Newton's stopping constant: the iteration error is at most kappa times the tolerance.
KAPPA = 1e-2
#: Iterations per stage before giving up (Hairer's RADAU5 uses 7; diffrax 10), with adaptive
#: steps (a slow iteration is better answered by a smaller step); with fixed steps, where a
#: failure ends the solve, a slow but contracting iteration may run to FIXED_STEP_MAX_ITERS.
MAX_ITERS = 10
FIXED_STEP_MAX_ITERS = 30
#: Contraction rate above which the next step starts with a fresh Jacobian. At 0.05 rather than
#: 0.2, Kvaerno 5 took 15-25% fewer evaluations and less run time on the stiff benchmarks, for
#: 2-3x the Jacobians (benchmarks/results/stiff.md); scipy's Radau refreshes above 1e-3 (after
#: more than two iterations), Hairer's RADAU5 above 1e-3.
REFRESH_RATE = 0.05
#: The relative tolerance is at least this many machine epsilons: below it increments stall
#: at rounding and the test could never pass.
RTOL_FLOOR_EPS = 1000
#: Default Newton tolerances for fixed steps (no controller to tie them to). Each stage's
#: iteration error (about KAPPA times these) adds up over the solve: at 1e-10, 2000 stages of
#: KenCarp 4 left a floor near 2e-9 once a good starting guess let the iteration stop at the
#: first test it passed.
FIXED_STEP_RTOL = 1e-12
FIXED_STEP_ATOL = 1e-12


class ImplicitState(NamedTuple):
    r"""State of an implicit method, carried between steps.

    Attributes:
        f0: $f(t_0, y_0)$ for methods whose last stage is the solution (reused as the next
            step's first stage); `()` otherwise.
        jacobian: the Jacobian of the (implicit part of the) vector field, `(n, n)` for the
            flattened state; shape `(0, 0)` for matrix-free GMRES.
        refresh: whether the next step starts by computing a fresh Jacobian.
        eta: the last contraction estimate $\eta = \theta / (1 - \theta)$ (starts the next stage's
            convergence test).
        rtol, atol: Newton's tolerances: the adaptive controller's (`sk.solve` ties them), else
            the fixed-step defaults.
        tied: whether they are the controller's (adaptive steps): then a slowly converging
            iteration fails early, predicted from its rate, so that the step shrinks.
        result: the last step's `sk.RESULTS` code (`implicit_solve_failed` when its Newton
            iteration failed even with a fresh Jacobian); the solve loop reads it.
        num_fevals: vector-field evaluations the last step made (the loop counts them).
        history: what a method keeps of its last step to start the next one's iteration (Radau
            IIA: the collocation polynomial); `()` for the others.
    """

    f0: Any
    jacobian: jax.Array
    refresh: jax.Array
    eta: jax.Array
    rtol: jax.Array
    atol: jax.Array
    tied: jax.Array
    result: jax.Array
    num_fevals: jax.Array
    history: Any = ()

    def with_tolerances(self, rtol, atol) -> "ImplicitState":
        """The same state with Newton's tolerances set to a step-size controller's."""
        dtype = self.rtol.dtype
        return self._replace(rtol=jnp.asarray(rtol, dtype), atol=jnp.asarray(atol, dtype), tied=jnp.ones((), bool))


class NewtonOptions(NamedTuple):
    """Static choices of an implicit method: how the Jacobian is formed and systems are solved.

    Attributes:
        jacobian: `None` (forward-mode `jax.jacfwd` of the vector field) or a function
            `jacobian(t, y, args) -> (n, n)` array for the state flattened in `ravel_pytree`
            order (for an IMEX method: of the implicit part).
        linear_solver: `"lu"` (dense LU of $I - h\\gamma J$, factorised once per step) or
            `"gmres"` (matrix-free: Jacobian-vector products, no matrix formed; for large states).
    """

    jacobian: Any = None
    linear_solver: str = "lu"


def check_options(name: str, jacobian, linear_solver) -> NewtonOptions:
    if linear_solver not in ("lu", "gmres"):
        raise ValueError(f"{name}: linear_solver must be 'lu' or 'gmres', got {linear_solver!r}.")
    if jacobian is not None and not callable(jacobian):
        raise TypeError(f"{name}: jacobian must be None or a function jacobian(t, y, args) -> (n, n) array.")
    if jacobian is not None and linear_solver == "gmres":
        raise ValueError(f"{name}: linear_solver='gmres' is matrix-free; it takes no jacobian.")
    return NewtonOptions(jacobian, linear_solver)


def initial_state(options: NewtonOptions, y0, f0=(), history=()) -> ImplicitState:
    """A state that computes a Jacobian at the first step, with the fixed-step tolerances."""
    v0, _ = ravel_pytree(y0)
    n = 0 if options.linear_solver == "gmres" else v0.shape[0]
    dtype = v0.dtype
    return ImplicitState(
        f0=f0,
        jacobian=jnp.zeros((n, n), dtype),
        refresh=jnp.ones((), bool),
        eta=jnp.ones((), dtype),
        rtol=jnp.asarray(FIXED_STEP_RTOL, dtype),
        atol=jnp.asarray(FIXED_STEP_ATOL, dtype),
        tied=jnp.zeros((), bool),
        result=jnp.zeros((), jnp.int32),
        num_fevals=jnp.zeros((), jnp.int32),
        history=history,
    )


class Flat(NamedTuple):
    """A vector field on the flattened state: `f(t, v)`, with `unravel` back to the pytree."""

    f: Any
    unravel: Any


def flat_field(field, y0, args) -> tuple[jax.Array, Flat]:
    v0, unravel = ravel_pytree(y0)

    def f(t, v):
        return ravel_pytree(field(t, unravel(v), args))[0].astype(v.dtype)

    return v0, Flat(f, unravel)


def jacobian_at(options: NewtonOptions, flat: Flat, t, v, args, direction=None):
    """The Jacobian at `(t, v)`: the user's (in the solve's time variable) or `jax.jacfwd`."""
    if options.linear_solver == "gmres":
        return jnp.zeros((0, 0), v.dtype)
    if options.jacobian is None:
        return jax.jacfwd(lambda z: flat.f(t, z))(v)
    if direction is None:
        return _checked(jnp.asarray(options.jacobian(t, flat.unravel(v), args), v.dtype), v)
    # The solve integrates in tau = direction * t, where the field is direction * f(direction * tau).
    d = direction.astype(v.dtype)
    return d * _checked(jnp.asarray(options.jacobian(direction * t, flat.unravel(v), args), v.dtype), v)


def _checked(jacobian, v):
    n = v.shape[0]
    if jacobian.shape != (n, n):
        raise ValueError(f"jacobian(t, y, args) must return an ({n}, {n}) array (the state flattened in "
                         f"ravel_pytree order has {n} elements), got shape {jacobian.shape}.")
    return jacobian


def linear_solver(options: NewtonOptions, flat: Flat, jacobian, h_gamma, t, v0):
    r"""`solve(r)` $= M^{-1} r$ with $M = I - h\gamma J$: LU factorised once (`factorised_solver`), or GMRES
    on Jacobian-vector products linearised once at `(t, v0)`."""
    if options.linear_solver == "lu":
        return factorised_solver(identity(v0.shape[0], v0.dtype) - h_gamma * jacobian)
    _, jvp = jax.linearize(lambda z: flat.f(t, z), v0)
    operator = lx.FunctionLinearOperator(lambda x: x - h_gamma * jvp(x), jax.eval_shape(lambda: v0))
    eps = jnp.finfo(v0.dtype).eps
    gmres = lx.GMRES(rtol=max(1e-6, float(100 * eps)), atol=float(100 * eps), restart=20, max_steps=200)
    return lambda r: lx.linear_solve(operator, r, gmres, throw=False).value


def identity(n: int, dtype):
    """The n x n identity: a constant of the program up to `CONSTANT_IDENTITY_MAX_ELEMENTS`
    (three fewer kernels of a `kvaerno5` solve's 78 on Robertson), computed above it."""
    if n * n <= CONSTANT_IDENTITY_MAX_ELEMENTS:
        return np.eye(n, dtype=dtype)
    return jnp.eye(n, dtype=dtype)


def factorised_solver(matrix):
    """`solve(r)`, the `x` with `matrix @ x = r`, from one LU factorisation (LAPACK, through
    `jax.scipy.linalg`); for up to `SMALL_SYSTEM_INVERSE_MAX` unknowns by the inverse, formed
    from the factors once, so that each solve is a matrix-vector product: 1.1x-2.6x faster
    stiff solves at 2-8 unknowns (benchmarks/results/stiff.md), where the two LAPACK triangular
    solves per Newton iteration cost more than the rest of the iteration."""
    factors = jsl.lu_factor(matrix)
    if matrix.shape[0] <= SMALL_SYSTEM_INVERSE_MAX:
        inverse = jsl.lu_solve(factors, identity(matrix.shape[0], matrix.dtype))
        return lambda r: inverse @ r
    return lambda r: jsl.lu_solve(factors, r)


def tolerances(state: ImplicitState, v0):
    r"""Newton's scale as a function of the iterate $z$: $\text{atol} + \text{rtol}\max(|y_0|, |z|)$
    per component, with rtol floored above rounding (a component starting at 0 is measured
    against its iterate, whose rounding the increments cannot go below)."""
    rtol = floored_rtol(state, v0.dtype)
    magnitude = jnp.abs(v0)
    return lambda z: state.atol + rtol * jnp.maximum(magnitude, jnp.abs(z))


def floored_rtol(state: ImplicitState, dtype):
    """The state's relative tolerance, at least RTOL_FLOOR_EPS machine epsilons."""
    return jnp.maximum(state.rtol, RTOL_FLOOR_EPS * jnp.finfo(dtype).eps)


def rms(x):
    return jnp.sqrt(jnp.mean(jnp.square(x))) if x.size else jnp.zeros((), x.dtype)


class NewtonResult(NamedTuple):
    z: jax.Array
    converged: jax.Array
    eta: jax.Array
    rate: jax.Array  # largest contraction rate seen
    iterations: jax.Array


class _Iterate(NamedTuple):
    z: jax.Array
    last_norm: jax.Array
    eta: jax.Array
    rate: jax.Array
    k: jax.Array
    status: jax.Array  # 0 running, 1 converged, 2 failed


def tangent_solver(options: NewtonOptions):
    """Solves the linearised stage equation for derivatives (implicit function theorem): with
    the exact Jacobian, by LU of the materialised operator or by GMRES."""

    def tangent_solve(g, y):
        operator = lx.FunctionLinearOperator(g, jax.eval_shape(lambda: y))
        if options.linear_solver == "lu":
            return lx.linear_solve(operator, y, lx.LU(), throw=False).value
        eps = float(100 * jnp.finfo(y.dtype).eps)
        return lx.linear_solve(operator, y, lx.GMRES(rtol=eps, atol=eps, restart=20, max_steps=400), throw=False).value

    return tangent_solve


def chord(residual, solve, z0, scale, eta, active, tangent_solve, tied, kappa=KAPPA,
          first_may_stop=True) -> NewtonResult:
    r"""Chord iteration on `residual(z) = 0` from `z0`, with `solve(r)` $= M^{-1} r$ and the
    increments measured by `scale(z)` (`tolerances`).

    `eta` starts the convergence test of the first iteration ($\max(\eta, \epsilon)^{0.8}$,
    Hairer's choice); `active=False` skips the iteration (an earlier stage already failed);
    `tied` (adaptive steps) gives up early on a slow iteration and allows fewer iterations;
    `kappa` is the stopping constant (a float or a traced scalar); `first_may_stop=False` makes
    the iteration measure its own rate (two iterations at least) instead of trusting `eta`.
    Differentiated by the implicit function theorem (`_at_root`, solving with the exact
    Jacobian through `tangent_solve`), not through the iterations."""
    dtype = z0.dtype
    eps = jnp.finfo(dtype).eps
    one = jnp.ones((), dtype)

    def body(it: _Iterate) -> _Iterate:
        dz = -solve(residual(it.z))
        z = it.z + dz
        norm = rms(dz / scale(z))
        first = it.k == 0
        rate = jnp.where(first, 0 * one, norm / jnp.maximum(it.last_norm, jnp.finfo(dtype).tiny))
        eta_k = jnp.where(first, it.eta, rate / jnp.maximum(1 - rate, eps))
        finite = jnp.isfinite(norm)
        trusted = ~first if not first_may_stop else True
        converged = finite & (first | (rate < 1)) & ((trusted & (eta_k * norm <= kappa)) | (norm <= 4 * eps))
        remaining = jnp.where(tied, MAX_ITERS, FIXED_STEP_MAX_ITERS) - 1 - it.k
        slow = tied & (rate ** remaining.astype(dtype) / jnp.maximum(1 - rate, eps) * norm > kappa)
        hopeless = ~first & ((rate >= 1) | slow)
        failed = ~finite | (~converged & (hopeless | (remaining <= 0)))
        status = jnp.where(converged, 1, jnp.where(failed, 2, 0)).astype(jnp.int32)
        return _Iterate(z, norm, jnp.where(first, it.eta, eta_k), jnp.maximum(it.rate, rate), it.k + 1, status)

    def iterate(z_init):
        start = _Iterate(
            z=z_init,
            last_norm=one,
            eta=jnp.maximum(eta, eps) ** 0.8,
            rate=0 * one,
            k=jnp.zeros((), jnp.int32),
            status=jnp.where(active, 0, 2).astype(jnp.int32),
        )
        out = lax.while_loop(lambda it: it.status == 0, body, start)
        return out.z, (out.status == 1, out.eta, out.rate, out.k)

    z, (converged, eta_out, rate, k) = _at_root(residual, iterate, z0, tangent_solve)
    return NewtonResult(z, converged, eta_out, rate, k)


def _at_root(residual, iterate, z0, tangent_solve):
    r"""`iterate(z0) -> (z, aux)` finds a root `z` of `residual`; differentiated by the implicit
    function theorem, $\dot z = -(\partial_z r)^{-1} \dot r$, through what `residual` closes
    over (`aux` and the iteration itself are not differentiated).

    A `custom_jvp` rather than `lax.custom_root`: the rule (and the tangent solve in it) is traced
    only when something is differentiated, not at every trace of a step (custom_root's cost
    was about a sixth of an implicit solve's trace time)."""
    residual_of, residual_consts = _closure_converted(residual, z0)
    # What the iteration reads besides the residual (the factorised matrix, the scale) only
    # steers it to the root: its derivatives are not wanted.
    iterate_of, iterate_consts = _closure_converted(iterate, z0)
    iterate_consts = lax.stop_gradient(iterate_consts)

    @jax.custom_jvp
    def solved(consts, iterate_consts, z_init):
        return iterate_of(z_init, *iterate_consts)

    @solved.defjvp
    def solved_jvp(primals, tangents):
        consts, _, _ = primals
        z, aux = solved(*primals)
        # A failed iteration (its step is rejected, its values discarded) gets a zero tangent,
        # linearised at a finite point: its z may be NaN, which must not reach the solve.
        found = aux[0] & jnp.all(jnp.isfinite(z))
        at = jnp.where(found, z, jnp.zeros_like(z))
        _, r_dot = jax.jvp(lambda c: residual_of(at, *c), (consts,), (tangents[0],))
        r_dot = jnp.where(found, r_dot, jnp.zeros_like(r_dot))
        z_dot = tangent_solve(lambda v: jax.jvp(lambda x: residual_of(x, *consts), (at,), (v,))[1], r_dot)
        return (z, aux), (jnp.where(found, -z_dot, jnp.zeros_like(z_dot)), jax.tree.map(_zero_tangent, aux))

    return solved(residual_consts, iterate_consts, lax.stop_gradient(z0))


def _closure_converted(fn, x):
    """`fn` as `(fn_of, consts)` with `fn_of(x, *consts) == fn(x)`: every value `fn` closes over
    (not only the floating ones `jax.closure_convert` hoists) becomes an explicit operand, so
    that a `custom_jvp` around it closes over no tracer."""
    closed, shape = jax.make_jaxpr(fn, return_shape=True)(x)
    treedef = jax.tree.structure(shape)

    def fn_of(x, *consts):
        return jax.tree.unflatten(treedef, jax.core.eval_jaxpr(closed.jaxpr, consts, x))

    return fn_of, list(closed.consts)


def _zero_tangent(x):
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


class Attempt(NamedTuple):
    """What one try at a step returns to `with_fresh_retry`."""

    outcome: Any  # the method's stage results
    converged: jax.Array
    eta: jax.Array
    rate: jax.Array
    num_fevals: jax.Array


def with_fresh_retry(attempt, fresh_jacobian, state: ImplicitState, template: Attempt):
    """Run `attempt(jacobian)`; when its Newton iteration fails with a Jacobian reused from
    earlier steps, retry once with a fresh one (a bounded loop: under `vmap` only lanes that need
    the retry pay for it). `template` has the shapes of an attempt (no extra trace), made of
    arrays the step computes anyway: a zero fill would be a kernel of its own on XLA:CPU, run
    each step only to be overwritten by the first attempt.
    Returns the last attempt, the Jacobian used, whether it is fresh and the evaluations made.

    Differentiated as the last attempt alone, with the Jacobian it used (a `custom_jvp`; the
    Jacobian only steers the iteration, and the stages' derivatives come from the implicit
    function theorem): the loop is never differentiated, so forward and reverse mode both go
    through it. Under differentiation the last attempt runs once more (for its tangents)."""
    jacobian0 = lax.stop_gradient(state.jacobian)
    attempt_of, attempt_consts = _closure_converted(attempt, jacobian0)
    fresh_of, fresh_consts = _closure_converted(lambda _: fresh_jacobian(), jacobian0)

    class _Try(NamedTuple):
        tries: jax.Array
        jacobian: jax.Array
        fresh: jax.Array
        last: Attempt
        fevals: jax.Array

    @jax.custom_jvp
    def retried(attempt_consts, fresh_consts, jacobian0, refresh, template):
        def body(c: _Try) -> _Try:
            need = (c.tries > 0) | refresh
            jacobian = lax.cond(need, lambda: fresh_of(jacobian0, *fresh_consts), lambda: c.jacobian)
            out = attempt_of(jacobian, *attempt_consts)
            return _Try(c.tries + 1, jacobian, need, out, c.fevals + out.num_fevals)

        def cond(c: _Try):
            return (c.tries == 0) | (~c.last.converged & ~c.fresh & (c.tries < 2))

        start = _Try(jnp.zeros((), jnp.int32), jacobian0, jnp.zeros((), bool), template, jnp.zeros((), jnp.int32))
        out = lax.while_loop(cond, body, start)
        return out.last, out.jacobian, out.fresh, out.fevals

    @retried.defjvp
    def retried_jvp(primals, tangents):
        _, jacobian, fresh, fevals = retried(*primals)
        last, last_dot = jax.jvp(lambda c: attempt_of(jacobian, *c), (primals[0],), (tangents[0],))
        out = (last, jacobian, fresh, fevals)
        return out, (last_dot,) + tuple(jax.tree.map(_zero_tangent, out[1:]))

    return retried(attempt_consts, lax.stop_gradient(fresh_consts), jacobian0, state.refresh, lax.stop_gradient(template))


def next_state(state: ImplicitState, tried: Attempt, jacobian, f0, fevals, refresh_rate=REFRESH_RATE) -> ImplicitState:
    """The state after a step: the Jacobian kept (refreshed next time if the iteration contracted
    more slowly than `refresh_rate`), the step's result code and evaluation count."""
    failed = ~tried.converged
    return state._replace(
        f0=f0,
        jacobian=jacobian,
        refresh=failed | (tried.rate > refresh_rate),
        eta=jnp.where(failed, state.eta, tried.eta).astype(state.eta.dtype),
        result=jnp.where(failed, int(RESULTS.implicit_solve_failed), int(RESULTS.successful)).astype(jnp.int32),
        num_fevals=jnp.asarray(fevals, jnp.int32),
    )


def failed_to_nan(failed, tree):
    """NaN where the step failed (the loop then rejects it and keeps the previous state)."""
    return jax.tree.map(lambda x: jnp.where(failed, jnp.full_like(x, jnp.nan), x), tree)


def failed_to_inf(failed, tree):
    return jax.tree.map(lambda x: jnp.where(failed, jnp.full_like(x, jnp.inf), x), tree)
