"""Kvaerno's ESDIRK 5(4), seven stages, L-stable."""

import functools
from fractions import Fraction

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import stiffly_accurate_esdirk
from ._tableau import fractions

GAMMA = Fraction("0.26")

#: Kvaerno (2004), the 5(4) pair: the published decimals (17 significant digits) as they stand;
#: gamma and a31 are exact. The order conditions hold to the decimals' rounding (~1e-16).
_A = (
    (GAMMA,),
    fractions("0.13", "0.84033320996790809"),
    fractions("0.22371961478320505", "0.47675532319799699", "-0.06470895363112615"),
    fractions("0.16648564323248321", "0.10450018841591720", "0.03631482272098715", "-0.13090704451073998"),
    fractions("0.13855640231268224", 0, "-0.04245337201752043", "0.02446657898003141", "0.61943039072480676"),
    fractions("0.13659751177640291", 0, "-0.05496908796538376", "-0.04118626728321046", "0.62993304899016403",
              "0.06962479448202728"),
)
#: Nodes as the rows' sums (the published c agree to ~1e-16; the test compares them).
_C = (Fraction(0),) + tuple(sum(row) + GAMMA for row in _A)

#: The embedded fourth-order solution is stage 6 (also at c = 1).
KVAERNO5_TABLEAU = stiffly_accurate_esdirk(GAMMA, _C, _A, e_embedded_row=_A[4])


@functools.cache
def kvaerno5(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Kvaerno 5(4): an L-stable, stiffly accurate ESDIRK with seven stages (six implicit).

    Order 5 on ODEs with an embedded order-4 solution (its sixth stage) for the error estimate;
    $\gamma = 0.26$. First same as last; cubic Hermite dense output. One stage node is
    $c_3 \approx 1.23$: the vector field is evaluated slightly past the step's end. Implicit
    stages by a chord Newton iteration sharing one LU factorisation of $I - h\gamma J$ per step;
    the Jacobian is reused across steps until the iteration slows. The default for stiff problems
    at tight tolerances.

    Args:
        jacobian: `None` (`jax.jacfwd`), or `jacobian(t, y, args) -> (n, n)` for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> def robertson(t, y, args):
        ...     a, b, c = y
        ...     return jnp.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b**2, 3e7 * b**2])
        >>> sol = sk.solve(sk.ODE(robertson), sk.solvers.kvaerno5(), 0.0, 100.0, jnp.array([1.0, 0.0, 0.0]),
        ...                controller=sk.PID(rtol=1e-4, atol=1e-8))
        >>> round(float(sol.ys[-1, 0]), 3), int(sol.result)
        (0.617, 0)

    References:
        A. Kvaernø, "Singly diagonally implicit Runge--Kutta methods with an explicit first
        stage", BIT 44 (2004) 489--502.
    """
    return implicit_rk_solver("kvaerno5", KVAERNO5_TABLEAU, order=5, embedded_order=4, jacobian=jacobian,
                              linear_solver=linear_solver)
