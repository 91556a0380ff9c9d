r"""`Backsolve`: optimise-then-discretise gradients (continuous and stochastic adjoints).

The forward solve keeps only what `SaveAt` asks for (and the final state). The backward pass (a
`custom_vjp`) integrates the augmented system of `_adjoint_terms` from `t1` back to `t0` with
`sk.solve`'s own loops, one segment between consecutive save times; at each save time the
cotangent of the saved state is added to the adjoint (the usual jump) and the state is reset
to the forward solve's saved value.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from .._solve import Checkpointed, SaveAt, SolveInputs, brownian_zeros, float_to_array, levy_shortfall, sde_controller
from ..controllers import PID, ConstantStep, StepTo
from ..solvers import Solver, heun_sde
from ..terms import ODE, SDE
from ._adjoint_terms import AdjointDiffusion, AdjointDrift, AdjointODE, ReversedTree
from ._parameters import split_parameters


class Backsolve(eqx.Module):
    r"""Optimise-then-discretise gradients: solve the adjoint equations backwards in time.

    Memory is O(1) in the number of steps (only saved states are kept); gradients are those of
    the continuous problem, so they match the discrete solve's (`Checkpointed`) only up to the
    solvers' errors, converging as the tolerances tighten or the steps shrink.

    - **ODEs** (continuous adjoint, Chen et al. 2018): the backward solve integrates
      $[y, a, \bar\theta]$ with $\dot a = -a^\top\partial_y f$,
      $\dot{\bar\theta} = -a^\top \partial_\theta f$ from `t1` to `t0`.
    - **SDEs** (stochastic adjoint, Li et al. 2020): the same system with $b\,dt +
      \sigma\circ dW$ for $f\,dt$ is a Stratonovich SDE, solved backwards over the **same**
      Brownian path (the tree queried in reversed time). Itô problems are converted with
      `sk.terms.stratonovich_drift` for the backward pass (any noise type). The augmented
      system has general noise (one column per Brownian channel, each one vjp of the
      diffusion), so the backward solver must be a Stratonovich method for general noise
      (`heun_sde`, `midpoint_sde`, `euler_heun`, `reversible_heun`, `spark`, ...): with one
      Brownian channel the noise is commutative and these converge with strong order 1,
      otherwise 0.5.

    Gradients flow to `y0`, to the floating-point leaves of `args` and of the problem (e.g. an
    equinox module vector field), and for ODEs to `t0` and `t1` ($\partial L/\partial t_1 =
    \bar y(t_1)\cdot f(t_1, y(t_1))$, $\partial L/\partial t_0 = -a(t_0)\cdot f(t_0, y_0)$). For
    SDEs the times get no gradient through the path (a Brownian path has no time derivative),
    and the times in `SaveAt(ts=...)` get none in either case. Only reverse mode, and no
    second derivatives.

    Args:
        solver: the backward pass's solver. Default: for ODEs the forward solver; for SDEs the
            forward solver if it is a Stratonovich method for general noise (commutative with
            one channel), else `sk.solvers.heun_sde()`.
        controller: the backward pass's step-size controller, `sk.ConstantStep()` (with the
            forward `dt0`) or `sk.PID(...)`. Default: the forward one (a `StepTo` grid is walked
            backwards, segment by segment).

    Requirements (else `ValueError` from `sk.solve`): `saveat` asks for `t0`, `t1` and/or
    `ts`, not `steps` or `dense`; for SDEs, the backward solver is Stratonovich and the tree
    provides the Lévy area it needs.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> def final(k):
        ...     return sk.solve(sk.ODE(lambda t, y, k: -k * y), sk.solvers.tsit5(), 0.0, 1.0,
        ...                     jnp.array(1.0), args=k, controller=sk.PID(rtol=1e-8, atol=1e-8),
        ...                     adjoint=sk.adjoint.Backsolve()).ys[-1]
        >>> round(float(jax.grad(final)(jnp.array(1.0))), 4)  # -exp(-1)
        -0.3679

    References:
        R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, "Neural Ordinary Differential
        Equations", NeurIPS 2018; X. Li, T.-K. L. Wong, R. T. Q. Chen, D. Duvenaud, "Scalable
        Gradients for Stochastic Differential Equations", AISTATS 2020 (arXiv 2001.01328).
    """

    solver: Solver | None = eqx.field(static=True, default=None)
    controller: ConstantStep | PID | None = None

    def __check_init__(self):
        if self.solver is not None and not isinstance(self.solver, Solver):
            raise TypeError(f"Backsolve(solver=...) must be a Solver (e.g. sk.solvers.tsit5()), got {self.solver!r}.")
        if self.controller is not None and not isinstance(self.controller, (ConstantStep, PID)):
            raise TypeError(
                "Backsolve(controller=...) must be sk.ConstantStep() or sk.PID(...) (a StepTo grid belongs to "
                f"the forward solve), got {type(self.controller).__name__}."
            )

    # The adjoint protocol (see `sdekit._solve.Adjoint`).

    allows_grid = False  # O(1) memory: no fixed grid storing every step

    def check(self, problem, solver, controller, saveat, dt0, brownian) -> None:
        check_backsolve(self, problem, solver, controller, saveat, dt0, brownian)

    def run(self, solve, inputs: SolveInputs):
        """The forward solve under a `custom_vjp` whose backward pass solves the adjoint
        equations with `solve`, segment by segment."""
        adjoint = dataclasses.replace(self, controller=jax.tree.map(float_to_array, self.controller))
        diff_inputs = (inputs.problem, inputs.args, inputs.y0, inputs.t0, inputs.t1)
        rest = inputs._replace(problem=None, args=None, y0=None, t0=None, t1=None)
        return _backsolve(diff_inputs, _Config(rest, adjoint, solve))

    def loop(self, inputs):
        raise NotImplementedError("Backsolve runs its solves with sk.adjoint.Checkpointed's loops.")


def backward_solver(adjoint: Backsolve, problem, solver: Solver) -> Solver:
    """The backward pass's solver (see `Backsolve`)."""
    if adjoint.solver is not None or not isinstance(problem, SDE):
        return solver if adjoint.solver is None else adjoint.solver
    return solver if _stratonovich_ok(solver, problem) else heun_sde()


