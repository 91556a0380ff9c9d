"""Validation of a solve's inputs: clear errors before anything runs.

Checks on static facts (solver/controller pairing, shapes, dtypes) raise `ValueError`/`TypeError`
at trace time. Checks on numbers raise `ValueError` when the numbers are concrete, and become
runtime errors (`equinox.error_if`, which also works under `jit` and `vmap`) when traced.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._batch import batch_min
from ..brownian import LEVY_ORDER
from .._typing import is_concrete
from ..controllers import ConstantStep, StepTo
from ..solvers import Solver
from ..terms import Split


def staged() -> bool:
    """Whether JAX is staging a trace (under `jit`), where even constants are tracers and the
    numbers known now are fixed for the whole trace."""
    return isinstance(jnp.zeros(()), jax.core.Tracer)


LEVY_RANK = {levy: rank for rank, levy in enumerate(LEVY_ORDER)}


def check_static(problem, solver, controller, dt0, max_steps, brownian=None) -> None:
    from ..terms import ODE, SDE

    if not isinstance(problem, (ODE, SDE)):
        raise TypeError(f"sk.solve expects a problem such as sk.ODE(f) or sk.SDE(f, g), got {type(problem).__name__}.")
    if callable(solver) and not isinstance(solver, Solver):
        raise TypeError(
            f"Expected a Solver, got the factory {getattr(solver, '__name__', solver)!r}: call it, "
            f"e.g. sk.solvers.{getattr(solver, '__name__', 'tsit5')}()."
        )
    if not isinstance(solver, Solver):
        raise TypeError(f"Expected a Solver (e.g. sk.solvers.tsit5()), got {type(solver).__name__}.")
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int (it sizes static buffers), got {max_steps!r}.")
    if isinstance(problem, SDE):
        _check_sde_static(problem, solver, controller, dt0, brownian)
        return
    if brownian is not None:
        raise ValueError("brownian= drives SDEs; an sk.ODE takes none.")
    if solver.order is None:
        raise ValueError(f"The solver {solver.name} is an SDE method; for an sk.ODE use e.g. sk.solvers.tsit5().")
    if controller.adaptive and not solver.has_error_estimate:
        raise ValueError(
            f"The solver {solver.name} has no embedded error estimate, so it cannot be used with the "
            f"adaptive controller {type(controller).__name__}. Use a solver with one (heun, midpoint, "
            "ralston, bosh3, tsit5, dopri5, dopri8), or fixed steps: sk.ConstantStep() with dt0, or "
            "sk.StepTo(ts)."
        )
    _check_step_options(controller, dt0)


def _check_step_options(controller, dt0) -> None:
    if isinstance(controller, ConstantStep) and dt0 is None:
        raise ValueError("sk.ConstantStep() needs a step size: pass dt0, or use controller=sk.PID(...).")
    if isinstance(controller, StepTo) and dt0 is not None:
        raise ValueError("sk.StepTo(ts) fixes every step: do not pass dt0 as well.")


def solvers_for(noise: str, calculus: str) -> list[str]:
    """Names of the `sk.solvers` factories (called with their defaults) that support `noise` in
    `calculus` (any calculus for additive noise)."""
    from .. import solvers

    names = []
    for name in solvers.__all__:
        factory = getattr(solvers, name)
        if isinstance(factory, type) or not callable(factory):
            continue
        try:
            solver = factory()
        except TypeError:  # needs arguments: a constructor of solvers, not a solver
            continue
        facts = getattr(solver, "sde", None)
        if facts is not None and facts.strong(noise) is not None and (noise == "additive" or facts.calculus == calculus):
            names.append(f"{name}()")
    return names


def solver_noise(problem, facts) -> str:
    """The noise type under which a solver's `facts` are read for `problem`: `"langevin"` for an
    `sk.UnderdampedLangevin` problem solved by a Langevin method (`align()`, `should()`,
    `quicsort()`), else the problem's own noise type (an underdamped Langevin diffusion is also an
    additive-noise SDE, which any additive-noise solver solves)."""
    from ..terms import UnderdampedLangevin

    if isinstance(problem, UnderdampedLangevin) and facts.strong("langevin") is not None:
        return "langevin"
    return problem.noise


def _check_sde_static(problem, solver, controller, dt0, brownian) -> None:
    from ..brownian import BrownianTree
    from ..terms import UnderdampedLangevin

    facts = solver.sde
    if facts is None:
        raise ValueError(
            f"The solver {solver.name} is an ODE method; for an sk.SDE use an SDE solver such as "
            "sk.solvers.euler_maruyama() (Itô) or an SRK method."
        )
    if facts.strong("langevin") is not None and not isinstance(problem, UnderdampedLangevin):
        raise ValueError(
            f"The solver {solver.name} is an underdamped Langevin method: it solves "
            "sk.UnderdampedLangevin(grad_f, gamma, u) problems only, not a general sk.SDE. For other "
            "additive-noise SDEs use e.g. shark() or sra1()."
        )
    noise = solver_noise(problem, facts)
    if facts.strong(noise) is None:
        supported = ", ".join(n for n, _ in facts.strong_order)
        raise ValueError(
            f"The solver {solver.name} does not support {problem.noise!r} noise (it supports: {supported}). "
            f"Solvers for {problem.noise!r} noise in {problem.calculus} calculus: "
            f"{', '.join(solvers_for(problem.noise, problem.calculus))}."
        )
    if problem.noise != "additive" and facts.calculus != problem.calculus:
        raise ValueError(
            f"The solver {solver.name} converges to the {facts.calculus} solution but the SDE is "
            f"{problem.calculus}. Convert the drift with sk.terms.stratonovich_drift(sde) (it switches "
            f"calculus), or use a {problem.calculus} solver."
        )
    if not isinstance(brownian, BrownianTree):
        raise ValueError(
            "An sk.SDE needs brownian=sk.BrownianTree(key, t0, t1, shape=..., tol=..., levy=...) to drive its noise."
        )
    shortfall = levy_shortfall(brownian, facts.levy_area, f"The solver {solver.name}")
    if shortfall is not None:
        raise ValueError(shortfall)
    if dt0 is None and not isinstance(controller, StepTo):
        raise ValueError("SDE solves need an explicit dt0 (the initial step), or controller=sk.StepTo(ts).")
    if controller.adaptive and facts.error(noise) is None and noise == "langevin":
        raise ValueError(
            f"The solver {solver.name} has no embedded error estimate, so it cannot step adaptively. Use "
            "fixed steps (dt0 with sk.ConstantStep(), or sk.StepTo(ts)), or align(), the Langevin method with "
            "an error estimate."
        )
    if controller.adaptive and facts.error(noise) is None:
        raise ValueError(
            f"The solver {solver.name} has no embedded error estimate for {problem.noise!r} noise, so it "
            "cannot step adaptively (and adaptive steps without one need not converge). Use fixed steps, or "
            "an SRK method with an error estimate (e.g. shark() for additive noise, spark() otherwise; "
            "skencarp3() for additive noise and a stiff drift)."
        )
    _check_step_options(controller, dt0)


def sde_controller(controller, brownian):
    """Adaptive SDE steps never go below the tree's tol, where queries stop being exact."""
    if not controller.adaptive:
        return controller
    dtmin = brownian.tol if controller.dtmin is None else jnp.maximum(controller.dtmin, brownian.tol)
    return dataclasses.replace(controller, dtmin=dtmin)


