"""Kvaerno's ESDIRK 3(2), four stages, L-stable."""

import functools
from fractions import Fraction

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import stiffly_accurate_esdirk

#: The root of 6 g^3 - 18 g^2 + 9 g - 1 = 0 in (0, 1) that makes the method L-stable, to 35
#: digits (the coefficients below are exact functions of it, so the order conditions hold exactly).
GAMMA = Fraction("0.43586652150845899941601945119355684")


def _tableau(g: Fraction):
    # Kvaerno (2004), Table for the 3(2) pair: coefficients as functions of gamma.
    a = (
        (g,),
        ((-4 * g**2 + 6 * g - 1) / (4 * g), (-2 * g + 1) / (4 * g)),
        ((6 * g - 1) / (12 * g), -1 / ((24 * g - 12) * g), (-6 * g**2 + 6 * g - 1) / (6 * g - 3)),
    )
    c = (Fraction(0), 2 * g, Fraction(1), Fraction(1))
    # The embedded second-order solution is stage 3 (also at c = 1).
    return stiffly_accurate_esdirk(g, c, a, e_embedded_row=a[1])


KVAERNO3_TABLEAU = _tableau(GAMMA)


@functools.cache
def kvaerno3(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Kvaerno 3(2): an L-stable, stiffly accurate ESDIRK with four stages (three implicit).

    Order 3 on ODEs with an embedded order-2 solution (its third stage) for the error estimate;
    $\gamma \approx 0.4359$. The first stage is $f(t_0, y_0)$, the last stage's derivative
    $f(t_1, y_1)$ (first same as last). Cubic Hermite dense output. Implicit stages by a chord
    Newton iteration sharing one LU factorisation of $I - h\gamma J$ per step; the Jacobian is
    reused across steps until the iteration slows.

    Args:
        jacobian: `None` (`jax.jacfwd`), or `jacobian(t, y, args) -> (n, n)` for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> stiff = sk.ODE(lambda t, y, args: -1000.0 * (y - jnp.cos(t)))
        >>> sol = sk.solve(stiff, sk.solvers.kvaerno3(), 0.0, 1.0, jnp.array(0.0),
        ...                controller=sk.PID(rtol=1e-6, atol=1e-8))
        >>> round(float(sol.ys[-1]), 4)
        0.5411

    References:
        A. Kvaernø, "Singly diagonally implicit Runge--Kutta methods with an explicit first
        stage", BIT 44 (2004) 489--502.
    """
    return implicit_rk_solver("kvaerno3", KVAERNO3_TABLEAU, order=3, embedded_order=2, jacobian=jacobian,
                              linear_solver=linear_solver)
