import gc

import jax
import pytest


@pytest.fixture(autouse=True)
def _release_each_tests_programs():
    """The samplers' solves are large programs (hundreds of memory maps each on XLA:CPU): free
    them after every test here, not only after the module (see ../conftest.py)."""
    yield
    jax.clear_caches()
    gc.collect()
