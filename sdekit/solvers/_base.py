"""The `Solver` record: a method as pure functions plus the static facts `solve` checks."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class EmptyState(NamedTuple):
    """State of a solver that carries nothing between steps."""


class SDEFacts(NamedTuple):
    """What an SDE method supports and achieves, checked by `sk.solve`.

    Attributes:
        calculus: `"ito"` or `"stratonovich"`: the solution it converges to (for additive noise the
            two coincide and any method applies).
        strong_order: `(noise type, strong order)` pairs; noise types absent are unsupported.
        weak_order: `(noise type, weak order)` pairs.
        levy_area: the least the Brownian tree must provide: `"increment"`, `"space-time"` or
            `"space-time-time"`; or `"space-space"`: W, H and the path-consistent space-space Lévy
            area A (a tree built with `levy="space-time"` and `area=True`).
        error_order: `(noise type, order of the embedded error estimate)` pairs; empty when the
            method has no error estimate (it cannot then step adaptively).
    """

    calculus: str
    strong_order: tuple[tuple[str, float], ...]
    weak_order: tuple[tuple[str, float], ...]
    levy_area: str = "increment"
    error_order: tuple[tuple[str, float], ...] = ()

    def strong(self, noise: str) -> float | None:
        return dict(self.strong_order).get(noise)

    def weak(self, noise: str) -> float | None:
        return dict(self.weak_order).get(noise)

    def error(self, noise: str) -> float | None:
        return dict(self.error_order).get(noise)


class LinearDense(NamedTuple):
    """Dense output of an SDE step: linear between the step's end values."""

    y0: object
    y1: object


def linear_interpolate(dense: LinearDense, t0, t1, t):
    """Linear interpolation between the ends of a step (the natural dense output of SDE steps)."""
    h = jnp.asarray(t1) - jnp.asarray(t0)
    theta = jnp.where(h == 0, 0.0, (t - t0) / jnp.where(h == 0, 1.0, h))
    return jax.tree.map(lambda a, b: a + theta.astype(a.dtype) * (b - a), dense.y0, dense.y1)


class Solver(NamedTuple):
    """A numerical method as a pair of pure functions, in the manner of optax.

    A step has the shape::

        state = solver.init(problem, t0, y0, args)
        y1, y_error, dense, state = solver.step(problem, t0, t1, y0, args, inc, state)
        y_t = solver.interpolate(dense, t0, t1, t)   # dense output inside [t0, t1]

    so it can be used on its own inside a user's `lax.scan`. `inc` is `None` for ODEs and a
    `sk.Increment` for SDEs; `y_error` is `None` when the method has no embedded estimate.

    Attributes:
        name: the method's name, for messages.
        init: `(problem, t0, y0, args) -> state`.
        step: `(problem, t0, t1, y0, args, inc, state) -> (y1, y_error, dense, state)`.
        interpolate: `(dense, t0, t1, t) -> y(t)`.
        order: order of convergence on ODEs (global error $O(h^p)$); `None` if not an ODE method.
        embedded_order: order of the embedded method whose difference is `y_error`; `None`
            without an error estimate (such a solver cannot be used adaptively).
        interpolation_order: order of `interpolate`'s local error ($O(h^{q+1})$ per step).
        fevals_per_step: vector-field evaluations per step (after the first, for FSAL methods).
        init_fevals: evaluations made by `init` (1 for FSAL methods).
        dense_fevals: extra evaluations per step when dense output is used.
        sde: `SDEFacts` (orders per noise type, Lévy area, calculus, error estimate); `None` for
            ODE-only methods.
        inverse_step: for algebraically reversible methods, the exact inverse of `step`:
            `(problem, t0, t1, y1, args, inc, state1) -> (y0, state0)`; `sk.adjoint.Reversible`
            needs it (it rebuilds the trajectory backwards). `None` for other methods.
    """

    name: str
    init: Callable[..., Any]
    step: Callable[..., Any]
    interpolate: Callable[..., Any]
    order: int | None
    embedded_order: int | None
    interpolation_order: int
    fevals_per_step: int
    init_fevals: int = 0
    dense_fevals: int = 0
    sde: SDEFacts | None = None
    inverse_step: Callable[..., Any] | None = None

    @property
    def is_reversible(self) -> bool:
        return self.inverse_step is not None

    @property
    def has_error_estimate(self) -> bool:
        return self.embedded_order is not None

    @property
    def error_order(self) -> int | None:
        """Order of the local error estimate (embedded order + 1), used by step-size control."""
        return None if self.embedded_order is None else self.embedded_order + 1

    def __repr__(self) -> str:
        return f"Solver({self.name})"
