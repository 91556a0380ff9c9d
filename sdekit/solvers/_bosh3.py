"""Bogacki--Shampine 3(2)."""

import functools

from ._base import Solver
from ._explicit_rk import explicit_rk_solver
from ._tableau import ButcherTableau, fractions

_BOSH3_TABLEAU = ButcherTableau(
    c=fractions(0, "1/2", "3/4", 1),
    a=(
        fractions("1/2"),
        fractions(0, "3/4"),
        fractions("2/9", "1/3", "4/9"),
    ),
    b=fractions("2/9", "1/3", "4/9", 0),
    # b - b̂ with the embedded second-order weights b̂ = (7/24, 1/4, 1/3, 1/8).
    e=fractions("-5/72", "1/12", "1/9", "-1/8"),
)


@functools.cache
def bosh3() -> Solver:
    """Bogacki--Shampine 3(2): four stages, first-same-as-last (three new evaluations per step).

    Order 3 on ODEs with an embedded order-2 estimate; cubic Hermite dense output (free, FSAL).

    References:
        P. Bogacki, L. F. Shampine, Appl. Math. Lett. 2(4) (1989) 321--325.
    """
    return explicit_rk_solver("bosh3", _BOSH3_TABLEAU, order=3, embedded_order=2, interpolation_order=3)
