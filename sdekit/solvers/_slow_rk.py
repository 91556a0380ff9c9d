r"""SLOW-RK: a splitting Runge--Kutta method for commutative-noise Stratonovich SDEs
(Foster, dos Reis, Strange 2023)."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import GeneralNoiseCoeffs, StochasticTableau, make_srk_solver

_0, _1 = F(0), F(1)
_HALF, _3_4 = F(1, 2), F(3, 4)

#: SLOW-RK in the general form of `StochasticTableau` (arXiv 2210.17543, eq. (6.2)). Stages
#: 1--4 are classical RK4 in the diffusion direction, from the half drift step $y_0 + h f_0/2$;
#: only stages 0 and 5 evaluate the drift and only stages 1--4 and 6 the diffusion.
SLOW_RK_TABLEAU = StochasticTableau(
    c=(_0, _HALF, _HALF, _HALF, _HALF, _3_4, _1),
    a=(
        (_HALF,),
        (_HALF, _0),
        (_HALF, _0, _0),
        (_HALF, _0, _0, _0),
        (_3_4, _0, _0, _0, _0),
        (_1, _0, _0, _0, _0, _0),
    ),
    b=(F(1, 3), _0, _0, _0, _0, F(2, 3), _0),
    e=None,
    w=GeneralNoiseCoeffs(
        a=(
            (_0,),
            (_0, _HALF),
            (_0, _0, _HALF),
            (_0, _0, _0, _1),
            (_0, _0, _0, _3_4, _0),
            (_0, _0, _HALF, _0, _0, _0),
        ),
        b=(_0, F(1, 6), F(1, 3), F(1, 3), F(1, 6), _0, _0),
    ),
    h=GeneralNoiseCoeffs(
        a=(
            (_0,),
            (_0, _0),
            (_0, _0, _0),
            (_0, _0, _0, _0),
            (_0, _0, _0, F(3, 2), _0),
            (_0, _0, _0, _0, _0, _0),
        ),
        b=(_0, _0, _0, F(2), _0, _0, F(-2)),
    ),
)


@functools.cache
def slow_rk() -> Solver:
    r"""SLOW-RK, a splitting Runge--Kutta method for Stratonovich SDEs with commutative noise.

    Half a drift step, an RK4 step of the diffusion flow driven by $W$ at $t_0 + h/2$, and a
    drift correction, with $H$ terms giving order 1.5 for commutative noise:
    $y_1 = y_0 + h(\tfrac13 f_0 + \tfrac23 f_5) + (\tfrac16 g_1 + \tfrac13 g_2 + \tfrac13 g_3
    + \tfrac16 g_4) W + 2(g_3 - g_6) H$ (stages as in `SLOW_RK_TABLEAU`).

    - Calculus: Stratonovich.
    - Strong orders: 1.5 commutative and scalar noise, 1.5 additive noise, 0.5 general noise.
      `"diagonal"` noise counts as general (0.5): it is commutative, with order 1.5, only when
      each $g_i$ depends on $y_i$ alone. Weak orders: 2 (commutative, scalar, additive), 1
      otherwise.
    - Evaluations per step: 2 drift, 5 diffusion.
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: none (fixed steps only).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `step` if the increment has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import slow_rk
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.5 * y, noise="scalar",
        ...              calculus="stratonovich")
        >>> ts = jnp.linspace(0.0, 1.0, 101)
        >>> h, (kw, kh) = ts[1] - ts[0], jax.random.split(jax.random.key(0))
        >>> incs = sk.Increment(jnp.full(100, h), jnp.sqrt(h) * jax.random.normal(kw, (100,)),
        ...                     jnp.sqrt(h / 12) * jax.random.normal(kh, (100,)), None)
        >>> solver, y0 = slow_rk(), jnp.array(1.0)
        >>> state = solver.init(gbm, 0.0, y0, None)
        >>> def body(y, x):
        ...     return solver.step(gbm, x[0], x[1], y, None, x[2], state)[0], None
        >>> y1, _ = jax.lax.scan(body, y0, (ts[:-1], ts[1:], incs))
        >>> exact = jnp.exp(0.1 + 0.5 * incs.W.sum())  # Stratonovich GBM
        >>> bool(jnp.abs(y1 - exact) < 1e-5)
        True

    References:
        J. Foster, G. dos Reis, C. Strange, "High order splitting methods for SDEs satisfying a
        commutativity condition", arXiv 2210.17543 (2023), eq. (6.2) (numbering as cited by
        diffrax 0.7.2).
    """
    return make_srk_solver(
        "slow_rk",
        SLOW_RK_TABLEAU,
        strong_order=(("additive", 1.5), ("scalar", 1.5), ("diagonal", 0.5), ("commutative", 1.5), ("general", 0.5)),
        weak_order=(("additive", 2.0), ("scalar", 2.0), ("diagonal", 1.0), ("commutative", 2.0), ("general", 1.0)),
    )
