"""Result codes of a solve."""

import enum

import equinox as eqx


class RESULTS(enum.IntEnum):
    """Why a solve stopped: `sol.result` holds one of these codes (an int32 array)."""

    successful = 0
    max_steps_reached = 1
    dt_min_reached = 2
    nonfinite = 3
    implicit_solve_failed = 4


MESSAGES = (
    "",
    "The maximum number of solver steps was reached before t1. Increase `max_steps`, or loosen "
    "the tolerances.",
    "The step size fell below `dtmin` (or stopped making progress in floating point) before t1. "
    "The problem may be stiff or singular; lower `dtmin` or loosen the tolerances.",
    "A non-finite value (NaN or inf) appeared in the state or the vector field. Check the vector "
    "field and the initial condition.",
    "The Newton iteration of an implicit solver did not converge, or its matrix I - h*gamma*J was "
    "singular, even at the smallest step it could take. The problem may have a singular Jacobian or a "
    "solution that blows up; check the vector field (and a user-supplied Jacobian), loosen the "
    "tolerances, or lower `dtmin`.",
)


class SolveError(eqx.EquinoxRuntimeError):
    """A failed solve or bad traced input, raised by `sk.solve` when called outside a user's
    `jit` (`throw=True`). Its message comes first; equinox's report (the stack inside the
    compiled solve and debugging hints) is chained below it as the cause.

    Under a user's `jax.jit`, the error is raised by XLA when the compiled program runs, as
    `jax.errors.JaxRuntimeError: INTERNAL: CpuCallback error ...` with the same message near
    the end of its text: XLA's wrapping cannot be changed from inside the program. Call the
    solve outside `jit` (it compiles itself), or wrap with `equinox.filter_jit`, or pass
    `throw=False` and read `sol.result`.
    """


_EQUINOX_PREFIX = "EquinoxRuntimeError: "


def user_message(equinox_text: str) -> str | None:
    """The message that `equinox.error_if` was given, from the text of the error it raised."""
    if _EQUINOX_PREFIX not in equinox_text:
        return None
    return equinox_text.rsplit(_EQUINOX_PREFIX, 1)[1].split("\n\n-------------------")[0].strip()
