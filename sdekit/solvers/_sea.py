r"""SEA: shifted Euler method for additive noise (Foster, dos Reis, Strange 2023)."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import AdditiveNoiseCoeffs, StochasticTableau, make_srk_solver

#: SEA in the additive form of `StochasticTableau` (arXiv 2210.17543, eq. (5.8)): the drift is
#: evaluated at $y_0$ shifted by $g_0$ times the step's time-average of $W$, $W/2 + H$.
SEA_TABLEAU = StochasticTableau(
    c=(F(0),),
    a=(),
    b=(F(1),),
    e=None,
    w=AdditiveNoiseCoeffs(a=(F(1, 2),), b=F(1)),
    h=AdditiveNoiseCoeffs(a=(F(1),), b=F(0)),
)


@functools.cache
def sea() -> Solver:
    r"""SEA, the shifted Euler method, for SDEs with additive noise.

    With $g_0 = g(t_0)$, $g_1 = g(t_1)$, the increment $W$ and space-time Lévy area $H$:

    $$y_1 = y_0 + h f\big(t_0, y_0 + g_0(\tfrac12 W + H)\big) + g_0 W + (g_1 - g_0)(\tfrac12 W - H).$$

    Its local error is $O(h^2)$ (Euler--Maruyama's is $O(h^{1.5})$) and its error constant
    smaller than Euler's.

    - Noise: additive only ($g$ may depend on $t$, not on $y$; `init` checks this).
    - Orders: strong 1.0, weak 1 (additive noise; Stratonovich and Itô coincide).
    - Evaluations per step: 1 drift, 2 diffusion (at $t_0$ and $t_1$).
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: none (fixed steps only).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `init` if the diffusion depends on $y$; from `step` if the increment
            has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import sea
        >>> sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.ones_like(y), noise="additive")
        >>> kw, kh = jax.random.split(jax.random.key(0))
        >>> inc = sk.Increment(jnp.asarray(0.1), jnp.sqrt(0.1) * jax.random.normal(kw, ()),
        ...                    jnp.sqrt(0.1 / 12) * jax.random.normal(kh, ()), None)
        >>> solver, y0 = sea(), jnp.array(1.0)
        >>> y1, y_error, _, _ = solver.step(sde, 0.0, 0.1, y0, None, inc,
        ...                                 solver.init(sde, 0.0, y0, None))
        >>> y1.shape, y_error is None
        ((), True)

    References:
        J. Foster, G. dos Reis, C. Strange, "High order splitting methods for SDEs satisfying a
        commutativity condition", arXiv 2210.17543 (2023), eq. (5.8) (numbering as cited by
        diffrax 0.7.2).
    """
    return make_srk_solver(
        "sea",
        SEA_TABLEAU,
        strong_order=(("additive", 1.0),),
        weak_order=(("additive", 1.0),),
    )
