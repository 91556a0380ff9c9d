"""Small linear combinations of stacked rows, as one fused elementwise expression."""

import jax.numpy as jnp


def weighted_rows(weights, rows):
    r"""$\sum_j w_{\dots j} r_j$: `weights` `(..., s)` against `rows` `(s, n)`, giving `(..., n)`.

    Not a `dot`: XLA:CPU hands even a `(3,) x (3, n)` dot to a library call (a YNNPACK or Eigen
    thunk), while a multiply-and-sum over the few stages fuses with its neighbours. Written this
    way, Radau IIA's six stage contractions made its solves 15-35% faster on the stiff benchmarks
    (`benchmarks/results/stiff.md`)."""
    rows = jnp.reshape(rows, (1,) * (jnp.ndim(weights) - 1) + jnp.shape(rows))
    return jnp.sum(weights[..., :, None] * rows, axis=-2)
