"""`progress=True`: a bounded number of host callbacks whatever the step count, also under vmap;
a missing tqdm reported when the solve is called."""

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from sdekit._solve import _progress


@pytest.fixture
def counted_updates(monkeypatch):
    calls = []
    original = _progress._update

    def counting(meter_id, fraction, final=False):
        calls.append(float(np.min(np.asarray(fraction))))
        return original(meter_id, fraction, final)

    monkeypatch.setattr(_progress, "_update", counting)
    return calls


@pytest.mark.parametrize("mode", ["while", "grid", "vmap-adaptive", "grid-1e5"])
def test_progress_calls_back_a_bounded_number_of_times(counted_updates, mode):
    ode = sk.ODE(lambda t, y, a: -y)
    expected = _progress.updates_for(20000 if mode == "vmap-adaptive" else 10010)
    if mode == "grid-1e5":
        # Few updates for 1e5 steps (5): each costs as much as hundreds of small steps.
        expected = _progress.updates_for(100_000)
        ys = jax.jit(lambda y0: sk.solve(ode, sk.solvers.euler(), 0.0, 1.0, y0, dt0=1e-5, max_steps=100_010,
                                         progress=True).ys)(jnp.array(1.0))
    elif mode == "vmap-adaptive":
        run = jax.vmap(lambda y0: sk.solve(ode, sk.solvers.tsit5(), 0.0, 1.0, y0, progress=True, max_steps=20000,
                                           controller=sk.PID(rtol=1e-10, atol=1e-12)).ys)
        ys = run(jnp.array([1.0, 2.0]))
    else:
        solve = lambda y0: sk.solve(ode, sk.solvers.rk4(), 0.0, 1.0, y0, dt0=1e-4, max_steps=10010, progress=True).ys  # noqa: E731
        ys = (jax.jit(solve) if mode == "grid" else solve)(jnp.array(1.0))
    jax.effects_barrier()
    assert np.all(np.isfinite(ys))
    assert expected // 2 <= len(counted_updates) <= expected + 1, (expected, len(counted_updates))
    assert counted_updates[-1] == 1.0


def test_update_policy():
    """One update per 20,000 steps, between 5 (every 20%) and 50 (every 2%)."""
    assert [_progress.updates_for(n) for n in (100, 100_000, 500_000, 10**6, 10**7)] == [5, 5, 25, 50, 50]


def test_missing_tqdm_fails_when_the_solve_is_called(monkeypatch):
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.rk4(), 0.0, 1.0, jnp.array(1.0), dt0=0.1, progress=True)
