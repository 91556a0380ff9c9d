"""Settings for everything pytest collects (tests, doctests in sdekit/, notebooks): the strict
promotion that sdekit's own code must satisfy (as diffrax's suite does)."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
