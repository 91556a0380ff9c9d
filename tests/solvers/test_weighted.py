"""`weighted_rows`, the stage sums of the implicit solvers, against numpy's matrix products."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdekit.solvers._weighted import weighted_rows


@pytest.mark.parametrize("weights_shape", [(3,), (3, 3), (2, 4, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_equals_the_matrix_product(weights_shape, dtype, x64):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=weights_shape).astype(dtype)
    rows = (rng.normal(size=(3, 5)) + (1j * rng.normal(size=(3, 5)) if dtype == np.complex128 else 0)).astype(dtype)
    # The suite raises on implicit rank promotion: the helper must broadcast explicitly.
    with jax.numpy_rank_promotion("raise"):
        out = weighted_rows(jnp.asarray(weights), jnp.asarray(rows))
    np.testing.assert_allclose(np.asarray(out), weights @ rows, rtol=1e-14, atol=1e-14)
    assert out.shape == weights_shape[:-1] + (5,)
