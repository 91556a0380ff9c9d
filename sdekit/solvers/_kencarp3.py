"""Kennedy and Carpenter's additive (IMEX) Runge--Kutta pair ARK3(2)4L[2]SA: KenCarp3."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import ImplicitTableau

# Kennedy & Carpenter (2003), Table 3 and Appendix C (ARK3(2)4L[2]SA): the published rationals.
GAMMA = F("1767732205903/4055673282236")
_B = (F("1471266399579/7840856788654"), F("-4482444167858/7529755066697"), F("11266239266428/11593286722821"), GAMMA)
_B_EMBEDDED = (F("2756255671327/12835298489170"), F("-10771552573575/22201958757719"), F("9247589265047/10645013368117"), F("2193209047091/5459859503100"))
_C = (F(0), 2 * GAMMA, F("3/5"), F(1))
#: Implicit (ESDIRK) part, strictly lower rows of stages 2..4; stiffly accurate (last row = b).
_A_IMPLICIT = (
    (GAMMA,),
    (F("2746238789719/10658868560708"), F("-640167445237/6845629431997")),
    _B[:-1],
)
#: Explicit part, strictly lower rows of stages 2..4.
_A_EXPLICIT = (
    (2 * GAMMA,),
    (F("5535828885825/10492691773637"), F("788022342437/10882634858940")),
    (F("6485989280629/16251701735622"), F("-4246266847089/9704473918619"), F("10755448449292/10357097424841")),
)

KENCARP3_TABLEAU = ImplicitTableau(
    gamma=GAMMA,
    c=tuple(F(x) for x in _C),
    a=tuple(tuple(F(x) for x in row) for row in _A_IMPLICIT),
    b=_B,
    e=tuple(x - y for x, y in zip(_B, _B_EMBEDDED)),
    a_explicit=tuple(tuple(F(x) for x in row) for row in _A_EXPLICIT),
)


@functools.cache
def kencarp3(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""KenCarp3: Kennedy and Carpenter's IMEX pair ARK3(2)4L[2]SA for split problems
    $y' = f_E(t, y) + f_I(t, y)$, given as `sk.ODE(sk.Split(explicit, implicit))`.

    An explicit Runge--Kutta method for $f_E$ and an L-stable, stiffly accurate ESDIRK for $f_I$
    (four stages (three implicit), $\gamma \approx 0.4359$), sharing weights and nodes:
    order 3 on ODEs with an embedded order-2 estimate; cubic Hermite dense output (one
    extra evaluation when used). Only $f_I$ goes through the chord Newton iteration and its
    Jacobian; $f_E$ is evaluated once per stage. On a plain `sk.ODE` the whole field is treated
    implicitly (the ESDIRK alone).

    Args:
        jacobian: `None` (`jax.jacfwd` of the implicit part), or `jacobian(t, y, args) -> (n, n)`
            of the implicit part for the flattened state.
        linear_solver: `"lu"` (dense) or `"gmres"` (matrix-free, for large states).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> field = sk.Split(lambda t, y, a: jnp.sin(t) * jnp.ones_like(y),  # slow forcing
        ...                  lambda t, y, a: -1e4 * y)                       # fast decay
        >>> sol = sk.solve(sk.ODE(field), sk.solvers.kencarp3(), 0.0, 2.0, jnp.ones(3),
        ...                controller=sk.PID(rtol=1e-4, atol=1e-8))
        >>> round(float(sol.ys[-1, 0]) * 1e4, 2)  # y ~ sin(t) / 1e4 (float32: the third digit is rounding)
        0.91

    References:
        C. A. Kennedy, M. H. Carpenter, "Additive Runge--Kutta schemes for convection--diffusion--
        reaction equations", Appl. Numer. Math. 44 (2003) 139--181.
    """
    return implicit_rk_solver("kencarp3", KENCARP3_TABLEAU, order=3, embedded_order=2, jacobian=jacobian,
                              linear_solver=linear_solver)
