"""Constant steps over long horizons: no step lost or stretched by rounding, in either dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


@pytest.mark.parametrize("t1, dt0", [(100.0, 1e-3), (1000.0, 1e-2), (1.004, 0.01), (1.0, 0.1)])
@pytest.mark.parametrize("loop", ["while", "grid"])
def test_step_count_and_longest_step_over_long_horizons(dtype, t1, dt0, loop):
    expected = int(np.ceil(round(t1 / dt0, 6)))
    problem = sk.ODE(lambda t, y, a: jnp.zeros_like(y))
    run = lambda: sk.solve(problem, sk.solvers.euler(), 0.0, t1, jnp.zeros((), dtype), dt0=dt0, max_steps=expected + 10,  # noqa: E731
                           saveat=sk.SaveAt(steps=True) if loop == "while" else sk.SaveAt(t1=True))
    if loop == "while":  # eagerly, the while loop; its saved step ends give the grid
        sol = run()
        ends = np.asarray(sol.ts)
        ends = ends[np.isfinite(ends)]
    else:  # under jit with Python numbers: the scan over the grid
        sol = jax.jit(run)()
        ends = None
    assert int(sol.stats["num_steps"]) == expected
    if ends is not None:
        steps = np.diff(np.concatenate([[0.0], ends.astype(np.float64)]))
        rounding = 4 * np.finfo(dtype).eps * t1  # the ends' own rounding
        assert steps.max() <= dt0 + rounding and ends[-1] == np.asarray(t1, dtype)
