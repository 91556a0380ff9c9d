r"""Underdamped Langevin MCMC in blackjax's shape: `init`, `build_kernel` and the constructor `uld`.

A kernel step runs the underdamped Langevin diffusion

$$dx = v\,dt,\qquad dv = -\gamma v\,dt - u\,\nabla f(x)\,dt + \sqrt{2\gamma u}\,dW_t,\qquad
f = -\log \pi,$$

for `sample_time` with one `sk.solve` driven by a fresh `sk.BrownianTree` keyed by the step's
key: constant steps (a fixed grid, all increments drawn at once) or adaptive steps (`sk.PID`
querying the tree). The chain is $(x, v)$ at the ends of these intervals; for small steps its
$x$-marginal tends to $\pi$. No Metropolis correction: the bias is the solver's weak error
(order 2 for ALIGN, 3 for ShOULD and QUICSORT).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Int, PyTree

import sdekit as sk


class ULDState(NamedTuple):
    """The carried state of a ULD chain: position and velocity (pytrees of one structure)."""

    position: PyTree[Array]
    velocity: PyTree[Array]


class ULDInfo(NamedTuple):
    """What one kernel step did (diagnostics, not carried).

    Attributes:
        num_grad_evals: gradient evaluations of the step's solve (int32).
        num_steps: solver steps, accepted and rejected (int32).
        num_rejected: rejected steps (adaptive only; int32).
        failed: whether the solve failed (with `throw=False`: e.g. a step below the controller's
            `dtmin`); the state is then where the solve stopped, short of `sample_time`.
    """

    num_grad_evals: Int[Array, ""]
    num_steps: Int[Array, ""]
    num_rejected: Int[Array, ""]
    failed: Array


class ULDSampler(NamedTuple):
    """A ULD sampler as blackjax's `SamplingAlgorithm`: `state = init(position, key)`,
    `state, info = step(key, state)`."""

    init: Callable[..., ULDState]
    step: Callable[..., tuple[ULDState, ULDInfo]]


def init(position: PyTree[ArrayLike], key=None, *, u: ArrayLike = 1.0) -> ULDState:
    r"""A chain's first state: the position given, the velocity drawn from its stationary law
    $N(0, u)$ (zero without a key).

    Examples:
        >>> import jax.numpy as jnp, sdekit.mcmc as skm
        >>> skm.init(jnp.ones(2)).velocity
        Array([0., 0.], dtype=float32)
    """
    position = jax.tree.map(jnp.asarray, position)
    if key is None:
        return ULDState(position, jax.tree.map(jnp.zeros_like, position))
    leaves, treedef = jax.tree.flatten(position)
    keys = jax.random.split(key, len(leaves))
    velocity = [jnp.sqrt(jnp.asarray(u, x.dtype)) * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    return ULDState(position, jax.tree.unflatten(treedef, velocity))


def build_kernel(solver: sk.solvers.Solver | None = None, *, sample_time: float = 1.0, step_size: float = 0.1,
                 brownian_tol: float | None = None, max_steps: int = 4096, throw: bool = True) -> Callable:
    r"""The ULD transition kernel `kernel(key, state, grad_f, gamma, u, controller=None, args=None)`.

    The static choices (solver, interval, step, tree resolution, step bound) are fixed here; the
    numbers a user tunes (`gamma`, `u`, the controller's tolerances and gains) are arguments, so
    new values do not recompile.

    Args:
        solver: a Langevin method (default `sk.solvers.quicsort()`); `sk.solvers.align()` for
            adaptive steps.
        sample_time: the diffusion's time between two states of the chain.
        step_size: the constant step, or the first step of an adaptive solve.
        brownian_tol: the tree's resolution (default: `step_size / 2` for constant steps; for
            adaptive steps the controller's `dtmin` must be at least this).
        max_steps: bound on the steps of one kernel call (static).
        throw: raise if a solve fails (default); with False the chain goes on from where the
            solve stopped and `ULDInfo.failed` records it.

    Returns:
        `kernel(key, state, grad_f, gamma, u, controller=None, args=None) -> (ULDState, ULDInfo)`:
        constant steps when `controller` is None, else the given `sk.PID`.
    """
    solver = sk.solvers.quicsort() if solver is None else solver
    levy = solver.sde.levy_area if solver.sde is not None else "space-time-time"
    tol = step_size / 2 if brownian_tol is None else brownian_tol

    def kernel(key, state: ULDState, grad_f: Callable, gamma, u, controller=None, args: Any = None):
        problem = sk.UnderdampedLangevin(grad_f, gamma=gamma, u=u)
        tree = sk.BrownianTree(key, 0.0, sample_time, shape=_brownian_shape(state.position), tol=tol, levy=levy)
        sol = sk.solve(problem, solver, 0.0, sample_time, (state.position, state.velocity), args, dt0=step_size,
                       controller=controller, brownian=tree, max_steps=max_steps, throw=throw)
        x, v = jax.tree.map(lambda a: a[-1], sol.ys)
        stats = sol.stats
        info = ULDInfo(jnp.asarray(stats["num_fevals"], jnp.int32), jnp.asarray(stats["num_steps"], jnp.int32),
                       jnp.asarray(stats["num_rejected_steps"], jnp.int32), sol.result != sk.RESULTS.successful)
        return ULDState(x, v), info

    return kernel


def uld(logdensity_fn: Callable | None = None, *, grad_f: Callable | None = None,
        solver: sk.solvers.Solver | None = None, step_size: float = 0.1, sample_time: float = 1.0,
        gamma: ArrayLike = 1.0, u: ArrayLike = 1.0, controller: sk.PID | None = None,
        brownian_tol: float | None = None, max_steps: int = 4096, throw: bool = True) -> ULDSampler:
    r"""Underdamped Langevin MCMC: a sampler with `init(position, key)` and `step(key, state)`.

    Args:
        logdensity_fn: $\log\pi(x)$ up to a constant (its gradient is taken by `jax.grad`);
            or give `grad_f` instead.
        grad_f: $\nabla f(x) = -\nabla\log\pi(x)$, as `grad_f(x)`.
        solver: a Langevin method: `sk.solvers.quicsort()` (default; strong order 3, 2
            gradients a step), `should()` or `align()` (order 2, 1 gradient a step, adaptive).
        step_size: the constant step (or the first adaptive step).
        sample_time: diffusion time between states (the paper's `chain_sep`).
        gamma, u: friction and inverse mass (scalars or arrays broadcastable to the position).
        controller: `sk.PID(...)` for adaptive steps (needs a solver with an error estimate:
            `align()`), or None for constant steps.
        brownian_tol: the tree's resolution (see `build_kernel`).
        max_steps: bound on the steps of one transition.
        throw: see `build_kernel`.

    Returns:
        A `ULDSampler`.

    Raises:
        ValueError: without exactly one of `logdensity_fn` and `grad_f`.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.mcmc as skm
        >>> sampler = skm.uld(lambda x: -0.5 * jnp.sum(x**2), step_size=0.25)
        >>> state = sampler.init(jnp.zeros(2), jax.random.key(0))
        >>> state, info = jax.jit(sampler.step)(jax.random.key(1), state)
        >>> int(info.num_grad_evals)  # 4 steps of QUICSORT, 2 gradients each
        8

    References:
        A. Jelinčič, J. Foster, P. Kidger, "Single-seed generation of Brownian paths and
        integrals for adaptive and high order SDE solvers", arXiv 2405.06464 (2024), §5
        (adaptive QUICSORT against NUTS); the interface follows blackjax (`blackjax.mcmc`).
    """
    if (logdensity_fn is None) == (grad_f is None):
        raise ValueError("sdekit.mcmc.uld: give exactly one of logdensity_fn (log pi) and grad_f (-grad log pi).")
    if grad_f is None:
        def grad_f(x, logdensity=logdensity_fn):
            return jax.tree.map(jnp.negative, jax.grad(logdensity)(x))
    def potential_grad(x, args):
        return grad_f(x)

    kernel = build_kernel(solver, sample_time=sample_time, step_size=step_size, brownian_tol=brownian_tol,
                          max_steps=max_steps, throw=throw)

    def init_fn(position, key=None):
        return init(position, key, u=u)

    def step_fn(key, state):
        return kernel(key, state, potential_grad, gamma, u, controller)

    return ULDSampler(init_fn, step_fn)


def _brownian_shape(position):
    """The tree's shape for a position: one Brownian motion per component, in its dtype."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), position)
