"""Gradients of solves: pass one of these as `sk.solve(..., adjoint=...)`.

- `Checkpointed(checkpoints=None)` (default): exact gradients of the discrete solve, memory
  bounded by checkpointing.
- `Backsolve(solver=None, controller=None)`: continuous (ODE) and stochastic (SDE) adjoints
  solved backwards in time, O(1) memory, gradients of the continuous problem.
- `Reversible()`: with `sk.solvers.reversible_heun()`, exact gradients in O(1) memory.
"""

from ._backsolve import Backsolve as Backsolve
from .._solve import Checkpointed as Checkpointed  # lives with the loops it configures
from ._reversible import Reversible as Reversible

__all__ = ["Backsolve", "Checkpointed", "Reversible"]
