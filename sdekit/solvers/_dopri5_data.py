r"""Coefficients of the Dormand--Prince 5(4) Runge--Kutta pair ("DOPRI5", RK5(4)7M).

Sources: J. R. Dormand and P. J. Prince, "A family of embedded Runge-Kutta formulae",
Journal of Computational and Applied Mathematics 6(1) (1980) 19--26 (nodes, coefficients,
fifth-order weights $b$ and fourth-order weights $\hat b$); the fourth-order continuous extension
is Shampine's (L. F. Shampine, "Some practical Runge-Kutta formulas", Mathematics of Computation
46 (1986) 135--150) in the form used by Hairer, Norsett and Wanner's code DOPRI5 ("Solving Ordinary
Differential Equations I", 2nd ed., Section II.6):

    y(t0 + θh) = y0 + θ Δ + θ(1-θ) (h k1 - Δ) + θ²(1-θ) (Δ - h k7 - (h k1 - Δ))
                 + θ²(1-θ)² h (d1 k1 + d3 k3 + d4 k4 + d5 k5 + d6 k6 + d7 k7),

with Δ = y1 - y0 = h Σ b_i k_i. It is expanded here, exactly, into the per-stage coefficient form
of `ButcherTableau.dense`. Stage 7 is FSAL ($k_7 = f(t_1, y_1)$), so `fsal_dense` is False.
"""

from fractions import Fraction

from ._tableau import ButcherTableau, fractions

_C = fractions(0, "1/5", "3/10", "4/5", "8/9", 1, 1)

_A = (
    fractions("1/5"),
    fractions("3/40", "9/40"),
    fractions("44/45", "-56/15", "32/9"),
    fractions("19372/6561", "-25360/2187", "64448/6561", "-212/729"),
    fractions("9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"),
    fractions("35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84"),
)

_B = fractions("35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0)

# Fourth-order embedded weights.
_B_HAT = fractions("5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40")

# Shampine's dense-output coefficients d_i (d2 = 0) as in DOPRI5.
_D = fractions(
    "-12715105075/11282082432",
    0,
    "87487479700/32700410799",
    "-10690763975/1880347072",
    "701980252875/199316789632",
    "-1453857185/822651844",
    "69997945/29380423",
)


def _dense_row(i):
    """Coefficients of θ^1..θ^4 of b_i(θ)."""
    b = _B[i]
    first = Fraction(i == 0)  # k1 enters through h k1 - Δ
    last = Fraction(i == 6)  # k7 = f(t1, y1) enters through Δ - h k7
    p1 = b  # θ Δ
    p2 = first - b  # θ(1-θ) = θ - θ²
    p3 = 2 * b - first - last  # θ²(1-θ) = θ² - θ³
    p4 = _D[i]  # θ²(1-θ)² = θ² - 2θ³ + θ⁴
    return (p1 + p2, -p2 + p3 + p4, -p3 - 2 * p4, p4)


DOPRI5_TABLEAU = ButcherTableau(
    c=_C,
    a=_A,
    b=_B,
    e=tuple(b - bh for b, bh in zip(_B, _B_HAT)),
    dense=tuple(_dense_row(i) for i in range(7)),
    fsal_dense=False,
)
