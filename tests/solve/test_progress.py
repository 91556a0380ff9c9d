"""`progress=True`: host callbacks at marks the host sets by wall time (so a bounded number,
whatever the step count), also under vmap and jit; a missing tqdm reported when the solve is
called."""

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


def _solve_in(mode):
    ode = sk.ODE(lambda t, y, a: -y)
    if mode == "grid-1e5":
        ys = jax.jit(lambda y0: sk.solve(ode, sk.solvers.euler(), 0.0, 1.0, y0, controller=sk.StepTo(jnp.linspace(0, 1, 100_001)),
                                         progress=True).ys)(jnp.array(1.0))
    elif mode == "vmap-adaptive":
        run = jax.vmap(lambda y0: sk.solve(ode, sk.solvers.tsit5(), 0.0, 1.0, y0, progress=True, max_steps=20000,
                                           controller=sk.PID(rtol=1e-10, atol=1e-12)).ys)
        ys = run(jnp.array([1.0, 2.0]))
    else:
        solve = lambda y0: sk.solve(ode, sk.solvers.rk4(), 0.0, 1.0, y0, dt0=1e-4, max_steps=10010, progress=True).ys  # noqa: E731
        ys = (jax.jit(solve) if mode == "jit" else solve)(jnp.array(1.0))
    jax.effects_barrier()
    assert np.all(np.isfinite(ys))


MODES = ["while", "jit", "vmap-adaptive", "grid-1e5"]


@pytest.mark.parametrize("mode", MODES)
def test_a_short_solve_calls_back_once_from_the_loop(counted_updates, monkeypatch, mode):
    """A solve shorter than `UPDATE_SECONDS`: one update from the running loop (at the first
    mark, which measures the rate) and the final one when the meter closes."""
    monkeypatch.setattr(_progress, "UPDATE_SECONDS", 1e6)
    _solve_in(mode)
    assert len(counted_updates) == 2, counted_updates
    assert _progress.FIRST_MARK - 1e-6 <= counted_updates[0] < 1.0
    assert counted_updates[-1] == 1.0


@pytest.mark.parametrize("mode", MODES)
def test_the_host_sets_each_next_mark(counted_updates, monkeypatch, mode):
    """The loop reports exactly when the host's mark is passed (here: every tenth of the run;
    the fixed grid can only report at its chunks' ends)."""
    monkeypatch.setattr(_progress, "next_mark", lambda started, now, done: done + 0.1)
    _solve_in(mode)
    fractions = np.array(counted_updates[:-1])
    assert counted_updates[-1] == 1.0
    assert fractions[0] >= _progress.FIRST_MARK - 1e-6
    gaps = np.diff(fractions)
    if mode in ("jit", "grid-1e5"):  # a scan in 5 chunks: a report at the end of each (each passes its mark)
        np.testing.assert_allclose(fractions, [0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    else:  # the first step past each mark reports
        assert 9 <= len(fractions) <= 12, fractions
        assert np.all(gaps >= 0.1 - 1e-6) and np.all(gaps < 0.1 + 0.02), gaps


def test_next_mark_follows_the_rate():
    """A tenth done in a second, 0.25 s between updates: the next mark is 0.125; never less than
    `MIN_MARK_STEP` ahead (the loop must step before it reports again)."""
    assert _progress.next_mark(0.0, 1.0, 0.1) == pytest.approx(0.1 + 0.1 * _progress.UPDATE_SECONDS)
    assert _progress.next_mark(0.0, 1000.0, 0.1) == pytest.approx(0.1 + _progress.MIN_MARK_STEP)
    assert _progress.next_mark(5.0, 5.0, 0.0) == pytest.approx(_progress.MIN_MARK_STEP)


def test_update_policy():
    """A fixed grid runs in chunks of 20,000 steps, between 5 and 50 of them."""
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
