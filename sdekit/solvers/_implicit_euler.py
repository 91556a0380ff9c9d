"""Implicit (backward) Euler."""

import functools

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import ImplicitTableau
from ._tableau import fractions

#: As an ESDIRK: stage 1 is f(t0, y0) (kept for the error estimate and dense output), stage 2
#: solves y1 = y0 + h f(t1, y1). The embedded method is explicit Euler, b_hat = (1, 0), so the
#: estimate h (f(t1, y1) - f(t0, y0)) is O(h^2).
IMPLICIT_EULER_TABLEAU = ImplicitTableau(
    gamma=fractions(1)[0],
    c=fractions(0, 1),
    a=(fractions(0),),
    b=fractions(0, 1),
    e=fractions(-1, 1),
)


@functools.cache
def implicit_euler(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""Implicit Euler: $y_1 = y_0 + h f(t_1, y_1)$, solved by a chord Newton iteration.

    Order 1 on ODEs; L-stable (stability function $R(z) = 1/(1 - z)$, $R(\infty) = 0$). Error
    estimate $h\,(f(t_1, y_1) - f(t_0, y_0))$ (against explicit Euler, order 1), so it steps
    adaptively. Cubic Hermite dense output (free: both end derivatives are known). Per step:
    one or more Newton iterations (one evaluation each), a Jacobian only when the last one
    converged slowly.

    Args:
        jacobian: `None` (`jax.jacfwd`), or `jacobian(t, y, args) -> (n, n)` for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> stiff = sk.ODE(lambda t, y, args: -1000.0 * (y - jnp.cos(t)))
        >>> sol = sk.solve(stiff, sk.solvers.implicit_euler(), 0.0, 1.0, jnp.array(0.0), dt0=0.1)
        >>> round(float(sol.ys[-1]), 2)  # explicit Euler would blow up at this step
        0.54

    References:
        E. Hairer, G. Wanner, Solving ODEs II (2nd ed., 1996), Sec. IV.3.
    """
    return implicit_rk_solver("implicit_euler", IMPLICIT_EULER_TABLEAU, order=1, embedded_order=1,
                              jacobian=jacobian, linear_solver=linear_solver)
