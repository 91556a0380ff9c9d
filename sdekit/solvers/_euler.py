"""Explicit Euler."""

import functools

from ._base import Solver
from ._explicit_rk import explicit_rk_solver
from ._tableau import ButcherTableau, fractions

_EULER_TABLEAU = ButcherTableau(
    c=fractions(0),
    a=(),
    b=fractions(1),
    dense=(fractions(1),),  # y0 + θ h f(t0, y0): linear, exact at both ends
)


@functools.cache
def euler() -> Solver:
    """Explicit Euler: $y_1 = y_0 + h f(t_0, y_0)$.

    Order 1 on ODEs; one evaluation per step; no error estimate (fixed steps only); linear dense
    output.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sol = sk.solve(sk.ODE(lambda t, y, args: -y), sk.solvers.euler(), 0.0, 1.0,
        ...                jnp.array(1.0), dt0=0.001)
        >>> round(float(sol.ys[-1]), 3)
        0.368

    References:
        L. Euler, Institutiones calculi integralis (1768).
    """
    return explicit_rk_solver("euler", _EULER_TABLEAU, order=1, embedded_order=None, interpolation_order=1)
