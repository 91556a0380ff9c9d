"""Settings for everything pytest collects (tests, doctests in sdekit/, notebooks): the strict
promotion that sdekit's own code must satisfy (as diffrax's suite does), and a cheaper XLA:CPU
code generation.

The suite is compile-bound: most of its time is XLA compiling thousands of distinct programs,
which users compile once each. LLVM's optimisation level 0 (`--xla_backend_optimization_level`)
changes how the kernels are generated, not the computation they do; it compiles 15-25% faster
(tests/solve 175 -> 149 s, tests/brownian 187 -> 138 s). Notebooks, whose training loops
are run-time-bound, keep the default (below). A run that sets the flag itself keeps its own
choice; benchmarks never use this file.
"""

import os

import pytest

# The run's own XLA_FLAGS, kept in the environment for pytest-xdist's workers, which start with
# the flags this file added (and must still know that it added them).
_BEFORE = "SDEKIT_TESTS_XLA_FLAGS_BEFORE"
if _BEFORE in os.environ:
    _OWN_FLAGS, _CHEAP_CODEGEN = os.environ[_BEFORE] or None, True
else:
    _OWN_FLAGS = os.environ.get("XLA_FLAGS")  # None: unset
    _CHEAP_CODEGEN = "xla_backend_optimization_level" not in (_OWN_FLAGS or "")
    if _CHEAP_CODEGEN:
        os.environ[_BEFORE] = _OWN_FLAGS or ""
        os.environ["XLA_FLAGS"] = ((_OWN_FLAGS or "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Notebooks run in kernels of their own, which inherit the environment: they keep the
    default code generation. They are run-time-bound (training loops), and at level 0 they ran
    1.2-4x slower (neural_sde.ipynb 31 -> 124 s), more than the level saves them in compiling."""
    notebook = _CHEAP_CODEGEN and item.path.suffix == ".ipynb"
    if notebook:
        cheap = os.environ["XLA_FLAGS"]
        if _OWN_FLAGS is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = _OWN_FLAGS
    try:
        yield
    finally:
        if notebook:
            os.environ["XLA_FLAGS"] = cheap


def pytest_collection_modifyitems(config, items):
    """Notebooks first: they are the longest items (30-90 s each) and are collected last, and
    pytest-xdist can leave one worker running such an item alone at the end (longest first is
    the usual balance). One run each way did not show the difference (2009 s, then 2053 s, on a
    noisy host). The order is the same in every worker, as xdist requires."""
    items.sort(key=lambda item: item.path.suffix != ".ipynb")
