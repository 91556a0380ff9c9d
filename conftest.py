"""Settings for everything pytest collects (tests, doctests in sdekit/, notebooks): the strict
promotion that sdekit's own code must satisfy (as diffrax's suite does), and a cheaper XLA:CPU
code generation.

The suite is compile-bound: most of its time is XLA compiling thousands of distinct programs,
which users compile once each. LLVM's optimisation level 0 (`--xla_backend_optimization_level`)
changes how the kernels are generated, not the computation they do; it compiles 15-25% faster
(tests/solve 175 -> 149 s, tests/brownian 187 -> 138 s) and runs the longest training
notebooks about 12% slower. A run that sets the flag itself keeps its own choice; benchmarks
never use this file.
"""

import os

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
