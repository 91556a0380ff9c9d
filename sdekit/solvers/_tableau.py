"""Butcher tableaus for explicit Runge--Kutta methods, stored as exact fractions."""

from fractions import Fraction
from typing import NamedTuple


class ButcherTableau(NamedTuple):
    r"""An explicit Runge--Kutta method with an optional embedded method and dense output.

    Stages: $k_i = f(t_0 + c_i h, y_0 + h \sum_{j<i} a_{ij} k_j)$, solution
    $y_1 = y_0 + h \sum_i b_i k_i$, error estimate $h \sum_i e_i k_i$ with
    $e = b - \hat b$ (the difference to the embedded method's weights).

    Attributes:
        c: nodes, one per stage, `c[0] == 0`.
        a: strictly lower triangle by rows: `a[i]` holds the `i + 1` coefficients of stage `i + 1`.
        b: solution weights, one per stage.
        e: error weights `b - b_embedded`, or `None` without an embedded method.
        dense: dense-output polynomials: `dense[i][j]` is the coefficient of $\theta^{j+1}$ in
            $b_i(\theta)$, with $y(t_0 + \theta h) = y_0 + h \sum_i b_i(\theta) k_i$. The stage list
            it refers to has one more entry than `c` when `fsal_dense` is set (the last entry is
            $f(t_1, y_1)$). `None` means cubic Hermite interpolation.
        fsal_dense: whether `dense` uses $f(t_1, y_1)$ as an extra stage.
    """

    c: tuple[Fraction, ...]
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    e: tuple[Fraction, ...] | None = None
    dense: tuple[tuple[Fraction, ...], ...] | None = None
    fsal_dense: bool = False

    @property
    def num_stages(self) -> int:
        return len(self.c)

    @property
    def fsal(self) -> bool:
        """First-same-as-last: the last stage is $f(t_1, y_1)$ and can seed the next step."""
        return self.c[-1] == 1 and tuple(self.a[-1]) == tuple(self.b[:-1]) and self.b[-1] == 0


def fractions(*values) -> tuple[Fraction, ...]:
    """Exact fractions from ints, strings ('12/35', '0.161') or Fractions."""
    return tuple(Fraction(v) for v in values)