def brownian_zeros(brownian):
    """Zeros shaped like the tree's increments `W`: an array for a shape given as a tuple of ints,
    else the pytree of its `ShapeDtypeStruct` leaves (whatever the pytree's root, a tuple too)."""
    shape = brownian.shape
    if isinstance(shape, tuple) and all(isinstance(d, (int, np.integer)) for d in shape):
        return jnp.zeros(shape, brownian.dtype)
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape, is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))


def check_sde_shapes(problem, brownian, t0, y0, args) -> None:
    """Drift like y0; the tree's shape as the noise type needs; diffusion times a Brownian
    increment like y0 (structure, shapes, dtypes)."""
    from ..terms import UnderdampedLangevin

    w = brownian_zeros(brownian)
    if isinstance(problem, UnderdampedLangevin):
        check_langevin_shapes(problem, w, t0, y0, args)
        if len(jax.tree.leaves(y0[0])) != 1 or jax.tree.leaves(y0[0])[0] is not y0[0]:
            return  # a pytree position: the Langevin solvers' case (general solvers say why they cannot)
    check_vector_field(problem.drift, t0, y0, args, what="drift")
    check_noise_shape(problem.noise, w, y0)
    check_vector_field(lambda t, y, a: problem.noise_term(t, y, a, w), t0, y0, args, what="diffusion times dW")


