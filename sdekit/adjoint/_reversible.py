r"""`Reversible`: exact gradients in O(1) memory for algebraically reversible solvers.

The forward pass is a plain `lax.while_loop` that keeps only the final state. The backward pass
(a `custom_vjp`) walks the grid from the end: it undoes each step with the solver's exact
inverse (the solver's `inverse_step`), then takes the VJP of the forward step at the recovered
state. Gradients are those of the discrete solve (as with `Checkpointed`), up to the rounding
of the reconstruction; memory does not grow with the number of steps.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from .._results import RESULTS
from .._solve import LoopInputs, LoopOutput, all_finite, constant_step_count, constant_step_end
from ._parameters import split_parameters


class Reversible(eqx.Module):
    r"""Backpropagate through an algebraically reversible solver by reconstructing its
    trajectory backwards: exact discretise-then-optimise gradients, O(1) memory in the number
    of steps, about one extra forward solve (plus the VJPs) of compute.

    Requirements (else `ValueError` from `sk.solve`): the solver is
    `sk.solvers.reversible_heun()`; the controller is `sk.StepTo(ts)` or `sk.ConstantStep()`
    (not adaptive); `saveat` asks only for `t0` and/or `t1`.

    Gradients flow to `y0`, to the floating-point leaves of `args` and of the problem (e.g. an
    equinox module vector field), and to the times (`t0`, `t1`, `dt0`, the grid). For SDEs on
    a `StepTo` grid the increments are drawn from the tree outside the reversible loop, so the
    dependence of the increments on the grid is differentiated by JAX as usual. Only reverse
    mode is supported (`jax.jvp` cannot go through a `custom_vjp`). Differentiating with respect
    to an integer leaf is refused by JAX itself (`TypeError: grad requires real- or
    complex-valued inputs`).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import reversible_heun
        >>> def final(k):
        ...     return sk.solve(sk.ODE(lambda t, y, k: -k * y), reversible_heun(), 0.0, 1.0,
        ...                     jnp.array(1.0), args=k, dt0=0.01,
        ...                     adjoint=sk.adjoint.Reversible()).ys[-1]
        >>> round(float(jax.grad(final)(jnp.array(1.0))), 4)  # -exp(-1)
        -0.3679

    References:
        P. Kidger, J. Foster, X. Li, T. Lyons, "Efficient and Accurate Gradients for Neural
        SDEs", NeurIPS 2021 (arXiv 2105.13493), Sec. 3.
    """

    # The adjoint protocol (see `sdekit._solve.Adjoint`).

    allows_grid = False  # O(1) memory: no fixed grid storing every step

    def check(self, problem, solver, controller, saveat, dt0, brownian) -> None:
        check_reversible(solver, controller, saveat)

    def run(self, solve, inputs):
        return solve(inputs, self)

    def loop(self, inputs: LoopInputs) -> LoopOutput:
        """`reversible_loop` on the loop's inputs, as a `LoopOutput`."""
        i = inputs
        r = reversible_loop(i.problem, i.solver, i.t0, i.t1, i.y0, i.args, i.dt0, i.grid, i.max_steps, i.noise)
        fevals = (i.solver.init_fevals + r.num_steps * i.solver.fevals_per_step).astype(jnp.int32)
        return LoopOutput(
            t=r.t, y=r.y, result=r.result, num_steps=r.num_steps, num_accepted=r.num_steps, num_fevals=fevals,
            ts_ys=None, steps_ts=None, steps_ys=None, dense_ts=None, dense_infos=None, num_dense=r.num_steps,
        )


def check_reversible(solver, controller, saveat) -> None:
    """Refuse what `Reversible` cannot do, at trace time."""
    if not solver.is_reversible:
        raise ValueError(
            f"sk.adjoint.Reversible() needs an algebraically reversible solver (one that declares its "
            f"inverse_step), such as sk.solvers.reversible_heun(); {solver.name} is not. For other solvers "
            "use sk.adjoint.Checkpointed()."
        )
    if controller.adaptive:
        raise ValueError(
            "sk.adjoint.Reversible() works on fixed steps only (sk.ConstantStep() with dt0, or "
            f"sk.StepTo(ts)), not with the adaptive controller {type(controller).__name__}."
        )
    if saveat.ts is not None or saveat.steps or saveat.dense:
        raise ValueError(
            "sk.adjoint.Reversible() keeps only the final state: use saveat=sk.SaveAt(t0=..., t1=True), "
            "or sk.adjoint.Checkpointed() to save at ts, steps or dense output."
        )


