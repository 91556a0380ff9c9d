"""The `Solver` record: a method as pure functions plus the static facts `solve` checks."""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class EmptyState(NamedTuple):
    """State of a solver that carries nothing between steps."""


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
        sde: static SDE facts (orders per noise type, Lévy area, calculus); `None` for ODE-only
            methods.
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
    sde: Mapping[str, Any] | None = None

    @property
    def has_error_estimate(self) -> bool:
        return self.embedded_order is not None

    @property
    def error_order(self) -> int | None:
        """Order of the local error estimate (embedded order + 1), used by step-size control."""
        return None if self.embedded_order is None else self.embedded_order + 1

    def __repr__(self) -> str:
        return f"Solver({self.name})"
