"""Kvaerno's ESDIRK 4(3), five stages, L-stable."""

import functools
from fractions import Fraction

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import stiffly_accurate_esdirk

#: The root of 24 g^4 - 96 g^3 + 72 g^2 - 16 g + 1 = 0 near 0.5728 that makes the method
#: L-stable, to 35 digits (the coefficients are exact functions of it).
GAMMA = Fraction("0.57281606248213485540800138497676834")


def _poly(g, *coefficients):
    out = Fraction(0)
    for c in coefficients:
        out = out * g + c
    return out


def _tableau(g: Fraction):
    # Kvaerno (2004), the 4(3) pair: coefficients as rational functions of gamma.
    p = functools.partial(_poly, g)
    a = (
        (g,),
        (p(144, -180, 81, -15, 1) * g / p(12, -6, 1) ** 2, p(-36, 39, -15, 2) * g / p(12, -6, 1) ** 2),
        (
            p(-144, 396, -330, 117, -18, 1) / (12 * g**2 * p(12, -9, 2)),
            p(72, -126, 69, -15, 1) / (12 * g**2 * p(3, -1)),
            p(-6, 6, -1) * p(12, -6, 1) ** 2 / (12 * g**2 * p(12, -9, 2) * p(3, -1)),
        ),
        (
            p(288, -312, 120, -18, 1) / (48 * g**2 * p(12, -9, 2)),
            p(24, -12, 1) / (48 * g**2 * p(3, -1)),
            -p(12, -6, 1) ** 3 / (48 * g**2 * p(3, -1) * p(12, -9, 2) * p(6, -6, 1)),
            p(-24, 36, -12, 1) / p(24, -24, 4),
        ),
    )
    c = (Fraction(0), 2 * g, g + sum(a[1]), Fraction(1), Fraction(1))
    # The embedded third-order solution is stage 4 (also at c = 1).
    return stiffly_accurate_esdirk(g, c, a, e_embedded_row=a[2])


KVAERNO4_TABLEAU = _tableau(GAMMA)


@functools.cache
def kvaerno4(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Kvaerno 4(3): an L-stable, stiffly accurate ESDIRK with five stages (four implicit).

    Order 4 on ODEs with an embedded order-3 solution (its fourth stage) for the error estimate;
    $\gamma \approx 0.5728$. First same as last; cubic Hermite dense output. Implicit stages by a
    chord Newton iteration sharing one LU factorisation of $I - h\gamma J$ per step; the
    Jacobian is reused across steps until the iteration slows.

    Args:
        jacobian: `None` (`jax.jacfwd`), or `jacobian(t, y, args) -> (n, n)` for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> stiff = sk.ODE(lambda t, y, args: -1000.0 * (y - jnp.cos(t)))
        >>> sol = sk.solve(stiff, sk.solvers.kvaerno4(), 0.0, 1.0, jnp.array(0.0),
        ...                controller=sk.PID(rtol=1e-6, atol=1e-8))
        >>> round(float(sol.ys[-1]), 4)
        0.5411

    References:
        A. Kvaernø, "Singly diagonally implicit Runge--Kutta methods with an explicit first
        stage", BIT 44 (2004) 489--502.
    """
    return implicit_rk_solver("kvaerno4", KVAERNO4_TABLEAU, order=4, embedded_order=3, jacobian=jacobian,
                              linear_solver=linear_solver)
