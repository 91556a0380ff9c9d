"""sdekit: fast, exact stochastic and ordinary differential equation solvers in JAX.

Examples:
    >>> import jax.numpy as jnp, sdekit as sk
    >>> sol = sk.solve(sk.ODE(lambda t, y, args: -y), sk.solvers.tsit5(), 0.0, 1.0,
    ...                jnp.array(1.0), controller=sk.PID(rtol=1e-8, atol=1e-8))
    >>> round(float(sol.ys[-1]), 5)
    0.36788
"""

from . import brownian as brownian, controllers as controllers, solvers as solvers, terms as terms
from . import adjoint as adjoint
from ._results import RESULTS as RESULTS, SolveError as SolveError
from ._solve import SaveAt as SaveAt, Solution as Solution, solve as solve
from .controllers import PID as PID, ConstantStep as ConstantStep, StepTo as StepTo
from .brownian import BrownianTree as BrownianTree, Increment as Increment
from .terms import ODE as ODE, SDE as SDE, Split as Split, UnderdampedLangevin as UnderdampedLangevin
from ._solve import Event as Event
from . import ensemble as ensemble
from .ensemble import PerPath as PerPath, sample_paths as sample_paths

__version__ = "0.1.0"

__all__ = [
    "BrownianTree",
    "Increment",
    "ODE",
    "SDE",
    "PID",
    "PerPath",
    "RESULTS",
    "ConstantStep",
    "Event",
    "SaveAt",
    "Solution",
    "SolveError",
    "Split",
    "StepTo",
    "UnderdampedLangevin",
    "adjoint",
    "brownian",
    "controllers",
    "ensemble",
    "sample_paths",
    "solve",
    "solvers",
    "terms",
]
