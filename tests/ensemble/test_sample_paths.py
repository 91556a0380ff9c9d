"""`sk.sample_paths` on one device: per-path inputs, path keys from `(key, i)`, identical numbers
for every chunk size and path count, fixed and adaptive steps, SaveAt, ODEs and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk

TS = jnp.linspace(0.0, 1.0, 5)
GBM = sk.SDE(lambda t, y, a: a * y, lambda t, y, a: 0.3 * y, noise="diagonal")
OU = sk.SDE(lambda t, y, a: -a * y, lambda t, y, a: 0.5 * jnp.ones_like(y), noise="additive", calculus="stratonovich")
PID = sk.PID(rtol=1e-3, atol=1e-3, pcoeff=0.1, icoeff=0.3)


def _gbm(n, **kw):
    kw.setdefault("args", 0.1)
    return sk.sample_paths(GBM, sk.solvers.euler_maruyama(), kw.pop("y0", jnp.ones(())), TS, jax.random.key(3), n,
                           substeps=4, **kw)


def test_path_i_is_sk_solve_with_the_key_folded_with_i(dtype):
    """Path i is a plain solve driven by BrownianTree(fold_in(key, i)) (to float rounding: the
    ensemble's trees are built as one), with its own y0 (leading axis) and args (a function)."""
    n = 20
    y0s = jnp.linspace(1.0, 2.0, n, dtype=dtype)
    rate = lambda i: (i.astype(dtype) - 10) / 8  # noqa: E731
    sol = _gbm(n, y0=sk.PerPath(y0s), args=sk.PerPath(rate))
    assert sol.ys.shape == (n, 5) and sol.ys.dtype == dtype
    for i in (0, 7, 19):
        tree = sk.BrownianTree(jax.random.fold_in(jax.random.key(3), i), 0.0, 1.0, shape=(), tol=2.0**-4)
        one = sk.solve(GBM, sk.solvers.euler_maruyama(), 0.0, 1.0, y0s[i], rate(jnp.int32(i)),
                       controller=sk.StepTo(jnp.linspace(0.0, 1.0, 17, dtype=dtype)), saveat=sk.SaveAt(ts=TS),
                       brownian=tree)
        np.testing.assert_allclose(sol.ys[i], one.ys, rtol=20 * jnp.finfo(dtype).eps)


def test_numbers_do_not_depend_on_chunks_or_path_count():
    """Bitwise: all at once, in chunks (the last one padded), and the first paths of a smaller
    ensemble."""
    n = 40
    y0s = 1.0 + jnp.arange(n, dtype=jnp.float32) / 64
    whole = _gbm(n, y0=sk.PerPath(y0s)).ys
    assert (_gbm(n, y0=sk.PerPath(y0s), batch_size=16).ys == whole).all()
    assert (_gbm(9, y0=sk.PerPath(y0s[:9])).ys == whole[:9]).all()
    assert len(np.unique(np.asarray(whole[:, -1]))) == n  # independent paths


def test_pytree_state_and_args_per_path(x64):
    n = 16
    y0 = sk.PerPath({"a": jnp.ones((n, 2)), "b": jnp.zeros(n)})
    problem = sk.SDE(lambda t, y, a: {"a": -a["k"] * y["a"], "b": a["c"] * jnp.ones(())},
                     lambda t, y, a: {"a": 0.1 * jnp.ones(2), "b": jnp.zeros(())}, noise="additive")
    args = sk.PerPath({"k": jnp.linspace(0.0, 1.0, n), "c": jnp.arange(n, dtype=jnp.float64)})
    sol = sk.sample_paths(problem, sk.solvers.euler_maruyama(), y0, TS, jax.random.key(0), n, args=args, substeps=8)
    assert sol.ys["a"].shape == (n, 5, 2) and sol.ys["b"].shape == (n, 5)
    np.testing.assert_allclose(sol.ys["b"][:, -1], np.arange(n), rtol=1e-12)  # b' = c_i exactly


def test_adaptive_steps_per_path():
    """PID steps (a while loop per path): per-path rates give per-path step counts. (Chunks,
    devices and hosts give the same numbers: tests/ensemble/test_devices.py.)"""
    n = 16
    sol = sk.sample_paths(OU, sk.solvers.shark(), jnp.ones(2), TS, jax.random.key(1), n, controller=PID, dt0=0.05,
                          args=sk.PerPath(jnp.linspace(0.5, 8.0, n)))
    steps = np.asarray(sol.stats["num_steps"])
    assert steps.shape == (n,) and steps[-1] > steps[0] + 3 and (sol.result == 0).all()
    assert sol.ys.shape == (n, 5, 2)


def test_saveat_and_ode_ensembles():
    sol = _gbm(16, saveat=sk.SaveAt(t0=True, t1=True))
    assert sol.ys.shape == (16, 2) and (sol.ys[:, 0] == 1).all()
    decay = sk.ODE(lambda t, y, a: -a * y)
    rates = jnp.linspace(0.0, 2.0, 16)
    ode = sk.sample_paths(decay, sk.solvers.tsit5(), jnp.ones(()), TS, None, 16, args=sk.PerPath(rates),
                          controller=sk.PID(rtol=1e-8, atol=1e-8))
    np.testing.assert_allclose(ode.ys, np.exp(-np.outer(rates, TS)), rtol=1e-5)


def test_path_keys_do_not_depend_on_the_prng_partitioning_flag():
    """`split(key, n)[i]` changes with n when jax_threefry_partitionable is off; `fold_in(key, i)`
    (a path's key in sample_paths) depends on (key, i) only."""
    key = jax.random.key(0)
    with jax.threefry_partitionable(False):
        split = [jax.random.key_data(jax.random.split(key, n)[1]) for n in (4, 8)]
        assert not (split[0] == split[1]).all()
        folded = jax.random.key_data(jax.random.fold_in(key, 1))
    assert (folded == jax.random.key_data(jax.random.fold_in(key, 1))).all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_paths=0), ValueError, "n_paths must be a positive int"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int"),
    (dict(y0=sk.PerPath(jnp.ones(3))), ValueError, "leading paths axis of length n_paths=8"),
    (dict(key=None), ValueError, "needs a PRNG key"),
    (dict(controller=PID), ValueError, "substeps cuts the default grid"),
    (dict(ts=jnp.array([0.0, 1.0, 0.5])), ValueError, "strictly increasing"),
    (dict(mesh="cpu"), TypeError, "mesh must be a jax.sharding.Mesh"),
    (dict(problem=lambda t, y, a: y), TypeError, "solves an sk.SDE or sk.ODE"),
])
def test_bad_input(kwargs, error, match):
    call = dict(problem=GBM, solver=sk.solvers.euler_maruyama(), y0=jnp.ones(()), ts=TS, key=jax.random.key(0),
                n_paths=8, args=0.1, substeps=2)
    call.update(kwargs)
    with pytest.raises(error, match=match):
        sk.sample_paths(**call)


def test_traced_save_times_are_refused():
    with pytest.raises(ValueError, match="must be concrete"):
        jax.jit(lambda ts: sk.sample_paths(GBM, sk.solvers.euler_maruyama(), jnp.ones(()), ts, jax.random.key(0), 4,
                                           args=0.1))(TS)
