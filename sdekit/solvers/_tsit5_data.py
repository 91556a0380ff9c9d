r"""Coefficients of Tsitouras' 5(4) Runge--Kutta pair ("Tsit5").

Source: Ch. Tsitouras, "Runge--Kutta pairs of order 5(4) satisfying only the first column
simplifying assumption", Computers & Mathematics with Applications 62 (2011) 770--775:
Table 1 (nodes, coefficients, weights and error weights) and the fourth-order continuous
extension given there as factored polynomials $b_i(\theta)$.

The decimals are the paper's printed values, turned into exact fractions. The first column is
fixed by the row-sum condition $c_i = \sum_j a_{ij}$ and is computed here exactly from the printed
$a_{ij}$, $j \ge 2$, for stages 2--6 (this reproduces the commonly quoted values, e.g.
$a_{31} = -0.008480655492357$). Stage 7 is FSAL, $a_{7j} = b_j$, so its row sum is 1 only up to
the rounding of the printed $b$ (1.7e-16). `e = b - b_hat` with `b_hat` the fourth-order weights.

The continuous extension is expanded exactly into the per-stage coefficient form of
`ButcherTableau.dense`; because of the 16--19 digit decimals, $b_i(1)$ agrees with $b_i$ only to
about 1e-15. It uses $k_7 = f(t_1, y_1)$, an ordinary (FSAL) stage, so `fsal_dense` is False.
"""

from fractions import Fraction

from ._tableau import ButcherTableau, fractions

_C = fractions(0, "0.161", "0.327", "0.9", "0.9800255409045097", 1, 1)

_B = fractions(
    "0.09646076681806523",
    "0.01",
    "0.4798896504144996",
    "1.379008574103742",
    "-3.290069515436081",
    "2.324710524099774",
    0,
)

# a_ij for j >= 2 of stages 2..6, as printed (stage 7 uses the weights b).
_A_TAIL = (
    (),
    fractions("0.3354806554923570"),
    fractions("-6.359448489975075", "4.362295432869581"),
    fractions("-11.74888356406283", "7.495539342889836", "-0.09249506636175525"),
    fractions("-12.92096931784711", "8.159367898576159", "-0.07158497328140100", "-0.02826905039406838"),
)

# b - b_hat (the paper's error-estimate weights).
_E = fractions(
    "0.001780011052226",
    "0.000816434459657",
    "-0.007880878010262",
    "0.144711007173263",
    "-0.582357165452555",
    "0.458082105929187",
    "-1/66",
)


def _poly_mul(p, q):
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, pi in enumerate(p):
        for j, qj in enumerate(q):
            out[i + j] += pi * qj
    return out


def _expand(scale, *factors):
    """Coefficients of theta^1..theta^4 of scale * prod(factors) (factors: ascending coefficients)."""
    poly = [Fraction(scale)]
    for factor in factors:
        poly = _poly_mul(poly, [Fraction(x) for x in factor])
    poly += [Fraction(0)] * (5 - len(poly))
    assert poly[0] == 0 and len(poly) == 5
    return tuple(poly[1:])


_T = (0, 1)  # theta
_T2 = (0, 0, 1)  # theta^2

# The continuous extension as printed in the paper.
_DENSE = (
    # -1.0530884977290216 θ (θ - 1.3299890189751412)(θ² - 1.4364028541716351 θ + 0.7139816917074209)
    _expand(
        "-1.0530884977290216",
        _T,
        ("-1.3299890189751412", 1),
        ("0.7139816917074209", "-1.4364028541716351", 1),
    ),
    # 0.1017 θ² (θ² - 2.1966568338249754 θ + 1.2949852507374631)
    _expand("0.1017", _T2, ("1.2949852507374631", "-2.1966568338249754", 1)),
    # 2.490627285651252793 θ² (θ² - 2.38535645472061657 θ + 1.57803468208092486)
    _expand("2.490627285651252793", _T2, ("1.57803468208092486", "-2.38535645472061657", 1)),
    # -16.54810288924490272 (θ - 1.21712927295533244)(θ - 0.61620406037800089) θ²
    _expand("-16.54810288924490272", _T2, ("-1.21712927295533244", 1), ("-0.61620406037800089", 1)),
    # 47.37952196281928122 (θ - 1.203071208372362603)(θ - 0.658047292653547382) θ²
    _expand("47.37952196281928122", _T2, ("-1.203071208372362603", 1), ("-0.658047292653547382", 1)),
    # -34.87065786149660974 (θ - 1.2)(θ - 0.666666666666666667) θ²
    _expand("-34.87065786149660974", _T2, ("-1.2", 1), ("-0.666666666666666667", 1)),
    # 2.5 (θ - 1)(θ - 0.6) θ²
    _expand("2.5", _T2, (-1, 1), ("-0.6", 1)),
)

TSIT5_TABLEAU = ButcherTableau(
    c=_C,
    # The last row is b (FSAL); its row sum equals 1 only up to the rounding of the printed b.
    a=tuple((_C[i + 1] - sum(tail, Fraction(0)),) + tail for i, tail in enumerate(_A_TAIL)) + (_B[:6],),
    b=_B,
    e=_E,
    dense=_DENSE,
    fsal_dense=False,
)