def _augmented_noise(problem) -> str:
    # The augmented diffusion has one column per Brownian channel: one channel commutes.
    return "commutative" if problem.noise == "scalar" else "general"


def _stratonovich_ok(solver, problem) -> bool:
    facts = solver.sde
    return facts is not None and facts.calculus == "stratonovich" and facts.strong(_augmented_noise(problem)) is not None


def check_backsolve(adjoint, problem, solver, controller, saveat, dt0, brownian) -> None:
    """Refuse what `Backsolve` cannot do, at trace time."""
    if saveat.steps or saveat.dense:
        raise ValueError(
            "sk.adjoint.Backsolve() supports saveat=sk.SaveAt(t0=..., t1=..., ts=...) only, not steps or "
            "dense output (the backward pass needs the loss's dependence at known times). Use "
            "sk.adjoint.Checkpointed() for those."
        )
    back = backward_solver(adjoint, problem, solver)
    back_controller = controller if adjoint.controller is None else adjoint.controller
    if isinstance(back_controller, ConstantStep) and dt0 is None and not isinstance(controller, StepTo):
        raise ValueError("Backsolve(controller=sk.ConstantStep()) needs the forward solve's dt0 as its step size.")
    if isinstance(problem, ODE):
        if back.order is None:
            raise ValueError(f"Backsolve(solver={back.name}) is an SDE method; an sk.ODE needs an ODE solver.")
        if back_controller.adaptive and not back.has_error_estimate:
            raise ValueError(
                f"Backsolve's backward solver {back.name} has no error estimate for the adaptive controller "
                f"{type(back_controller).__name__}: pass Backsolve(solver=...) or Backsolve(controller=...)."
            )
        return
    if not _stratonovich_ok(back, problem):
        raise ValueError(
            f"Backsolve's backward solver {back.name} cannot converge to the stochastic adjoint: the adjoint "
            f"SDE is a Stratonovich SDE with {_augmented_noise(problem)} noise, so use a Stratonovich solver "
            "supporting it, e.g. Backsolve(solver=sk.solvers.heun_sde()) or midpoint_sde()."
        )
    if back.sde.levy_area == "space-space":
        # The backward solve runs on the reversed, flattened path: W, H and K, no space-space area.
        raise ValueError(
            f"Backsolve's backward solver {back.name} needs the space-space Lévy area, which the reversed path "
            "of the backward solve does not carry: pass Backsolve(solver=sk.solvers.heun_sde()) or use "
            "sk.adjoint.Checkpointed()."
        )
    shortfall = levy_shortfall(brownian, back.sde.levy_area, f"Backsolve's backward solver {back.name}")
    if shortfall is not None:
        raise ValueError(shortfall)
    if back_controller.adaptive and back.sde.error(_augmented_noise(problem)) is None:
        raise ValueError(
            f"Backsolve's backward solver {back.name} has no error estimate for the adjoint's "
            f"{_augmented_noise(problem)} noise, so it cannot step adaptively: pass Backsolve(controller=...)."
        )


