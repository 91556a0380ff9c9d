"""Policies tuned for XLA:CPU, in one place: each constant says what it trades and why on that
backend. They change how programs are built, never the values computed; on another backend
(GPU, TPU) the trade-offs differ and the numbers are worth measuring again. The figures behind
them are in `benchmarks/results/design_measurements.md`.
"""

#: Largest output (elements, all leaves) that `_once.computed_once_differentiable` materialises
#: in its opaque loop. Over it the computation is left to XLA: the loop writes its initial
#: outputs and copies its results, which for a large state (a backsolve's parameter
#: cotangents, say) costs more than the recomputation it saves.
ONCE_MAX_ELEMENTS = 4096

#: Buffers up to this length are written (and read) by a masked select over the whole buffer
#: instead of a scatter (a gather): under vmap the index is batched, and XLA's CPU scatter costs
#: far more per update than a fused select over a short buffer.
SELECT_WRITE_MAX = 256

#: Deep levels (below the full ones) from which the Brownian grid build's per-point loops are
#: rolled. XLA:CPU compiles every kernel as its own LLVM module, so unrolled, each level
#: compiles kernels of its own, and with the fine `tol` a path-consistent area wants (about the
#: step squared) the deep levels are half the tree; rolled, a vmapped build carries and stacks
#: every level's values and runs slower, so the usual few levels (`tol` about the step) stay
#: unrolled.
ROLLED_FROM = 5

#: Updates of a solve's progress meter: each is a host callback, which on XLA:CPU costs far more
#: than a step of a small problem (tenths of a millisecond, even for a no-op callback). So one
#: update per `PROGRESS_STEPS_PER_UPDATE` steps (of the grid, or of `max_steps` for the while
#: loop), at least `PROGRESS_MIN_UPDATES` (every 20%) and at most `PROGRESS_UPDATES` (every 2%).
#: Figures: benchmarks/results/design_measurements.md.
PROGRESS_UPDATES = 50
PROGRESS_MIN_UPDATES = 5
PROGRESS_STEPS_PER_UPDATE = 20_000

#: Largest identity (elements) written into a program as a constant rather than computed in it
#: (`jnp.eye`: an iota and a compare, which XLA:CPU compiles as kernels of their own, about 7 ms
#: each). A constant's bytes are compiled into the executable, so a large identity is computed.
CONSTANT_IDENTITY_MAX_ELEMENTS = 4096

#: Largest state for which the chord iteration multiplies by $M^{-1}$, formed once per
#: factorisation (from the same LU), instead of two triangular solves per iteration: a LAPACK
#: call is a custom call, which keeps XLA:CPU from compiling a small Newton loop as one
#: kernel, and costs more than a small matrix-vector product at run time. Above it the
#: inverse's extra n^3 work outgrows the solves it saves.
SMALL_SYSTEM_INVERSE_MAX = 16