class _GridTimes(NamedTuple):
    """Step k runs over [grid[k], grid[k+1]]."""

    def get(self, params, k):
        return params[k], params[k + 1]

    def add_cotangent(self, bar, params, k, t_bar, tn_bar):
        return bar.at[k].add(t_bar).at[k + 1].add(tn_bar)

    def more(self, params, k, max_steps):
        return k < params.shape[0] - 1


class _ConstantTimes(NamedTuple):
    """Step k runs over [t_k, t_{k+1}], t_k = t0 + k dt0 (the last end exactly t1), as in the
    while loop's `ConstantStep` branch (`constant_step_end`)."""

    def _at(self, params, k):
        t0, t1, dt = params
        t = constant_step_end(t0, t1, dt, k - 1, constant_step_count(t0, t1, dt))
        return jnp.where(k == 0, t0, t)

    def get(self, params, k):
        return self._at(params, k), self._at(params, k + 1)

    def add_cotangent(self, bar, params, k, t_bar, tn_bar):
        _, vjp = jax.vjp(lambda p: self.get(p, k), params)
        (d,) = vjp((t_bar, tn_bar))
        return jax.tree.map(jnp.add, bar, d)

    def more(self, params, k, max_steps):
        return (self._at(params, k) < params[1]) & (k < max_steps)


def _step_fn(diff, static, t, tn, y, state, inc, solver, noise):
    """One forward step as a function of everything it depends on."""
    problem, args = eqx.combine(diff, static)
    y1, _, _, state1 = solver.step(problem, t, tn, y, args, inc, state)
    return y1, state1


def _inc_at(incs, k, noise=None, t=None, tn=None):
    """Step k's increment: from the precomputed grid ones, else a fresh query of the tree
    (bitwise the forward one). The tree's descent is a while loop, so fresh queries are not
    differentiated with respect to the step's times: for constant-step SDEs the time gradients
    leave out the path's dependence on where it is sampled."""
    if incs is not None:
        return jax.tree.map(lambda x: x[k], incs)
    if noise is not None:
        return noise.tree.increment(*lax.stop_gradient((t, tn)))
    return None


def _forward(problem, args, y0, time_params, incs, solver, times, noise, max_steps, t_start):
    diff, static = split_parameters(problem, args)
    state0 = solver.init(problem, t_start, y0, args)

    def cond(c):
        k, _, _, result = c
        return times.more(time_params, k, max_steps) & (result == int(RESULTS.successful))

    def body(c):
        k, y, state, result = c
        t, tn = times.get(time_params, k)
        y1, state1 = _step_fn(diff, static, t, tn, y, state, _inc_at(incs, k, noise, t, tn), solver, noise)
        ok = all_finite(y1)
        # A non-finite step is not taken (and ends the loop): the reverse pass only undoes
        # steps that were taken.
        y = jax.tree.map(lambda a, b: jnp.where(ok, a, b), y1, y)
        state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), state1, state)
        result = jnp.where(ok, result, int(RESULTS.nonfinite)).astype(jnp.int32)
        return k + ok.astype(k.dtype), y, state, result

    init = (jnp.zeros((), jnp.int32), y0, state0, jnp.asarray(int(RESULTS.successful), jnp.int32))
    return lax.while_loop(cond, body, init)


@eqx.filter_custom_vjp
def _reversible_solve(vjp_arg, solver, times, noise, max_steps):
    problem, args, y0, time_params, incs = vjp_arg
    t_start = times.get(time_params, jnp.zeros((), jnp.int32))[0]
    k, y, _, result = _forward(problem, args, y0, time_params, incs, solver, times, noise, max_steps, t_start)
    return y, k, result


@_reversible_solve.def_fwd
def _reversible_solve_fwd(perturbed, vjp_arg, solver, times, noise, max_steps):
    problem, args, y0, time_params, incs = vjp_arg
    t_start = times.get(time_params, jnp.zeros((), jnp.int32))[0]
    k, y, state, result = _forward(problem, args, y0, time_params, incs, solver, times, noise, max_steps, t_start)
    return (y, k, result), (k, y, state)