# ----------------------------------------------------------------------------- the custom vjp


class _Config(eqx.Module):
    """Everything the solve needs besides the differentiated inputs (passed undifferentiated):
    the prepared inputs without `problem`, `args`, `y0`, `t0`, `t1`; the adjoint; and the
    compiled solve to call forwards and backwards."""

    inputs: SolveInputs
    adjoint: Backsolve
    solve: Callable = eqx.field(static=True)


def _forward(vjp_arg, config):
    problem, args, y0, t0, t1 = vjp_arg
    inputs = config.inputs
    # The final state is always needed: the backward pass starts from it.
    inner = SaveAt(t0=inputs.saveat.t0, t1=True, ts=inputs.saveat.ts)
    sol = config.solve(inputs._replace(problem=problem, args=args, y0=y0, t0=t0, t1=t1, saveat=inner), Checkpointed())
    y_end = jax.tree.map(lambda y: y[-1], sol.ys)
    if not inputs.saveat.t1:
        sol = dataclasses.replace(sol, ts=sol.ts[:-1], ys=jax.tree.map(lambda y: y[:-1], sol.ys))
    return sol, y_end


@eqx.filter_custom_vjp
def _backsolve(vjp_arg, config):
    return _forward(vjp_arg, config)[0]


@_backsolve.def_fwd
def _backsolve_fwd(perturbed, vjp_arg, config):
    sol, y_end = _forward(vjp_arg, config)
    return sol, (sol.ys, y_end)


def _split_saves(ys, saveat, n_ts):
    """(at t0, at ts, at t1) parts of the saved values (None where not saved)."""
    i = 0
    parts = []
    for on, n in ((saveat.t0, 1), (n_ts > 0, n_ts), (saveat.t1, 1)):
        parts.append(None if not on or ys is None else jax.tree.map(lambda x: x[i:i + n], ys))
        i += n if on else 0
    first = lambda x: None if x is None else jax.tree.map(lambda v: v[0], x)  # noqa: E731
    return first(parts[0]), parts[1], first(parts[2])


def _zeros_if_none(ct, like):
    return jax.tree.map(lambda c, y: jnp.zeros_like(y) if c is None else c, ct, like, is_leaf=lambda x: x is None)


@_backsolve.def_bwd
def _backsolve_bwd(residuals, grad_obj, perturbed, vjp_arg, config):
    problem, args, y0, t0, t1 = vjp_arg
    c = config
    saved_ys, y_end = residuals
    n_ts = 0 if c.inputs.saveat_ts is None else c.inputs.saveat_ts.shape[0]
    diff, static = split_parameters(problem, args)

    ys_bar = getattr(grad_obj, "ys", None)
    ys_bar = jax.tree.map(jnp.zeros_like, saved_ys) if ys_bar is None else _zeros_if_none(ys_bar, saved_ys)
    _, fwd_ts_ys, _ = _split_saves(saved_ys, c.inputs.saveat, n_ts)
    bar_t0, bar_ts, bar_t1 = _split_saves(ys_bar, c.inputs.saveat, n_ts)
    zeros_y = jax.tree.map(jnp.zeros_like, y0)
    a_end = zeros_y if bar_t1 is None else bar_t1

    # Segment ends, from t1 down to t0: [t1, ts[-1], ..., ts[0], t0]; the forward state and the
    # cotangent added at the end of each segment.
    if n_ts:
        ends = jnp.concatenate([c.inputs.saveat_ts[::-1], t0[None]])
        starts = jnp.concatenate([t1[None], c.inputs.saveat_ts[::-1]])
        y_starts = jax.tree.map(lambda e, s: jnp.concatenate([e[None], s[::-1]]), y_end, fwd_ts_ys)
        jumps = jax.tree.map(lambda b, z: jnp.concatenate([b[::-1], z[None]]), bar_ts, zeros_y)
    else:
        ends, starts = t0[None], t1[None]
        y_starts = jax.tree.map(lambda e: e[None], y_end)
        jumps = jax.tree.map(lambda z: z[None], zeros_y)

    def segment(carry, xs):
        a, diff_bar = carry
        start, end, y_start, jump = xs
        y, a, diff_bar = _backward_segment(c, problem, static, diff, start, end, y_start, a, diff_bar)
        return (jax.tree.map(jnp.add, a, jump), diff_bar), y

    init = (a_end, jax.tree.map(jnp.zeros_like, diff))
    (a0, diff_bar), _ = lax.scan(segment, init, (starts, ends, y_starts, jumps))
    y0_bar = a0 if bar_t0 is None else jax.tree.map(jnp.add, a0, bar_t0)

    t0_bar, t1_bar = _time_cotangents(problem, args, y0, y_end, t0, t1, a0, a_end, grad_obj, c, bar_t1)
    problem_bar, args_bar = diff_bar
    return problem_bar, args_bar, y0_bar, t0_bar, t1_bar


