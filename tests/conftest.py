import gc

import jax
import jax.numpy as jnp
import pytest

# Strict rank and dtype promotion for the whole run: ../conftest.py.


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run a test in float32 and in float64 (jax_enable_x64 switched on for the latter)."""
    enable = request.param == "float64"
    with jax.enable_x64(enable):
        yield jnp.dtype(request.param)


@pytest.fixture
def x64():
    """Run a test with jax_enable_x64 switched on."""
    with jax.enable_x64(True):
        yield


def _memory_maps() -> int:
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux: no such limit to watch
        return 0


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Free the compiled programs when the process holds many memory maps. XLA:CPU maps memory
    for every kernel of every executable (hundreds of maps for one diffusion sampler's solve),
    and a long-lived test worker that keeps them all reaches the kernel's limit of 65,530 maps
    and crashes inside a compile (seen in CI). Clearing only then keeps the compile cache's
    benefit between tests."""
    yield
    if _memory_maps() > 30_000:
        jax.clear_caches()
        gc.collect()
