r"""SRA1: Rößler's strong order 1.5 Runge--Kutta method for additive noise (2010).r"""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import AdditiveNoiseCoeffs, StochasticTableau, make_srk_solver

#: SRA1 in the additive form of `StochasticTableau`. Rößler's stage shift
#: $\tfrac32 I_{(1,0)}/h$ is $\tfrac34 W + \tfrac32 H$, since $I_{(1,0)} = h(W/2 + H)$.
SRA1_TABLEAU = StochasticTableau(
    c=(F(0), F(3, 4)),
    a=((F(3, 4),),),
    b=(F(1, 3), F(2, 3)),
    e=(F(-2, 3), F(2, 3)),
    w=AdditiveNoiseCoeffs(a=(F(0), F(3, 4)), b=F(1)),
    h=AdditiveNoiseCoeffs(a=(F(0), F(3, 2)), b=F(0)),
)


@functools.cache
def sra1() -> Solver:
    r"""Rößler's SRA1, a two-stage stochastic Runge--Kutta method for SDEs with additive noise.

    With $g_0 = g(t_0)$, $g_1 = g(t_1)$, the increment $W$ and space-time Lévy area $H$:

    $$z_2 = y_0 + \tfrac34 h f(t_0, y_0) + g_0(\tfrac34 W + \tfrac32 H),$$
    $$y_1 = y_0 + h\big(\tfrac13 f(t_0, y_0) + \tfrac23 f(t_0 + \tfrac34 h, z_2)\big) + g_0 W
    + (g_1 - g_0)(\tfrac12 W - H).$$

    - Noise: additive only ($g$ may depend on $t$, not on $y$; `init` checks this).
    - Orders: strong 1.5, weak 2 (additive noise; Stratonovich and Itô coincide).
    - Evaluations per step: 2 drift, 2 diffusion (at $t_0$ and $t_1$).
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: $\tfrac23 h (f_2 - f_1)$, of size $O(h^{1.5})$ per step
      (`sde.error_order`); `embedded_order` is 1.

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `init` if the diffusion depends on $y$; from `step` if the increment
            has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import sra1
        >>> sde = sk.SDE(lambda t, y, a: jnp.sin(y), lambda t, y, a: 0.5 * jnp.ones_like(y),
        ...              noise="additive")
        >>> kw, kh = jax.random.split(jax.random.key(0))
        >>> inc = sk.Increment(jnp.asarray(0.1), jnp.sqrt(0.1) * jax.random.normal(kw, (2,)),
        ...                    jnp.sqrt(0.1 / 12) * jax.random.normal(kh, (2,)), None)
        >>> solver, y0 = sra1(), jnp.zeros(2)
        >>> y1, y_error, _, _ = solver.step(sde, 0.0, 0.1, y0, None, inc,
        ...                                 solver.init(sde, 0.0, y0, None))
        >>> y1.shape, y_error.shape
        ((2,), (2,))

    References:
        A. Rößler, "Runge--Kutta methods for the strong approximation of solutions of stochastic
        differential equations", SIAM J. Numer. Anal. 48(3) (2010) 922--952,
        doi:10.1137/09076636X (method SRA1).
    """
    return make_srk_solver(
        "sra1",
        SRA1_TABLEAU,
        strong_order=(("additive", 1.5),),
        weak_order=(("additive", 2.0),),
        error_order=(("additive", 1.5),),
    )
