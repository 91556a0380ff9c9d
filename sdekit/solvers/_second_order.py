r"""Two-stage second-order Runge--Kutta methods: Heun, explicit midpoint, Ralston.

Each is embedded with Euler (order 1) for an error estimate, and has the second-order continuous
extension $b_i(\theta)$ with $\sum_i b_i = \theta$, $\sum_i b_i c_i = \theta^2/2$ (no extra
evaluations).
"""

import functools

from ._base import Solver
from ._explicit_rk import explicit_rk_solver
from ._tableau import ButcherTableau, fractions


def _two_stage(c2: str, b2: str) -> ButcherTableau:
    from fractions import Fraction

    c2_, b2_ = Fraction(c2), Fraction(b2)
    b1_ = 1 - b2_
    # b_2(θ) c_2 = θ²/2  =>  b_2(θ) = θ² / (2 c_2);  b_1(θ) = θ - b_2(θ).
    dense_b2 = 1 / (2 * c2_)
    return ButcherTableau(
        c=fractions(0, c2_),
        a=(fractions(c2_),),
        b=fractions(b1_, b2_),
        e=fractions(b1_ - 1, b2_),  # embedded Euler: b̂ = (1, 0)
        dense=(fractions(1, -dense_b2), fractions(0, dense_b2)),
    )


_HEUN_TABLEAU = _two_stage("1", "1/2")
_MIDPOINT_TABLEAU = _two_stage("1/2", "1")
_RALSTON_TABLEAU = _two_stage("2/3", "3/4")


@functools.cache
def heun() -> Solver:
    """Heun's method (explicit trapezoidal rule), $c_2 = 1$, $b = (1/2, 1/2)$.

    Order 2 on ODEs with an embedded Euler estimate (order 1); two evaluations per step;
    second-order dense output.

    References:
        K. Heun, Z. Math. Phys. 45 (1900) 23--38.
    """
    return explicit_rk_solver("heun", _HEUN_TABLEAU, order=2, embedded_order=1, interpolation_order=2)


@functools.cache
def midpoint() -> Solver:
    """Explicit midpoint method, $c_2 = 1/2$, $b = (0, 1)$.

    Order 2 on ODEs with an embedded Euler estimate (order 1); two evaluations per step;
    second-order dense output.

    References:
        C. Runge, Math. Ann. 46 (1895) 167--178.
    """
    return explicit_rk_solver("midpoint", _MIDPOINT_TABLEAU, order=2, embedded_order=1, interpolation_order=2)


@functools.cache
def ralston() -> Solver:
    """Ralston's second-order method (minimal truncation error bound), $c_2 = 2/3$, $b = (1/4, 3/4)$.

    Order 2 on ODEs with an embedded Euler estimate (order 1); two evaluations per step;
    second-order dense output.

    References:
        A. Ralston, Math. Comp. 16 (1962) 431--437.
    """
    return explicit_rk_solver("ralston", _RALSTON_TABLEAU, order=2, embedded_order=1, interpolation_order=2)
