"""Tsitouras 5(4)."""

import functools

from ._base import Solver
from ._explicit_rk import explicit_rk_solver
from ._tsit5_data import TSIT5_TABLEAU


@functools.cache
def tsit5() -> Solver:
    """Tsitouras 5(4): seven stages, first-same-as-last (six new evaluations per step).

    Order 5 on ODEs with an embedded order-4 estimate; fourth-order dense output from the
    paper's continuous extension (no extra evaluations). A good default for non-stiff problems.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sol = sk.solve(sk.ODE(lambda t, y, args: -y), sk.solvers.tsit5(), 0.0, 1.0,
        ...                jnp.array(1.0), dt0=None, controller=sk.PID(rtol=1e-6, atol=1e-8))
        >>> round(float(sol.ys[-1]), 5)
        0.36788

    References:
        Ch. Tsitouras, Comput. Math. Appl. 62 (2011) 770--775.
    """
    return explicit_rk_solver("tsit5", TSIT5_TABLEAU, order=5, embedded_order=4, interpolation_order=4)
