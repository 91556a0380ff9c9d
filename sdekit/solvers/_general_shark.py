r"""GeneralShARK: ShARK for Stratonovich SDEs with any noise (Foster, dos Reis, Strange 2023)."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import GeneralNoiseCoeffs, StochasticTableau, make_srk_solver

#: GeneralShARK in the general form of `StochasticTableau` (arXiv 2210.17543, eq. (6.1)). Stage 0
#: only evaluates the diffusion at $y_0$ (its drift value is unused, so never computed).
GENERAL_SHARK_TABLEAU = StochasticTableau(
    c=(F(0), F(0), F(5, 6)),
    a=((F(0),), (F(0), F(5, 6))),
    b=(F(0), F(2, 5), F(3, 5)),
    e=None,
    w=GeneralNoiseCoeffs(a=((F(0),), (F(0), F(5, 6))), b=(F(0), F(2, 5), F(3, 5))),
    h=GeneralNoiseCoeffs(a=((F(1),), (F(1), F(0))), b=(F(0), F(6, 5), F(-6, 5))),
)


@functools.cache
def general_shark() -> Solver:
    r"""GeneralShARK: the ShARK method extended to Stratonovich SDEs with any noise.

    With $g_0 = g(t_0, y_0)$: $z_1 = y_0 + g_0 H$,
    $z_2 = y_0 + \tfrac56 (h f_1 + g_1 W) + g_0 H$ (stage time $t_0 + \tfrac56 h$), and
    $y_1 = y_0 + \tfrac25(h f_1 + g_1 W) + \tfrac35(h f_2 + g_2 W) + \tfrac65 (g_1 - g_2) H$,
    where $f_j, g_j$ are drift and diffusion at $z_j$.

    - Calculus: Stratonovich.
    - Strong orders: 0.5 general noise, 1.0 commutative and scalar noise, 1.5 additive noise.
      `"diagonal"` noise counts as general (0.5): it is commutative, with order 1.0, only when
      each $g_i$ depends on $y_i$ alone. Weak orders: 1 (2 for additive noise).
    - Evaluations per step: 2 drift, 3 diffusion (one fewer drift than `spark`).
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: none (fixed steps; use `spark` to adapt).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `step` if the increment has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import general_shark
        >>> def g(t, y, args):  # 2 state components, 3 Brownian motions: shape (2, 3)
        ...     return jnp.stack([y, jnp.array([-y[1], y[0]]), jnp.ones(2)], axis=-1)
        >>> sde = sk.SDE(lambda t, y, a: -0.1 * y, g, noise="general", calculus="stratonovich")
        >>> kw, kh = jax.random.split(jax.random.key(0))
        >>> inc = sk.Increment(jnp.asarray(0.1), jnp.sqrt(0.1) * jax.random.normal(kw, (3,)),
        ...                    jnp.sqrt(0.1 / 12) * jax.random.normal(kh, (3,)), None)
        >>> solver, y0 = general_shark(), jnp.array([1.0, 0.0])
        >>> y1, y_error, _, _ = solver.step(sde, 0.0, 0.1, y0, None, inc,
        ...                                 solver.init(sde, 0.0, y0, None))
        >>> y1.shape, y_error is None
        ((2,), True)

    References:
        J. Foster, G. dos Reis, C. Strange, "High order splitting methods for SDEs satisfying a
        commutativity condition", arXiv 2210.17543 (2023), eq. (6.1) (numbering as cited by
        diffrax 0.7.2).
    """
    return make_srk_solver(
        "general_shark",
        GENERAL_SHARK_TABLEAU,
        strong_order=(("additive", 1.5), ("scalar", 1.0), ("diagonal", 0.5), ("commutative", 1.0), ("general", 0.5)),
        weak_order=(("additive", 2.0), ("scalar", 1.0), ("diagonal", 1.0), ("commutative", 1.0), ("general", 1.0)),
    )
