r"""SPaRK: splitting path Runge--Kutta with an embedded error estimate (Foster 2023).r"""

import functools
import math
from fractions import Fraction as F

from ._base import Solver
from ._srk import GeneralNoiseCoeffs, StochasticTableau, make_srk_solver

# The weights involve $\sqrt 3$ (Gauss--Legendre-like nodes), so they are floats from the exact
# expressions $x_1 = (3 - \sqrt3)/6$, $x_2 = \sqrt3/3$ ($2x_1 + x_2 = 1$).
_SQRT3 = math.sqrt(3.0)
_X1 = (3.0 - _SQRT3) / 6.0
_X2 = _SQRT3 / 3.0

#: SPaRK in the general form of `StochasticTableau` (arXiv 2311.14201, Definition 1.6).
SPARK_TABLEAU = StochasticTableau(
    c=(F(0), F(1, 2), F(1)),
    a=((F(1, 2),), (F(0), F(1))),
    b=(_X1, _X2, _X1),
    e=(_X1 - 0.5, _X2, _X1 - 0.5),
    w=GeneralNoiseCoeffs(
        a=((F(1, 2),), (F(0), F(1))),
        b=(_X1, _X2, _X1),
        e=(_X1 - 0.5, _X2, _X1 - 0.5),
    ),
    h=GeneralNoiseCoeffs(
        a=((_SQRT3,), (F(0), F(0))),
        b=(F(1), F(0), F(-1)),
        e=(F(1), F(0), F(-1)),
    ),
)


@functools.cache
def spark() -> Solver:
    r"""SPaRK, the splitting path Runge--Kutta method, for Stratonovich SDEs with any noise.

    Three stages at $t_0$, $t_0 + h/2$, $t_1$, each evaluating drift and diffusion:
    $z_1 = y_0$, $z_2 = y_0 + \tfrac12(h f_1 + g_1 W) + \sqrt3\, g_1 H$,
    $z_3 = y_0 + h f_2 + g_2 W$, and
    $y_1 = y_0 + \sum_j x_j (h f_j + g_j W) + (g_1 - g_3) H$ with
    $x = ((3-\sqrt3)/6, \sqrt3/3, (3-\sqrt3)/6)$. The embedded estimate replaces $x$ by
    $x - (\tfrac12, 0, \tfrac12)$ (its weights sum to zero).

    - Calculus: Stratonovich.
    - Strong orders: 0.5 general noise, 1.0 commutative and scalar noise, 1.5 additive noise.
      `"diagonal"` noise counts as general (0.5): it is commutative, with order 1.0, only when
      each $g_i$ depends on $y_i$ alone. Weak orders: 1 (2 for additive noise).
    - Evaluations per step: 3 drift, 3 diffusion.
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: yes (the recommended SRK for adaptive steps); per step it is
      $O(h^{1.5})$ for additive and commutative noise and $O(h)$ for general noise, where its
      leading term is $\sum_{i,k} (Dg_k\, g_i - Dg_i\, g_k) H_i W_k$, a Lie bracket of the noise
      columns (`sde.error_order`).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `step` if the increment has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import spark
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.5 * y, noise="scalar",
        ...              calculus="stratonovich")
        >>> ts = jnp.linspace(0.0, 1.0, 1001)
        >>> h, (kw, kh) = ts[1] - ts[0], jax.random.split(jax.random.key(0))
        >>> incs = sk.Increment(jnp.full(1000, h), jnp.sqrt(h) * jax.random.normal(kw, (1000,)),
        ...                     jnp.sqrt(h / 12) * jax.random.normal(kh, (1000,)), None)
        >>> solver, y0 = spark(), jnp.array(1.0)
        >>> state = solver.init(gbm, 0.0, y0, None)
        >>> def body(y, x):
        ...     return solver.step(gbm, x[0], x[1], y, None, x[2], state)[0], None
        >>> y1, _ = jax.lax.scan(body, y0, (ts[:-1], ts[1:], incs))
        >>> exact = jnp.exp(0.1 + 0.5 * incs.W.sum())  # Stratonovich GBM
        >>> bool(jnp.abs(y1 - exact) < 1e-4)
        True

    References:
        J. Foster, "On the convergence of adaptive approximations for stochastic differential
        equations", arXiv 2311.14201 (2023), Definition 1.6.
    """
    return make_srk_solver(
        "spark",
        SPARK_TABLEAU,
        strong_order=(("additive", 1.5), ("scalar", 1.0), ("diagonal", 0.5), ("commutative", 1.0), ("general", 0.5)),
        weak_order=(("additive", 2.0), ("scalar", 1.0), ("diagonal", 1.0), ("commutative", 1.0), ("general", 1.0)),
        error_order=(("additive", 1.5), ("scalar", 1.5), ("diagonal", 1.0), ("commutative", 1.5), ("general", 1.0)),
    )
