r"""`Checkpointed`: exact gradients of the discrete solve with bounded memory (the default).

It lives with the loops it configures; `sk.adjoint.Checkpointed` is the same class.
"""

import equinox as eqx

from ._inputs import LoopInputs, LoopOutput
from ._scan_loop import scan_loop
from ._while_loop import while_loop


class Checkpointed(eqx.Module):
    r"""Discretise-then-optimise: reverse-mode gradients of the very computation `sk.solve` did,
    with memory bounded by checkpointing. The default `adjoint`.

    - Fixed grids (`sk.StepTo`): the `lax.scan` stores its carry at every grid point (the grid
      and, for SDEs, its increments are already that size); each step is wrapped in
      `jax.checkpoint`, so a step's stages are recomputed in the reverse pass rather than stored.
      With `checkpoints=None`, constant steps inside a user's `jit` with Python or NumPy `t0`,
      `t1`, `dt0` run this way too (see `sk.solve`); pass `checkpoints` to bound their memory.
    - Constant and adaptive steps (`sk.ConstantStep`, `sk.PID`): the loop runs as equinox's
      checkpointed while loop (online treeverse: Stumm & Walther 2010, Wang & Moin 2009). When
      nothing is differentiated it is a plain `lax.while_loop` (no extra cost); under reverse
      mode its memory is `checkpoints` copies of the loop state, whatever the number of steps,
      for $O(n \log n)$-like recomputation.

    Args:
        checkpoints: how many loop states the while loop keeps for its reverse pass.
            `None` (default) picks $c = \lfloor -1.5 + \sqrt{2\,\text{max\_steps} + 1/4}\rfloor + 1
            \approx \sqrt{2\,\text{max\_steps}}$, the least $c$ with $\text{max\_steps} \le
            (c+1)(c+2)/2$, which keeps recomputation to at most about two forward passes
            (Stumm & Walther 2010, eq. 2.2). Fewer checkpoints save memory and cost time.
            Unused by fixed grids.

    Notes:
        The loop state includes the `SaveAt(ts/steps/dense)` buffers, so with those each
        checkpoint also holds a copy of the buffers (memory `checkpoints * buffers`); for
        `SaveAt(t1=True)` (the usual loss) it is `checkpoints * |y|`-sized. Only reverse mode:
        forward mode (`jax.jvp`) works through fixed grids, not through the while loop.
        Differentiating with respect to an integer leaf is refused by JAX itself.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> def final(k):
        ...     return sk.solve(sk.ODE(lambda t, y, k: -k * y), sk.solvers.tsit5(), 0.0, 1.0,
        ...                     jnp.array(1.0), args=k, controller=sk.PID(rtol=1e-8, atol=1e-8),
        ...                     adjoint=sk.adjoint.Checkpointed()).ys[-1]
        >>> round(float(jax.grad(final)(jnp.array(1.0))), 4)  # -exp(-1)
        -0.3679

    References:
        A. Griewank, A. Walther, "Algorithm 799: revolve", ACM TOMS 26(1) (2000);
        P. Stumm, A. Walther, "New algorithms for optimal online checkpointing", SIAM J. Sci.
        Comput. 32(2) (2010); Q. Wang, P. Moin, G. Iaccarino, "Minimal repetition dynamic
        checkpointing algorithm for unsteady adjoint calculation", SIAM J. Sci. Comput. 31(4)
        (2009); as in diffrax's `RecursiveCheckpointAdjoint`.
    """

    checkpoints: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.checkpoints is not None and (not isinstance(self.checkpoints, int) or self.checkpoints < 1):
            raise ValueError(f"Checkpointed(checkpoints=...) must be a positive int or None, got {self.checkpoints!r}.")

    # The adjoint protocol (see `sdekit._solve._adjoint.Adjoint`).

    def check(self, problem, solver, controller, saveat, dt0, brownian) -> None:
        """Every solve can be differentiated this way."""

    @property
    def allows_grid(self) -> bool:
        """Constant steps may run as a fixed grid (a scan storing every step) only when the
        memory was not bounded by hand."""
        return self.checkpoints is None

    @property
    def allows_events(self) -> bool:
        """Event times are differentiated through the loops (implicit function theorem)."""
        return True

    def run(self, solve, inputs):
        return solve(inputs, self)

    def loop(self, inputs: LoopInputs) -> LoopOutput:
        """The scan over a fixed grid (each step a `jax.checkpoint`), else the checkpointed
        while loop."""
        if inputs.grid is not None:
            return scan_loop(inputs, checkpointed=True)
        return while_loop(inputs, checkpoints=self.checkpoints)
