r"""SKenCarp3: an IMEX stochastic Runge--Kutta method of strong order 1.5 for additive noise,
built on Kennedy and Carpenter's KenCarp3 pair."""

import functools
from decimal import Decimal, localcontext
from fractions import Fraction as F

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..terms import Split, contract
from . import _newton
from ._base import LinearDense, SDEFacts, Solver, linear_interpolate
from ._implicit_rk import solve_stages
from ._kencarp3 import KENCARP3_TABLEAU
from ._srk import check_additive, levy_quantity
from ._weighted import weighted_rows


def _noise_h_weights(b) -> tuple[F, ...]:
    r"""The $H$ weights $q = (0, q_2, q_3, 0)$ of the stages: $\sum_i b_i q_i = 1$ and
    $\sum_i b_i q_i^2 = 2$, the smaller root (to 40 digits, exact far beyond float64)."""
    b2, b3 = b[1], b[2]
    # q3 = (1 - b2 q2) / b3 turns the second condition into A q2^2 + B q2 + C = 0.
    a, bb, c = b2 + b2 * b2 / b3, -2 * b2 / b3, 1 / b3 - 2
    with localcontext() as ctx:
        ctx.prec = 50
        disc = (Decimal(bb.numerator) / bb.denominator) ** 2 - 4 * (Decimal(a.numerator) / a.denominator) * (
            Decimal(c.numerator) / c.denominator)
        root = (-Decimal(bb.numerator) / bb.denominator + disc.sqrt()) / (2 * Decimal(a.numerator) / a.denominator)
    q2 = F(root).limit_denominator(10**40)
    return (F(0), q2, (1 - b2 * q2) / b3, F(0))


#: The drift part: KenCarp3's explicit and implicit tableaus, weights and embedded weights.
TABLEAU = KENCARP3_TABLEAU
#: Weights of $g(t_0) W$ in the stages' values: the nodes, $c$.
NOISE_W = TABLEAU.c
#: Weights of $g(t_0) H$ in the stages' values.
NOISE_H = _noise_h_weights(TABLEAU.b)


def _init(options, problem, t0, y0, args):
    check_additive("skencarp3", problem, t0, y0, args)
    return _newton.initial_state(options, y0)


def _step(options, noise_h, problem, t0, t1, y0, args, inc, state):
    if inc is None:
        raise ValueError("skencarp3 is an SDE solver: it needs a Brownian increment, got inc=None.")
    levy_quantity(inc, "H", "space-time", "skencarp3")
    tdtype = jnp.promote_types(jnp.asarray(t0).dtype, jnp.asarray(inc.dt).dtype)
    t0, t1 = jnp.asarray(t0, tdtype), jnp.asarray(t1, tdtype)
    h = t1 - t0
    drift = problem.drift
    explicit, implicit = (drift.explicit, drift.implicit) if isinstance(drift, Split) else (None, drift)
    v0 = ravel_pytree(y0)[0]
    dtype = v0.dtype

    def flat_noise(t, x):
        return ravel_pytree(contract(problem.diffusion(t, y0, args), x, y0))[0].astype(dtype)

    g0w, g0h = flat_noise(t0, inc.W), flat_noise(t0, inc.H)
    g1w, g1h = flat_noise(t1, inc.W), flat_noise(t1, inc.H)
    weights_w = jnp.asarray([float(x) for x in NOISE_W], dtype)[:, None]
    weights_h = jnp.asarray([float(x) for x in noise_h], dtype)[:, None]
    stage_noise = weights_w * g0w[None, :] + weights_h * g0h[None, :]
    solved = solve_stages(TABLEAU, options, explicit, implicit, None, t0, h, y0, args, state, stage_noise)
    arrays = TABLEAU.arrays()
    hy = h.astype(dtype)
    k_total = solved.stages.k_total()
    # ∫ g dW = g(t0) W + (g(t1) - g(t0))(W/2 - H), exact for g linear in t.
    noise = g0w + 0.5 * (g1w - g0w) - (g1h - g0h)
    b_sum = weighted_rows(jnp.asarray(arrays["b"], dtype), k_total)
    v1 = v0 + hy * b_sum + noise
    y1 = _newton.failed_to_nan(solved.failed, solved.unravel(v1))
    # The error estimate: the difference from the Euler--Maruyama step y0 + h f(y0) + ∫ g dW,
    # whose leading term is a' g I_(1,0) (the local error of an order-1 method, as SRA1's), filtered
    # by (I - h gamma J)^-1 so that a stiff component contributes its size, not lambda h times it.
    euler_difference = hy * (b_sum - k_total[0])
    _, flat_implicit = _newton.flat_field(implicit, y0, args)
    filtered = _newton.linear_solver(options, flat_implicit, solved.jacobian,
                                     hy * float(TABLEAU.gamma), t0, v0)(euler_difference)
    y_error = _newton.failed_to_inf(solved.failed, solved.unravel(filtered))
    new_state = _newton.next_state(state, solved.tried, solved.jacobian, (), solved.fevals)
    return y1, y_error, LinearDense(y0, y1), new_state


