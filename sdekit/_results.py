"""Result codes of a solve."""

import enum


class RESULTS(enum.IntEnum):
    """Why a solve stopped: `sol.result` holds one of these codes (an int32 array)."""

    successful = 0
    max_steps_reached = 1
    dt_min_reached = 2
    nonfinite = 3


MESSAGES = (
    "",
    "The maximum number of solver steps was reached before t1. Increase `max_steps`, or loosen "
    "the tolerances.",
    "The step size fell below `dtmin` (or stopped making progress in floating point) before t1. "
    "The problem may be stiff or singular; lower `dtmin` or loosen the tolerances.",
    "A non-finite value (NaN or inf) appeared in the state or the vector field. Check the vector "
    "field and the initial condition.",
)
