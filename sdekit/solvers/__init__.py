"""Solvers: each a factory returning a `Solver` of pure `init`/`step`/`interpolate` functions."""

from ._base import EmptyState as EmptyState, SDEFacts as SDEFacts, Solver as Solver
from ._bosh3 import bosh3 as bosh3
from ._dopri5 import dopri5 as dopri5
from ._dopri8 import dopri8 as dopri8
from ._euler import euler as euler
from ._euler_maruyama import euler_maruyama as euler_maruyama
from ._explicit_rk import explicit_rk_solver as explicit_rk_solver
from ._milstein import milstein as milstein
from ._rk4 import rk4 as rk4
from ._second_order import heun as heun, midpoint as midpoint, ralston as ralston
from ._tableau import ButcherTableau as ButcherTableau
from ._tsit5 import tsit5 as tsit5

__all__ = [
    "ButcherTableau",
    "EmptyState",
    "SDEFacts",
    "Solver",
    "bosh3",
    "dopri5",
    "dopri8",
    "euler",
    "euler_maruyama",
    "explicit_rk_solver",
    "heun",
    "midpoint",
    "milstein",
    "ralston",
    "rk4",
    "tsit5",
]
