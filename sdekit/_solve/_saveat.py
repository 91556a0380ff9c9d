"""What a solve returns: `SaveAt`."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


class SaveAt(eqx.Module):
    """Which times a solve saves. Saved values are concatenated in the order
    `[t0] + ts + steps + [t1]`.

    Args:
        t0: save the initial value.
        t1: save the final value (the default when nothing else is asked for).
        ts: save at these times (sorted in the direction of integration, inside [t0, t1]),
            using each step's dense output; a traced array of static length.
        steps: save at the end of every accepted step. The buffer has `max_steps` entries (the
            grid's step count for `StepTo`); unused entries hold `inf` times and NaN values.
        dense: keep every step's dense output so that `sol.evaluate(t)` and `sol.derivative(t)`
            work anywhere in [t0, t1].

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> sol = sk.solve(sk.ODE(lambda t, y, args: -y), sk.solvers.dopri5(), 0.0, 2.0,
        ...                jnp.array(1.0), dt0=0.1, saveat=sk.SaveAt(ts=jnp.array([0.5, 1.0]),
        ...                dense=True))
        >>> [round(float(v), 4) for v in sol.ys], round(float(sol.evaluate(1.5)), 4)
        ([0.6065, 0.3679], 0.2231)
    """

    t0: bool = eqx.field(static=True, default=False)
    t1: bool = eqx.field(static=True, default=False)
    ts: Float[Array, " n"] | None = None
    steps: bool = eqx.field(static=True, default=False)
    dense: bool = eqx.field(static=True, default=False)

    def __init__(
        self,
        t0: bool = False,
        t1: bool = False,
        ts: Float[ArrayLike, " n"] | None = None,
        steps: bool = False,
        dense: bool = False,
    ):
        if ts is not None:
            ts = jnp.asarray(ts)
            if ts.ndim != 1:
                raise ValueError(f"SaveAt(ts=...) must be a 1-D array of times, got shape {ts.shape}.")
            if not jnp.issubdtype(ts.dtype, jnp.floating):
                ts = ts.astype(jnp.result_type(float))
        if not (t0 or t1 or steps or dense) and ts is None:
            t1 = True
        self.t0, self.t1, self.ts, self.steps, self.dense = t0, t1, ts, steps, dense
