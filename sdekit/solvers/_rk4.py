"""The classical fourth-order Runge--Kutta method."""

import functools

from ._base import Solver
from ._explicit_rk import explicit_rk_solver
from ._tableau import ButcherTableau, fractions

_RK4_TABLEAU = ButcherTableau(
    c=fractions(0, "1/2", "1/2", 1),
    a=(
        fractions("1/2"),
        fractions(0, "1/2"),
        fractions(0, 0, 1),
    ),
    b=fractions("1/6", "1/3", "1/3", "1/6"),
    # Third-order continuous extension:
    # b1 = θ - 3θ²/2 + 2θ³/3, b2 = b3 = θ² - 2θ³/3, b4 = -θ²/2 + 2θ³/3.
    dense=(
        fractions(1, "-3/2", "2/3"),
        fractions(0, 1, "-2/3"),
        fractions(0, 1, "-2/3"),
        fractions(0, "-1/2", "2/3"),
    ),
)


@functools.cache
def rk4() -> Solver:
    """The classical Runge--Kutta method (RK4).

    Order 4 on ODEs; four evaluations per step; no error estimate (fixed steps only);
    third-order dense output from the stages.

    References:
        W. Kutta, Z. Math. Phys. 46 (1901) 435--453.
    """
    return explicit_rk_solver("rk4", _RK4_TABLEAU, order=4, embedded_order=None, interpolation_order=3)
