"""Dormand--Prince 5(4)."""

import functools

from ._base import Solver
from ._dopri5_data import DOPRI5_TABLEAU
from ._explicit_rk import explicit_rk_solver


@functools.cache
def dopri5() -> Solver:
    """Dormand--Prince 5(4) (RK5(4)7M): seven stages, first-same-as-last.

    Order 5 on ODEs with an embedded order-4 estimate; Shampine's fourth-order dense output
    (no extra evaluations).

    References:
        J. R. Dormand, P. J. Prince, J. Comput. Appl. Math. 6 (1980) 19--26;
        L. F. Shampine, Math. Comp. 46 (1986) 135--150 (dense output).
    """
    return explicit_rk_solver("dopri5", DOPRI5_TABLEAU, order=5, embedded_order=4, interpolation_order=4)
