r"""ShARK: shifted additive-noise Runge--Kutta (Foster, dos Reis, Strange 2023)."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._srk import AdditiveNoiseCoeffs, StochasticTableau, make_srk_solver

#: ShARK in the additive form of `StochasticTableau` (arXiv 2210.17543, eq. (6.1)).
SHARK_TABLEAU = StochasticTableau(
    c=(F(0), F(5, 6)),
    a=((F(5, 6),),),
    b=(F(2, 5), F(3, 5)),
    e=(F(-3, 5), F(3, 5)),
    w=AdditiveNoiseCoeffs(a=(F(0), F(5, 6)), b=F(1)),
    h=AdditiveNoiseCoeffs(a=(F(1), F(1)), b=F(0)),
)


@functools.cache
def shark() -> Solver:
    r"""ShARK, the shifted additive-noise Runge--Kutta method, for SDEs with additive noise.

    With $g_0 = g(t_0)$, $g_1 = g(t_1)$, the increment $W$ and space-time Lévy area $H$:

    $$z_1 = y_0 + g_0 H,\quad z_2 = y_0 + \tfrac56 h f(t_0, z_1) + g_0(\tfrac56 W + H),$$
    $$y_1 = y_0 + h\big(\tfrac25 f(t_0, z_1) + \tfrac35 f(t_0 + \tfrac56 h, z_2)\big) + g_0 W
    + (g_1 - g_0)(\tfrac12 W - H).$$

    - Noise: additive only ($g$ may depend on $t$, not on $y$; `init` checks this).
    - Orders: strong 1.5, weak 2 (additive noise; Stratonovich and Itô coincide).
    - Evaluations per step: 2 drift, 2 diffusion (at $t_0$ and $t_1$).
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: $\tfrac35 h (f_2 - f_1)$, of size $O(h^{1.5})$ per step
      (`sde.error_order`); `embedded_order` is 1.

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `init` if the diffusion depends on $y$; from `step` if the increment
            has no $H$.

    Examples:
        Increments usually come from
        `sk.BrownianTree(key, t0, t1, shape=..., tol=..., levy="space-time").grid_increments(ts)`;
        here they are drawn directly (on a grid, $W$ and $H$ of distinct steps are independent
        normals of variances $h$ and $h/12$):

        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit.solvers import shark
        >>> ou = sk.SDE(lambda t, y, a: -y, lambda t, y, a: (1.0 + jnp.sin(t)) * jnp.ones_like(y),
        ...             noise="additive")
        >>> ts = jnp.linspace(0.0, 1.0, 101)
        >>> h, (kw, kh) = ts[1] - ts[0], jax.random.split(jax.random.key(0))
        >>> incs = sk.Increment(jnp.full(100, h), jnp.sqrt(h) * jax.random.normal(kw, (100, 3)),
        ...                     jnp.sqrt(h / 12) * jax.random.normal(kh, (100, 3)), None)
        >>> solver, y0 = shark(), jnp.ones(3)
        >>> state = solver.init(ou, ts[0], y0, None)
        >>> def body(y, x):
        ...     y1, y_error, _, _ = solver.step(ou, x[0], x[1], y, None, x[2], state)
        ...     return y1, y_error
        >>> y1, errors = jax.lax.scan(body, y0, (ts[:-1], ts[1:], incs))
        >>> y1.shape, errors.shape
        ((3,), (100, 3))

    References:
        J. Foster, G. dos Reis, C. Strange, "High order splitting methods for SDEs satisfying a
        commutativity condition", arXiv 2210.17543 (2023), eq. (6.1) (numbering as cited by
        diffrax 0.7.2).
    """
    return make_srk_solver(
        "shark",
        SHARK_TABLEAU,
        strong_order=(("additive", 1.5),),
        weak_order=(("additive", 2.0),),
        error_order=(("additive", 1.5),),
    )
