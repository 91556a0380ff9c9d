"""Kennedy and Carpenter's additive (IMEX) Runge--Kutta pair ARK5(4)8L[2]SA: KenCarp5."""

import functools
from fractions import Fraction as F

from ._base import Solver
from ._implicit_rk import implicit_rk_solver
from ._implicit_tableau import ImplicitTableau

# Kennedy & Carpenter (2003), Table 7 and Appendix C (ARK5(4)8L[2]SA): the published rationals.
GAMMA = F("41/200")
_B = (F("-872700587467/9133579230613"), F(0), F(0), F("22348218063261/9555858737531"), F("-1143369518992/8141816002931"), F("-39379526789629/19018526304540"), F("32727382324388/42900044865799"), GAMMA)
_B_EMBEDDED = (F("-975461918565/9796059967033"), F(0), F(0), F("78070527104295/32432590147079"), F("-548382580838/3424219808633"), F("-33438840321285/15594753105479"), F("3629800801594/4656183773603"), F("4035322873751/18575991585200"))
_C = (F(0), F("41/100"), F("2935347310677/11292855782101"), F("1426016391358/7196633302097"), F("92/100"), F("24/100"), F("3/5"), F(1))
#: Implicit (ESDIRK) part, strictly lower rows of stages 2..8; stiffly accurate (last row = b).
_A_IMPLICIT = (
    (GAMMA,),
    (F("41/400"), F("-567603406766/11931857230679")),
    (F("683785636431/9252920307686"), F(0), F("-110385047103/1367015193373")),
    (F("3016520224154/10081342136671"), F(0), F("30586259806659/12414158314087"), F("-22760509404356/11113319521817")),
    (F("218866479029/1489978393911"), F(0), F("638256894668/5436446318841"), F("-1179710474555/5321154724896"), F("-60928119172/8023461067671")),
    (F("1020004230633/5715676835656"), F(0), F("25762820946817/25263940353407"), F("-2161375909145/9755907335909"), F("-211217309593/5846859502534"), F("-4269925059573/7827059040719")),
    _B[:-1],
)
#: Explicit part, strictly lower rows of stages 2..8.
_A_EXPLICIT = (
    (F("41/100"),),
    (F("367902744464/2072280473677"), F("677623207551/8224143866563")),
    (F("1268023523408/10340822734521"), F(0), F("1029933939417/13636558850479")),
    (F("14463281900351/6315353703477"), F(0), F("66114435211212/5879490589093"), F("-54053170152839/4284798021562")),
    (F("14090043504691/34967701212078"), F(0), F("15191511035443/11219624916014"), F("-18461159152457/12425892160975"), F("-281667163811/9011619295870")),
    (F("19230459214898/13134317526959"), F(0), F("21275331358303/2942455364971"), F("-38145345988419/4862620318723"), F("-1/8"), F("-1/8")),
    (F("-19977161125411/11928030595625"), F(0), F("-40795976796054/6384907823539"), F("177454434618887/12078138498510"), F("782672205425/8267701900261"), F("-69563011059811/9646580694205"), F("7356628210526/4942186776405")),
)

KENCARP5_TABLEAU = ImplicitTableau(
    gamma=GAMMA,
    c=tuple(F(x) for x in _C),
    a=tuple(tuple(F(x) for x in row) for row in _A_IMPLICIT),
    b=_B,
    e=tuple(x - y for x, y in zip(_B, _B_EMBEDDED)),
    a_explicit=tuple(tuple(F(x) for x in row) for row in _A_EXPLICIT),
)


@functools.cache
def kencarp5(jacobian=None, linear_solver: str = "lu") -> Solver:
    r"""KenCarp5: Kennedy and Carpenter's IMEX pair ARK5(4)8L[2]SA for split problems
    $y' = f_E(t, y) + f_I(t, y)$, given as `sk.ODE(sk.Split(explicit, implicit))`.

    An explicit Runge--Kutta method for $f_E$ and an L-stable, stiffly accurate ESDIRK for $f_I$
    (eight stages (seven implicit), $\gamma \approx 0.205$), sharing weights and nodes:
    order 5 on ODEs with an embedded order-4 estimate; cubic Hermite dense output (one
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
        >>> sol = sk.solve(sk.ODE(field), sk.solvers.kencarp5(), 0.0, 2.0, jnp.ones(3),
        ...                controller=sk.PID(rtol=1e-4, atol=1e-8))
        >>> round(float(sol.ys[-1, 0]) * 1e4, 2)  # y ~ sin(t) / 1e4 (float32: the third digit is rounding)
        0.91

    References:
        C. A. Kennedy, M. H. Carpenter, "Additive Runge--Kutta schemes for convection--diffusion--
        reaction equations", Appl. Numer. Math. 44 (2003) 139--181.
    """
    return implicit_rk_solver("kencarp5", KENCARP5_TABLEAU, order=5, embedded_order=4, jacobian=jacobian,
                              linear_solver=linear_solver)