@functools.cache
def skencarp3(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""SKenCarp3: an implicit-explicit stochastic Runge--Kutta method for SDEs with additive
    noise and a stiff drift, $dy = \big(f_E(t, y) + f_I(t, y)\big)\,dt + g(t)\,dW$, given as
    `sk.SDE(sk.Split(explicit, implicit), diffusion, noise="additive")` (a plain drift is
    treated wholly implicitly).

    The drift part is KenCarp3 (Kennedy and Carpenter's ARK3(2)4L[2]SA: an explicit method for
    $f_E$ and an L-stable ESDIRK for $f_I$, four stages, nodes $c$, weights $b$). The noise
    enters as in Rößler's SRA methods: with the increment $W$ and space-time Lévy area $H$ of
    the step, stage $i$ solves

    $$Y_i = y_0 + h \sum_{j<i} (a_{ij} k_j + \hat a_{ij} \hat k_j) + h \gamma f_I(Y_i)
    + g(t_0)(c_i W + q_i H),$$

    and $y_1 = y_0 + h \sum_i b_i (k_i + \hat k_i) + g(t_0) W + (g(t_1) - g(t_0))(\tfrac12 W - H)$.

    **Why these weights.** Expanding $h \sum_i b_i f(Y_i)$ and matching the Itô--Taylor
    expansion of order 1.5 for additive noise ($a' g I_{(1,0)}$ with $I_{(1,0)} = h(W/2 + H)$,
    and the mean of $\tfrac14 a'' g^2 h^2$) gives, besides the drift's own conditions,

    $$\textstyle\sum_i b_i p_i = \tfrac12,\quad \sum_i b_i q_i = 1,\quad
    \sum_i b_i (p_i^2 + q_i^2/12) = \tfrac12$$

    for stage shifts $g(t_0)(p_i W + q_i H)$. Taking $p = c$ (each stage at its node sees the
    increment up to it) makes the first one KenCarp3's $b^\top c = \tfrac12$ and the last
    $\sum_i b_i q_i^2 = 2$ (from $b^\top c^2 = \tfrac13$). With $q_1 = q_4 = 0$ (stage 4 is
    at $c = 1$, where $E[W_{ch} \mid W, H] = W$) the two conditions on $q$ have two roots; the
    one used, $q \approx (0, 0.96945, 1.62289, 0)$, is the nearer to the conditional mean
    $6c(1 - c)$ of the path's $H$-part at each node. The noise's time dependence enters as
    $\int g\,dW$ for $g$ linear in $t$.

    - Noise: additive only ($g$ may depend on $t$, not on $y$; `init` checks this).
    - Orders: strong 1.5, weak 2 (additive noise; weak order measured by
      `benchmarks/skencarp3_weak_order.py`); order 3 when $g = 0$, where it is KenCarp3.
    - Stability: the drift's stiff part is treated by the L-stable ESDIRK, so steps need not
      resolve its time scales (Euler--Maruyama and SRA1 blow up beyond $h \approx 2/\lambda$).
    - Evaluations per step: $f_E$ 4, $f_I$ 1 plus one per Newton iteration (chord iteration,
      Jacobian reused across stages and steps); $g$ at $t_0$ and $t_1$; one more LU
      factorisation and solve of $I - h\gamma J$ for the error estimate's filter.
    - Lévy area: space-time ($H$; build the tree with `levy="space-time"`).
    - Error estimate: the difference from the Euler--Maruyama step,
      $h \sum_i b_i (k_i + \hat k_i) - h (k_1 + \hat k_1)$, whose leading term is
      $f' g I_{(1,0)}$ (as SRA1's), filtered by $(I - h\gamma J)^{-1}$ (as RADAU5 filters
      its estimate) so that a stiff component counts with its size, not $\lambda h$ times it:
      $O(h^{1.5})$ per step (`sde.error_order`; `embedded_order` 1), adaptive with `sk.PID`.
      (KenCarp3's own embedded pair would see the noise only through $\sum_i (b_i - \hat b_i)
      q_i \approx 0.06$: it took 3 steps for an error 10x its tolerance.)

    This is an SKenCarp-type method (Rackauckas and Nie built SKenCarp on KenCarp3 the same
    way); its noise weights are the ones derived above, not theirs.

    Args:
        jacobian: `None` (`jax.jacfwd` of the implicit part), or `jacobian(t, y, args) -> (n, n)`
            of the implicit part for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Returns:
        A `Solver` with pure `init`/`step` and linear dense output.

    Raises:
        ValueError: from `init` if the diffusion depends on $y$; from `step` if the increment
            has no $H$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> drift = sk.Split(lambda t, y, a: jnp.sin(t) * jnp.ones_like(y),  # slow forcing
        ...                  lambda t, y, a: -1000.0 * y)                     # fast relaxation
        >>> sde = sk.SDE(drift, lambda t, y, a: jnp.ones_like(y), noise="additive")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-12,
        ...                        levy="space-time")
        >>> sol = sk.solve(sde, sk.solvers.skencarp3(), 0.0, 1.0, jnp.ones(2), dt0=0.01,
        ...                brownian=tree)  # lambda h = 10: SRA1 would blow up
        >>> bool(jnp.all(jnp.abs(sol.ys[-1]) < 0.2))
        True

    References:
        C. A. Kennedy, M. H. Carpenter, "Additive Runge--Kutta schemes for convection--diffusion--
        reaction equations", Appl. Numer. Math. 44 (2003) 139--181 (the drift tableau).
        A. Rößler, "Runge--Kutta methods for the strong approximation of solutions of stochastic
        differential equations", SIAM J. Numer. Anal. 48(3) (2010) 922--952 (SRA methods).
        C. Rackauckas, Q. Nie, "Stability-optimized high order methods and stiffness detection for
        pathwise stiff stochastic differential equations", arXiv:1804.04344 (2018) (SKenCarp).
    """
    return imex_sra_solver("skencarp3", NOISE_H, _newton.check_options("skencarp3", jacobian, linear_solver))


def imex_sra_solver(name: str, noise_h, options: _newton.NewtonOptions) -> Solver:
    """The method with the stages' $H$ weights `noise_h` (a test can break them)."""
    return Solver(
        name=name,
        init=functools.partial(_init, options),
        step=functools.partial(_step, options, tuple(noise_h)),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=1,
        interpolation_order=1,
        fevals_per_step=4,  # as traced (see `implicit_rk_solver`); adaptive solves count from the state
        sde=SDEFacts(
            calculus="stratonovich",
            strong_order=(("additive", 1.5),),
            weak_order=(("additive", 2.0),),
            levy_area="space-time",
            error_order=(("additive", 1.5),),
        ),
    )
