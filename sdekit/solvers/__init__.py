"""Solvers: each a factory returning a `Solver` of pure `init`/`step`/`interpolate` functions."""

from ._base import (
    EmptyState as EmptyState,
    LinearDense as LinearDense,
    SDEFacts as SDEFacts,
    Solver as Solver,
    linear_interpolate as linear_interpolate,
)
from ._align import align as align
from ._bosh3 import bosh3 as bosh3
from ._dopri5 import dopri5 as dopri5
from ._dopri8 import dopri8 as dopri8
from ._euler import euler as euler
from ._euler_maruyama import euler_maruyama as euler_maruyama
from ._general_shark import general_shark as general_shark
from ._half_step import HalfIncrement as HalfIncrement, HalvedFacts as HalvedFacts, half_step as half_step
from ._drift_implicit_euler import implicit_euler_maruyama as implicit_euler_maruyama
from ._drift_implicit_milstein import implicit_milstein as implicit_milstein
from ._implicit_euler import implicit_euler as implicit_euler
from ._kencarp3 import kencarp3 as kencarp3
from ._kencarp4 import kencarp4 as kencarp4
from ._kencarp5 import kencarp5 as kencarp5
from ._kvaerno3 import kvaerno3 as kvaerno3
from ._kvaerno4 import kvaerno4 as kvaerno4
from ._kvaerno5 import kvaerno5 as kvaerno5
from ._heun_sde import euler_heun as euler_heun, heun_sde as heun_sde, midpoint_sde as midpoint_sde
from ._explicit_rk import explicit_rk_solver as explicit_rk_solver
from ._milstein import milstein as milstein
from ._milstein_general import milstein_general as milstein_general
from ._reversible_heun import reversible_heun as reversible_heun
from ._quicsort import quicsort as quicsort
from ._radau5 import radau5 as radau5
from ._rk4 import rk4 as rk4
from ._sea import sea as sea
from ._second_order import heun as heun, midpoint as midpoint, ralston as ralston
from ._shark import shark as shark
from ._skencarp3 import skencarp3 as skencarp3
from ._should import should as should
from ._slow_rk import slow_rk as slow_rk
from ._spark import spark as spark
from ._sra1 import sra1 as sra1
from ._srk import (
    AdditiveNoiseCoeffs as AdditiveNoiseCoeffs,
    GeneralNoiseCoeffs as GeneralNoiseCoeffs,
    StochasticTableau as StochasticTableau,
    make_srk_solver as make_srk_solver,
)
from ._tableau import ButcherTableau as ButcherTableau
from ._tsit5 import tsit5 as tsit5

__all__ = [
    "AdditiveNoiseCoeffs",
    "ButcherTableau",
    "EmptyState",
    "GeneralNoiseCoeffs",
    "HalfIncrement",
    "HalvedFacts",
    "LinearDense",
    "SDEFacts",
    "Solver",
    "StochasticTableau",
    "align",
    "bosh3",
    "dopri5",
    "dopri8",
    "euler",
    "euler_heun",
    "euler_maruyama",
    "explicit_rk_solver",
    "general_shark",
    "half_step",
    "heun",
    "heun_sde",
    "implicit_euler",
    "kencarp3",
    "kencarp4",
    "kencarp5",
    "kvaerno3",
    "kvaerno4",
    "kvaerno5",
    "linear_interpolate",
    "make_srk_solver",
    "midpoint",
    "midpoint_sde",
    "milstein",
    "milstein_general",
    "ralston",
    "reversible_heun",
    "quicsort",
    "radau5",
    "rk4",
    "sea",
    "shark",
    "should",
    "slow_rk",
    "spark",
    "sra1",
    "tsit5",
    # After the explicit methods, so that hints listing solvers for a noise type name those first.
    "implicit_euler_maruyama",
    "implicit_milstein",
    "skencarp3",
]
