"""Kennedy and Carpenter's additive (IMEX) Runge--Kutta pair ARK4(3)6L[2]SA: KenCarp4."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import ImplicitTableau

# Kennedy & Carpenter (2003), Table 5 and Appendix C (ARK4(3)6L[2]SA): the published rationals.
GAMMA = F("1/4")
_B = (F("82889/524892"), F(0), F("15625/83664"), F("69875/102672"), F("-2260/8211"), GAMMA)
_B_EMBEDDED = (F("4586570599/29645900160"), F(0), F("178811875/945068544"), F("814220225/1159782912"), F("-3700637/11593932"), F("61727/225920"))
_C = (F(0), F("1/2"), F("83/250"), F("31/50"), F("17/20"), F(1))
#: Implicit (ESDIRK) part, strictly lower rows of stages 2..6; stiffly accurate (last row = b).
_A_IMPLICIT = (
    (GAMMA,),
    (F("8611/62500"), F("-1743/31250")),
    (F("5012029/34652500"), F("-654441/2922500"), F("174375/388108")),
    (F("15267082809/155376265600"), F("-71443401/120774400"), F("730878875/902184768"), F("2285395/8070912")),
    _B[:-1],
)
#: Explicit part, strictly lower rows of stages 2..6.
_A_EXPLICIT = (
    (F("1/2"),),
    (F("13861/62500"), F("6889/62500")),
    (F("-116923316275/2393684061468"), F("-2731218467317/15368042101831"), F("9408046702089/11113171139209")),
    (F("-451086348788/2902428689909"), F("-2682348792572/7519795681897"), F("12662868775082/11960479115383"), F("3355817975965/11060851509271")),
    (F("647845179188/3216320057751"), F("73281519250/8382639484533"), F("552539513391/3454668386233"), F("3354512671639/8306763924573"), F("4040/17871")),
)

KENCARP4_TABLEAU = ImplicitTableau(
    gamma=GAMMA,
    c=tuple(F(x) for x in _C),
    a=tuple(tuple(F(x) for x in row) for row in _A_IMPLICIT),
    b=_B,
    e=tuple(x - y for x, y in zip(_B, _B_EMBEDDED)),
    a_explicit=tuple(tuple(F(x) for x in row) for row in _A_EXPLICIT),
)


@functools.cache
def kencarp4(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""KenCarp4: Kennedy and Carpenter's IMEX pair ARK4(3)6L[2]SA for split problems
    $y' = f_E(t, y) + f_I(t, y)$, given as `sk.ODE(sk.Split(explicit, implicit))`.

    An explicit Runge--Kutta method for $f_E$ and an L-stable, stiffly accurate ESDIRK for $f_I$
    (six stages (five implicit), $\gamma \approx 0.25$), sharing weights and nodes:
    order 4 on ODEs with an embedded order-3 estimate; cubic Hermite dense output (one
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
        >>> sol = sk.solve(sk.ODE(field), sk.solvers.kencarp4(), 0.0, 2.0, jnp.ones(3),
        ...                controller=sk.PID(rtol=1e-4, atol=1e-8))
        >>> round(float(sol.ys[-1, 0]) * 1e4, 2)  # y ~ sin(t) / 1e4 (float32: the third digit is rounding)
        0.91

    References:
        C. A. Kennedy, M. H. Carpenter, "Additive Runge--Kutta schemes for convection--diffusion--
        reaction equations", Appl. Numer. Math. 44 (2003) 139--181.
    """
    return implicit_rk_solver("kencarp4", KENCARP4_TABLEAU, order=4, embedded_order=3, jacobian=jacobian,
                              linear_solver=linear_solver)
