"""Prince--Dormand 8(7)."""

import functools

from ._base import Solver
from ._dopri8_data import DOPRI8_TABLEAU
from ._explicit_rk import explicit_rk_solver


@functools.cache
def dopri8() -> Solver:
    """Prince--Dormand 8(7) (RK8(7)13M): thirteen stages.

    Order 8 on ODEs with an embedded order-7 estimate; a fifth-order dense output built from the
    thirteen stages and $f(t_1, y_1)$ (one extra evaluation per step, made only when dense output is
    used; order 6 is impossible from these stages, see `_dopri8_data`). For tight tolerances on
    smooth problems.

    References:
        P. J. Prince, J. R. Dormand, J. Comput. Appl. Math. 7 (1981) 67--75.
    """
    return explicit_rk_solver("dopri8", DOPRI8_TABLEAU, order=8, embedded_order=7, interpolation_order=5)