def _dot(a, b, dtype):
    return sum(jnp.sum(x * y).astype(dtype) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _time_cotangents(problem, args, y0, y_end, t0, t1, a0, a_end, grad_obj, c, bar_t1):
    zero = jnp.zeros_like(t0)
    t0_bar, t1_bar = zero, zero
    if isinstance(problem, ODE):
        # y(s) depends on t0 through the start of the flow, on t1 only where s = t1.
        t0_bar = -_dot(a0, problem.vector_field(t0, y0, args), t0.dtype)
        if bar_t1 is not None:
            t1_bar = _dot(bar_t1, problem.vector_field(t1, y_end, args), t1.dtype)
    # The saved times themselves: ts = [t0] + saveat.ts + [t1].
    ts_bar = getattr(grad_obj, "ts", None)
    if ts_bar is not None:
        if c.inputs.saveat.t0:
            t0_bar = t0_bar + ts_bar[0]
        if c.inputs.saveat.t1:
            t1_bar = t1_bar + ts_bar[-1]
    return t0_bar, t1_bar


def _backward_segment(c, problem, static, diff, start, end, y, a, diff_bar):
    """Integrate the augmented system from `start` back to `end` (`end <= start`)."""
    i = c.inputs
    solver = backward_solver(c.adjoint, problem, i.solver)
    controller = i.controller if c.adjoint.controller is None else c.adjoint.controller
    z = (y, a, diff_bar)
    ode = isinstance(problem, ODE)
    if ode:
        aug, brownian = ODE(AdjointODE(static)), None
        t_from, t_to = start, end
    else:
        w_template = brownian_zeros(i.brownian)
        aug = SDE(AdjointDrift(static, problem.calculus == "ito" and problem.noise != "additive"),
                  AdjointDiffusion(static, w_template), noise=_augmented_noise(problem), calculus="stratonovich")
        brownian = ReversedTree(i.brownian)
        # Reversed time tau = -t runs forwards: SDE solves step forwards only.
        t_from, t_to = -start, -end
    grid, dt0 = None, None
    if isinstance(controller, StepTo):
        # The forward grid, walked backwards and clipped to the segment (repeated points are
        # zero-length steps, which change nothing).
        g = i.grid[::-1] if ode else -i.grid[::-1]
        grid = jnp.clip(g, jnp.minimum(t_from, t_to), jnp.maximum(t_from, t_to))
        controller = StepTo(grid, padded=True)
    elif i.dt0 is not None or not ode:
        step = jnp.abs(i.dt0) if i.dt0 is not None else jnp.abs(i.grid[1] - i.grid[0])
        dt0 = -step if ode else step
    if not ode:
        if isinstance(controller, PID):
            # jump_ts / step_ts are times t; the backward SDE steps in tau = -t.
            flip = lambda x: None if x is None else -jnp.asarray(x)  # noqa: E731
            controller = dataclasses.replace(controller, jump_ts=flip(controller.jump_ts),
                                             step_ts=flip(controller.step_ts))
        controller = sde_controller(controller, brownian)
    sol = c.solve(SolveInputs(aug, solver, controller, SaveAt(t1=True), t_from, t_to, z, diff, dt0, None, grid,
                              i.max_steps, i.throw, False, True, brownian), Checkpointed())
    return jax.tree.map(lambda x: x[-1], sol.ys)