def check_langevin_shapes(problem, w, t0, y0, args) -> None:
    """An underdamped Langevin state is a pair `(x, v)` of one structure; the Brownian motion is
    shaped like `x`; `grad_f(x, args)` returns a pytree like `x`; `gamma` and `u` broadcast to it."""
    if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
        raise ValueError(
            "sk.UnderdampedLangevin: y0 must be the pair (x0, v0) of position and velocity, got "
            f"{type(y0).__name__}."
        )
    x0, v0 = y0
    if jax.tree.structure(x0) != jax.tree.structure(v0) or any(
        a.shape != b.shape for a, b in zip(jax.tree.leaves(x0), jax.tree.leaves(v0))
    ):
        raise ValueError(
            f"sk.UnderdampedLangevin: x0 and v0 must have one structure and shapes, got {_shapes(x0)} and "
            f"{_shapes(v0)}."
        )
    like_x = jax.tree.structure(w) == jax.tree.structure(x0) and all(
        a.shape == b.shape for a, b in zip(jax.tree.leaves(w), jax.tree.leaves(x0))
    )
    if not like_x:
        raise ValueError(
            "sk.UnderdampedLangevin: the Brownian motion drives the velocity componentwise, so the tree's "
            f"shape must be the position's: {_shapes(x0)} (shape=x0.shape, or a pytree of "
            f"jax.ShapeDtypeStruct like x0), got {_shapes(w)}."
        )
    problem.parameters(x0)  # raises for gamma or u that do not broadcast
    check_vector_field(lambda t, x, a: problem.grad_f(x, a), t0, x0, args, what="gradient grad_f(x, args)")


def _shapes(tree) -> str:
    shapes = jax.tree.map(lambda x: tuple(x.shape), tree)
    return str(shapes)


def check_noise_shape(noise: str, w, y0) -> None:
    """The Brownian motion's shape must be the one the noise type declares, so that no two
    components that should be independent silently share one Brownian motion."""
    for leaf in jax.tree.leaves(y0):
        if jnp.iscomplexobj(leaf):
            raise ValueError(
                "SDE states must be real: complex states are supported for ODEs only (split an SDE's "
                "state into real and imaginary parts)."
            )
    w_leaves, y_leaves = jax.tree.leaves(w), jax.tree.leaves(y0)
    like_y = jax.tree.structure(w) == jax.tree.structure(y0) and all(
        a.shape == b.shape for a, b in zip(w_leaves, y_leaves)
    )
    single = len(w_leaves) == 1
    tree_shape = _shapes(w)
    if noise == "diagonal" and not like_y:
        raise ValueError(
            f"noise='diagonal' drives each component of the state by its own Brownian motion, so the "
            f"Brownian tree's shape must be the state's: {_shapes(y0)} (e.g. shape={_shapes(y0)} for an "
            f"array state, or a pytree of jax.ShapeDtypeStruct like the state), got {tree_shape}. For one "
            "Brownian motion shared by all components use noise='scalar' with shape=()."
        )
    if noise == "scalar" and not (single and w_leaves[0].shape == ()):
        raise ValueError(
            f"noise='scalar' has one Brownian motion: build the Brownian tree with shape=(), got {tree_shape}."
        )
    if noise in ("commutative", "general") and not (single and w_leaves[0].ndim >= 1):
        raise ValueError(
            f"noise={noise!r} has m Brownian channels contracted with the diffusion's last axis: build the "
            f"Brownian tree with shape=(m,), got {tree_shape}."
        )


