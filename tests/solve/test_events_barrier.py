r"""A Brownian motion's first passage of a barrier by an event on the discretised path, against
the reflection principle: $P(\max_{[0,1]} W \ge b) = 2(1 - \Phi(b))$.

Monitored on a grid of step $\Delta t$ (the event sees the linear interpolant between grid
points, whose maximum is at a grid point), the hitting probability is biased low by
$O(\sqrt{\Delta t})$: to first order it is the continuous one at the shifted barrier
$b + \beta\sqrt{\Delta t}$, $\beta = -\zeta(1/2)/\sqrt{2\pi} \approx 0.5826$ (Broadie,
Glasserman & Kou, Math. Finance 7(4), 1997). The test checks, on the same paths at two step
sizes, that the estimate matches that shifted formula within 3 standard errors at each, that it
is many standard errors away from the continuous value (the bias is there and is the
$\sqrt{\Delta t}$ one), and that Richardson extrapolation in $\sqrt{\Delta t}$ recovers the
reflection principle within 3 standard errors (paired: the same paths at both resolutions).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import sdekit as sk

BETA = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi)
BARRIER = 1.0
N_PATHS = 20_000


def hits(n_steps: int) -> np.ndarray:
    brownian = sk.SDE(lambda t, y, a: jnp.zeros_like(y), lambda t, y, a: jnp.ones_like(y), noise="additive")
    event = sk.Event(lambda t, y, a: y - BARRIER, direction=1)
    grid = jnp.linspace(0.0, 1.0, n_steps + 1)

    def one(key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2.0**-12)
        sol = sk.solve(brownian, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.zeros(()), controller=sk.StepTo(grid),
                       brownian=tree, event=event)
        return sol.event_mask, sol.t_event, sol.ys[-1]

    mask, t_event, y_end = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(2024), N_PATHS))
    mask = np.asarray(mask)
    # A hit stops on the barrier (the root of the linear interpolant), inside the interval.
    assert np.all(np.abs(np.asarray(y_end)[mask] - BARRIER) < 1e-4)
    assert np.all((np.asarray(t_event)[mask] > 0) & (np.asarray(t_event)[mask] <= 1))
    assert np.all(np.isnan(np.asarray(t_event)[~mask]))
    return mask.astype(np.float64)


@pytest.mark.slow
def test_hitting_probability_reflection_principle():
    continuous = 2 * (1 - norm.cdf(BARRIER))
    coarse, fine = hits(64), hits(256)
    for h, n in ((coarse, 64), (fine, 256)):
        p, se = h.mean(), h.std() / np.sqrt(N_PATHS)
        shifted = 2 * (1 - norm.cdf(BARRIER + BETA * np.sqrt(1 / n)))
        assert abs(p - shifted) < 3 * se, (n, p, shifted, se)
        assert continuous - p > 5 * se, (n, p, continuous, se)  # the discrete-monitoring bias
    # Richardson in sqrt(dt) (dt / 4 halves it): 2 p(dt / 4) - p(dt), paired over paths.
    z = 2 * fine - coarse
    assert abs(z.mean() - continuous) < 3 * z.std() / np.sqrt(N_PATHS), (z.mean(), continuous)