@_reversible_solve.def_bwd
def _reversible_solve_bwd(residuals, grad_obj, perturbed, vjp_arg, solver, times, noise, max_steps):
    problem, args, y0, time_params, incs = vjp_arg
    num_steps, y_end, state_end = residuals
    y_bar_end = grad_obj[0]
    y_bar_end = jax.tree.map(lambda b, y: jnp.zeros_like(y) if b is None else b, y_bar_end, y_end,
                             is_leaf=lambda x: x is None)
    diff, static = split_parameters(problem, args)
    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)  # noqa: E731

    def cond(c):
        return c["k"] > 0

    def body(c):
        k = c["k"] - 1
        t, tn = times.get(time_params, k)
        inc = _inc_at(incs, k, noise, t, tn)
        problem_k, args_k = eqx.combine(diff, static)
        # Undo the step exactly, then differentiate the forward step at the recovered state.
        y, state = solver.inverse_step(problem_k, t, tn, c["y"], args_k, inc, c["state"])

        def step(d, t_, tn_, y_, state_, inc_):
            return _step_fn(d, static, t_, tn_, y_, state_, inc_, solver, noise)

        _, vjp = jax.vjp(step, diff, t, tn, y, state, inc)
        d_diff, t_bar, tn_bar, y_bar, state_bar, inc_bar = vjp((c["y_bar"], c["state_bar"]))
        incs_bar = c["incs_bar"]
        if incs is not None:
            incs_bar = jax.tree.map(lambda b, v: b.at[k].add(v), incs_bar, inc_bar)
        return dict(
            k=k,
            y=y,
            state=state,
            y_bar=y_bar,
            state_bar=state_bar,
            diff_bar=jax.tree.map(jnp.add, c["diff_bar"], d_diff),
            time_bar=times.add_cotangent(c["time_bar"], time_params, k, t_bar, tn_bar),
            incs_bar=incs_bar,
        )

    init = dict(
        k=num_steps,
        y=y_end,
        state=state_end,
        y_bar=y_bar_end,
        state_bar=zeros(state_end),
        diff_bar=zeros(diff),
        time_bar=zeros(time_params),
        incs_bar=None if incs is None else zeros(incs),
    )
    c = lax.while_loop(cond, body, init)
    # The initial state's cache depends on y0 (yhat_0 = y0, f_0 = f(t0, y0), ...): chain through init.
    t_start = times.get(time_params, jnp.zeros((), jnp.int32))[0]

    def init_fn(d, t_, y_):
        p, a = eqx.combine(d, static)
        return solver.init(p, t_, y_, a)

    _, vjp = jax.vjp(init_fn, diff, t_start, c["y"])
    d_diff, t0_bar, y0_bar = vjp(c["state_bar"])
    y0_bar = jax.tree.map(jnp.add, c["y_bar"], y0_bar)
    diff_bar = jax.tree.map(jnp.add, c["diff_bar"], d_diff)
    time_bar = times.add_cotangent(c["time_bar"], time_params, jnp.zeros((), jnp.int32), t0_bar,
                                   jnp.zeros_like(t0_bar))
    problem_bar, args_bar = diff_bar
    return problem_bar, args_bar, y0_bar, time_bar, c["incs_bar"]


class ReversibleOutput(NamedTuple):
    t: Any
    y: Any
    result: Any
    num_steps: Any


def reversible_loop(problem, solver, t0, t1, y0, args, dt, grid, max_steps, noise) -> ReversibleOutput:
    """Fixed steps of `reversible_heun` through `_reversible_solve` (tau time, increasing).

    `grid` is the `StepTo` grid or `None` (constant steps of `dt` from `t0`); `noise` is the
    loop's noise source (`NoNoise` for ODEs).
    """
    tree_noise = getattr(noise, "tree", None) is not None
    if grid is not None:
        times, params = _GridTimes(), grid
        incs = noise.grid(grid) if tree_noise else None
        bound = grid.shape[0] - 1
    else:
        times, params = _ConstantTimes(), (t0, t1, dt)
        incs, bound = None, max_steps
    y, k, result = _reversible_solve(
        (problem, args, y0, params, incs), solver, times, noise if tree_noise else None, bound
    )
    # Integer outputs carry no derivative; say so, or equinox's error_if sees a tangent on them.
    k, result = lax.stop_gradient((k, result))
    t_end = times.get(params, k)[0] if grid is None else grid[k]
    # Steps left over (max_steps reached) are reported as such, as by the while loop.
    if grid is None:
        result = jnp.where((t_end < t1) & (result == int(RESULTS.successful)), int(RESULTS.max_steps_reached), result)
    return ReversibleOutput(t=t_end, y=y, result=result.astype(jnp.int32), num_steps=k)
