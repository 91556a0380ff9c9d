"""sdekit: fast, exact stochastic and ordinary differential equation solvers in JAX.

Examples:
    >>> import jax.numpy as jnp, sdekit as sk
    >>> sol = sk.solve(sk.ODE(lambda t, y, args: -y), sk.solvers.tsit5(), 0.0, 1.0,
    ...                jnp.array(1.0), controller=sk.PID(rtol=1e-8, atol=1e-8))
    >>> round(float(sol.ys[-1]), 5)
    0.36788
"""

from . import controllers as controllers, solvers as solvers
from ._results import RESULTS as RESULTS
from ._solve import SaveAt as SaveAt, Solution as Solution, solve as solve
from .controllers import PID as PID, ConstantStep as ConstantStep, StepTo as StepTo
from .terms import ODE as ODE

__version__ = "0.1.0"

__all__ = [
    "ODE",
    "PID",
    "RESULTS",
    "ConstantStep",
    "SaveAt",
    "Solution",
    "StepTo",
    "controllers",
    "solve",
    "solvers",
]
