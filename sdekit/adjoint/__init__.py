"""Gradients of solves: pass one of these as `sk.solve(..., adjoint=...)`.

- `Checkpointed(checkpoints=None)` (default): exact gradients of the discrete solve, memory
  bounded by checkpointing.
- `Reversible()`: with `sk.solvers.reversible_heun()`, exact gradients in O(1) memory.
"""

from ._checkpointed import Checkpointed as Checkpointed
from ._reversible import Reversible as Reversible

__all__ = ["Checkpointed", "Reversible"]
