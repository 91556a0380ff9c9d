"""Built-in test problems for order experiments: each with an exact solution or a reference."""

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from sdekit import ODE


class TestProblem(NamedTuple):
    """A problem for convergence experiments.

    Attributes:
        name: registry key.
        problem: the equation.
        y0: initial state.
        t0, t1: interval.
        exact: `t -> y(t)` (NumPy, float64), or `None` to use a fine reference solve.
        description: one line for tables.
    """

    name: str
    problem: ODE
    y0: Callable[[], object]
    t0: float
    t1: float
    exact: Callable[[np.ndarray], object] | None
    description: str


def _exp_sin(t, y, args):
    return 2 * jnp.cos(2 * t) * y


def _lotka_volterra(t, y, args):
    return jnp.stack([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])


def _van_der_pol(t, y, args):
    return jnp.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]])


PROBLEMS = {
    p.name: p
    for p in [
        TestProblem(
            "exp-sin", ODE(_exp_sin), lambda: jnp.ones(()), 0.0, 4.0,
            lambda t: np.exp(np.sin(2 * t)), "y' = 2 cos(2t) y, y = exp(sin 2t)",
        ),
        TestProblem(
            "lotka-volterra", ODE(_lotka_volterra), lambda: jnp.array([10.0, 1.0]), 0.0, 4.0, None,
            "Lotka-Volterra (1.5, 1, 3, 1), reference: Dopri8 on 12288 steps, rounding-compensated",
        ),
        TestProblem(
            "van-der-pol", ODE(_van_der_pol), lambda: jnp.array([2.0, 0.0]), 0.0, 4.0, None,
            "Van der Pol, mu = 1, reference: Dopri8 on 12288 steps, rounding-compensated",
        ),
    ]
}