def levy_shortfall(brownian, needed: str, who: str) -> str | None:
    """Why `brownian` cannot drive a solver needing Lévy area `needed` (a message starting with
    `who`), or None when it can."""
    if needed == "space-space":
        if getattr(brownian, "area", False):
            return None
        return (
            f"{who} needs the space-space Lévy area of the Brownian path: build the tree with "
            "sk.BrownianTree(key, t0, t1, shape=(m,), tol=..., levy='space-time', area=True) (tol about the "
            "square of the step for strong order 1). Without areas, use euler_maruyama() (Itô) or spark() / "
            "general_shark() (Stratonovich), which reach strong order 0.5 on general noise."
        )
    if LEVY_RANK.get(brownian.levy, -1) < LEVY_RANK[needed]:
        return f"{who} needs the Brownian tree to provide levy={needed!r}, but it was built with levy={brownian.levy!r}."
    return None


def check_vector_field(vector_field, t0, y0, args, what="vector field") -> None:
    """The vector field's output must match y0 in structure, shape and dtype (for an `sk.Split`,
    each part's: their sum alone would fail inside JAX, or broadcast to a wrong state)."""
    if isinstance(vector_field, Split):
        check_vector_field(vector_field.explicit, t0, y0, args, f"explicit part of the {what}")
        check_vector_field(vector_field.implicit, t0, y0, args, f"implicit part of the {what}")
    for path, leaf in jax.tree_util.tree_leaves_with_path(y0):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise ValueError(
                f"y0{jax.tree_util.keystr(path)} has dtype {leaf.dtype}; the state must be floating "
                "point (e.g. jnp.asarray(y0, float))."
            )
    # filter_eval_shape: `args` may hold non-array leaves (an equinox module's activation functions).
    out = eqx.filter_eval_shape(vector_field, t0, y0, args)
    if jax.tree.structure(out) != jax.tree.structure(y0):
        raise ValueError(
            f"The {what}'s output does not have the structure of y0: got "
            f"{jax.tree.structure(out)}, expected {jax.tree.structure(y0)}."
        )
    for (path, o), y in zip(jax.tree_util.tree_leaves_with_path(out), jax.tree.leaves(y0)):
        where = jax.tree_util.keystr(path) or "(the state)"
        if o.shape != y.shape:
            raise ValueError(
                f"The {what} returned shape {o.shape} at {where}, but y0 has shape {y.shape} there."
            )
        if o.dtype != y.dtype:
            raise ValueError(
                f"The {what} returned dtype {o.dtype} at {where}, but y0 has dtype {y.dtype} "
                "there; make them agree (the state's dtype is kept through the solve)."
            )


def _number_problems(t0, t1, dt0, saveat_ts, grid, brownian=None, xp=jnp, padded=False):
    """(bad, message) pairs; `bad` is a bool (or traced bool array). `xp` is `numpy` for
    concrete numbers (no tiny jitted op to compile per check), `jax.numpy` for traced ones.
    `padded`: the grid may repeat times (`StepTo(ts, padded=True)`)."""
    problems = []
    if brownian is not None:
        tree_t0, tree_t1 = xp.asarray(brownian.t0), xp.asarray(brownian.t1)
        problems.append((t1 < t0, "SDE solves run forwards in time: need t1 > t0."))
        problems.append(
            ((t0 < tree_t0) | (t1 > tree_t1), "The Brownian tree's interval [t0, t1] must contain the solve's.")
        )
        if dt0 is not None:
            problems.append(
                (xp.abs(dt0) < brownian.tol, "dt0 is smaller than the Brownian tree's tol: increments would not be "
                 "exact in joint law. Build the tree with a smaller tol.")
            )
    if dt0 is not None:
        problems.append((dt0 == 0, "dt0 must be non-zero."))
        problems.append(
            ((t1 - t0) * dt0 < 0, "dt0 has the wrong sign: it must be positive when t1 > t0 and negative when t1 < t0.")
        )
    for name, value in (("t0", t0), ("t1", t1)):
        problems.append((~xp.isfinite(value), f"{name} must be finite."))
    if saveat_ts is not None and saveat_ts.shape[0] > 0:
        lo, hi = xp.minimum(t0, t1), xp.maximum(t0, t1)
        problems.append(
            (xp.any((saveat_ts < lo) | (saveat_ts > hi)), "SaveAt(ts=...) has times outside [t0, t1].")
        )
        steps = xp.diff(saveat_ts) * xp.where(t1 >= t0, 1, -1).astype(saveat_ts.dtype)
        problems.append(
            (xp.any(steps < 0), "SaveAt(ts=...) must be sorted in the direction of integration (increasing when t1 > t0).")
        )
    if grid is not None:
        problems.append((grid[0] != t0, "StepTo(ts): ts[0] must equal t0."))
        problems.append((grid[-1] != t1, "StepTo(ts): ts[-1] must equal t1."))
        steps = xp.diff(grid) * xp.where(t1 >= t0, 1, -1).astype(grid.dtype)
        # Every per-step check reads the shortest step: one reduction (two kernels on XLA:CPU)
        # for all of them. The monotonicity check comes first, so the tol check only decides
        # when all steps are positive, and then the shortest is the smallest in magnitude.
        if padded:
            # Repeated times are skipped steps: only the steps taken must respect the tree's tol.
            problems.append((xp.min(steps) < 0, "StepTo(ts, padded=True) must be monotonic from t0 to t1."))
            shortest = xp.min(xp.where(steps > 0, steps, xp.inf))
        else:
            shortest = xp.min(steps)
            problems.append((shortest <= 0, "StepTo(ts) must be strictly monotonic from t0 to t1 (repeated times: "
                             "StepTo(ts, padded=True))."))
        if brownian is not None:
            problems.append(
                (shortest < brownian.tol, "StepTo(ts) has steps smaller than the Brownian tree's tol: "
                 "increments would not be exact in joint law. Build the tree with a smaller tol.")
            )
    return problems


