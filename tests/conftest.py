import jax
import jax.numpy as jnp
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


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
