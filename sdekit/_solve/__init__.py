"""The solve loop: `solve`, `SaveAt`, `Solution`, and the default adjoint `Checkpointed`.

Besides the user-facing names, this package's surface for the adjoint layer above it: the
adjoint protocol (`Adjoint`), the prepared inputs and loop outputs (`SolveInputs`, `LoopInputs`,
`LoopOutput`), and the helpers an adjoint reuses (constant step ends, Brownian templates, SDE
step bounds). The adjoint layer imports these names from here, never the private modules.
"""

from ._adjoint import Adjoint as Adjoint
from ._checkpointed import Checkpointed as Checkpointed
from ._checks import brownian_zeros as brownian_zeros, levy_shortfall as levy_shortfall, sde_controller as sde_controller
from ._common import all_finite as all_finite, constant_step_count as constant_step_count
from ._common import constant_step_end as constant_step_end
from ._events import Event as Event
from ._inputs import LoopInputs as LoopInputs, LoopOutput as LoopOutput, SolveInputs as SolveInputs
from ._saveat import SaveAt as SaveAt
from ._solution import Solution as Solution
from ._solve import float_to_array as float_to_array, solve as solve

__all__ = ["Checkpointed", "Event", "SaveAt", "Solution", "solve"]
