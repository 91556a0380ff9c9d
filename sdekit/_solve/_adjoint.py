"""The adjoint protocol: how `sk.solve` hands a prepared solve to the chosen way of computing
gradients, so that the loop layer never imports the adjoint layer above it."""

from collections.abc import Callable
from typing import Protocol

from ._inputs import LoopInputs, LoopOutput, SolveInputs
from ._solution import Solution


class Adjoint(Protocol):
    """What `sk.solve(..., adjoint=...)` accepts.

    - `check(problem, solver, controller, saveat, dt0, brownian)`: refuse, at trace time and
      with a clear `ValueError`, what the adjoint cannot differentiate.
    - `allows_grid`: whether constant steps known at trace time may run as a fixed grid (a
      scan that stores every step for the reverse pass).
    - `allows_events`: whether it can differentiate a solve with an `sk.Event` (a solve whose
      end depends on the solution); read with `False` as default.
    - `run(solve, inputs)`: produce the `Solution`, calling `solve(inputs, adjoint)` (the
      compiled forward solve) as often as it needs, with itself or another adjoint, under a
      `custom_vjp` of its own if it defines the gradient itself.
    - `loop(inputs)`: the loop a `solve(inputs, adjoint)` runs (the default loops, differentiated
      by JAX, for `Checkpointed`; an exactly reversible loop for `Reversible`).
    """

    allows_grid: bool

    def check(self, problem, solver, controller, saveat, dt0, brownian) -> None: ...

    def run(self, solve: Callable[[SolveInputs, "Adjoint"], Solution], inputs: SolveInputs) -> Solution: ...

    def loop(self, inputs: LoopInputs) -> LoopOutput: ...