def check_numbers_eagerly(t0, t1, dt0, saveat_ts, grid, brownian=None, padded=False) -> bool:
    """Raise ValueError for bad concrete numbers (the usual, non-traced call). Returns whether
    the numbers were concrete, and so checked: then no run-time checks are compiled."""
    tree_times = () if brownian is None else (brownian.t0, brownian.t1)
    if not all(is_concrete(x) for x in (t0, t1, dt0, saveat_ts, grid, *tree_times) if x is not None):
        return False
    numbers = (None if x is None else np.asarray(x) for x in (t0, t1, dt0, saveat_ts, grid))
    for bad, message in _number_problems(*numbers, brownian, xp=np, padded=padded):
        if bool(bad):
            raise ValueError(message)
    return True


def traced_failure(t0, t1, dt0, saveat_ts, grid, brownian=None, padded=False):
    """The checks on traced numbers as `(failed, index, messages)`: whether one fails, the first
    that does, and their messages; None when every check was decided at trace time.

    Scalar flags and a select chain, not a stacked vector with `any` and `argmax`: XLA fuses
    scalar work into one kernel, where each reduction costs two."""
    traced = [(jnp.asarray(bad, bool), message) for bad, message in _number_problems(t0, t1, dt0, saveat_ts, grid, brownian, padded=padded)
              if not is_concrete(bad)]
    if not traced:
        return None
    failed = traced[0][0]
    index = jnp.asarray(len(traced) - 1, jnp.int32)
    for i in range(len(traced) - 2, -1, -1):
        index = jnp.where(traced[i][0], jnp.int32(i), index)
    for bad, _ in traced[1:]:
        failed = failed | bad
    return failed, index, tuple(message for _, message in traced)


def check_numbers_traced(carrier, t0, t1, dt0, saveat_ts, grid, brownian=None, padded=False):
    """Attach runtime checks (for traced numbers) to `carrier`, returned unchanged. All of them
    go through one `branched_error_if` (the first failing check's message): each separate check
    costs trace and compile time."""
    failure = traced_failure(t0, t1, dt0, saveat_ts, grid, brownian, padded)
    if failure is None:
        return carrier
    failed, index, messages = failure
    # The first failing check of the worst lane under vmap (a passing lane's index means nothing:
    # reduced by equinox on its own, it could name a check that no lane failed).
    worst = -batch_min(-jnp.where(failed, index + 1, 0))
    return eqx.branched_error_if(carrier, worst > 0, worst, ("",) + tuple(messages))
