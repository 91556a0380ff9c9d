"""Tableaus of diagonally implicit Runge--Kutta methods with an explicit first stage (ESDIRK), and
of additive (IMEX) pairs of such a method with an explicit one, stored as exact fractions."""

from fractions import Fraction
from typing import NamedTuple

import numpy as np


class ImplicitTableau(NamedTuple):
    r"""An ESDIRK method, optionally paired with an explicit method (an additive Runge--Kutta pair).

    With $k_j = f_I(t_0 + c_j h, Y_j)$ and $\hat k_j = f_E(t_0 + c_j h, Y_j)$ (the explicit part,
    absent for a plain ESDIRK), stage 1 is $Y_1 = y_0$ and stage $i > 1$ solves

    $$Y_i = y_0 + h \sum_{j<i} (a_{ij} k_j + \hat a_{ij} \hat k_j) + h \gamma f_I(t_0 + c_i h, Y_i),$$

    then $y_1 = y_0 + h \sum_i b_i (k_i + \hat k_i)$ (both parts share $b$ and $c$), and the error
    estimate is $h \sum_i e_i (k_i + \hat k_i)$ with $e = b - \hat b$.

    Attributes:
        gamma: the diagonal $\gamma$ of every implicit stage.
        c: nodes, one per stage, `c[0] == 0`.
        a: the implicit method's strictly lower triangle by rows: `a[i]` holds the `i + 1`
            coefficients of stage `i + 2` (its diagonal is `gamma`).
        b: weights, one per stage.
        e: error weights `b - b_embedded`, or `None` without an embedded method.
        a_explicit: the explicit method's strictly lower triangle, as `a`; `None` for an ESDIRK.
    """

    gamma: Fraction
    c: tuple[Fraction, ...]
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    e: tuple[Fraction, ...] | None = None
    a_explicit: tuple[tuple[Fraction, ...], ...] | None = None

    @property
    def num_stages(self) -> int:
        return len(self.c)

    @property
    def stiffly_accurate(self) -> bool:
        """The last stage is the solution (`b` is the implicit method's last row): then
        $f(t_1, y_1)$ is the last stage's derivative, reused by the next step and dense output."""
        return self.a_explicit is None and tuple(self.a[-1]) + (self.gamma,) == tuple(self.b)

    def implicit_matrix(self) -> np.ndarray:
        """The full implicit matrix $A$ (diagonal included), for order and stability checks."""
        return _square(self.a, self.num_stages, self.gamma)

    def explicit_matrix(self) -> np.ndarray:
        return _square(self.a_explicit, self.num_stages, Fraction(0))

    def arrays(self) -> dict:
        """Float64 arrays for the engine: strictly lower `a`/`a_explicit`, `b`, `e`, `c`."""
        s = self.num_stages
        lower = _square(self.a, s, Fraction(0)).astype(np.float64)
        explicit = None if self.a_explicit is None else _square(self.a_explicit, s, Fraction(0)).astype(np.float64)
        return {
            "a": lower,
            "a_explicit": explicit,
            "b": np.array([float(x) for x in self.b]),
            "e": None if self.e is None else np.array([float(x) for x in self.e]),
            "c": np.array([float(x) for x in self.c]),
            "gamma": float(self.gamma),
        }


def _square(rows, s, diagonal):
    out = np.full((s, s), Fraction(0), dtype=object)
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            out[i + 1, j] = Fraction(x)
        if diagonal:
            out[i + 1, i + 1] = Fraction(diagonal)
    return out


def stiffly_accurate_esdirk(gamma, c, a, e_embedded_row=None) -> ImplicitTableau:
    """An ESDIRK whose solution is its last stage (`b` = the last row of `a` plus `gamma`).
    With `e_embedded_row`, the embedded solution is the stage with that row (Kvaerno's
    construction: the second-to-last stage, also at $c = 1$): `e = b - that row`."""
    b = tuple(a[-1]) + (gamma,)
    e = None
    if e_embedded_row is not None:
        embedded = tuple(e_embedded_row) + (gamma,) + (Fraction(0),) * (len(b) - len(e_embedded_row) - 1)
        e = tuple(x - y for x, y in zip(b, embedded))
    return ImplicitTableau(gamma=gamma, c=tuple(c), a=tuple(tuple(r) for r in a), b=b, e=e)
