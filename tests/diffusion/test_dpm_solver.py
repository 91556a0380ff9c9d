"""DPM-Solver and DPM-Solver++: convergence orders against the exact probability-flow solution,
identities with DDIM, NFE counts, jit/vmap/float32/gradients, bad input, and step-by-step
agreement with k-diffusion's and diffusers' trajectories (tests/diffusion/fixtures)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd

from . import _fixtures, _orders

S = skd.samplers

SAMPLERS = {
    "ms1": lambda: S.dpm_solver(1),
    "ms2": lambda: S.dpm_solver(2),
    "ms3": lambda: S.dpm_solver(3),
    "ss2": lambda: S.dpm_solver(2, "singlestep"),
    "ss3": lambda: S.dpm_solver(3, "singlestep"),
    "pp2M": lambda: S.dpm_solver_pp(2),
    "pp3M": lambda: S.dpm_solver_pp(3),
    "pp2S": lambda: S.dpm_solver_pp(2, "singlestep"),
    "pp3S": lambda: S.dpm_solver_pp(3, "singlestep"),
}
THEORY = {"ms1": 1, "ms2": 2, "ms3": 3, "ss2": 2, "ss3": 3, "pp2M": 2, "pp3M": 3, "pp2S": 2, "pp3S": 3}
# The asymptotic range for the test mixture (measured: at 10-40 steps slopes are 1.0-2.5).
STEPS = (160, 320, 640)


def _schedule(name):
    return skd.VP.linear() if name == "vp" else skd.EDM()


def _slope(name, sampler, steps=STEPS):
    """Fitted order against the exact flow (float64; `_orders.errors` compiles once for all
    step counts and solves the exact flow once per schedule)."""
    sched = _schedule(name)
    model = _orders.mixture(jnp.float64).model(sched)
    return _orders.fitted_order(steps, _orders.errors(model, sampler, _orders.starts(sched, 8), steps))


# One case per engine path on VP; the EDM schedule (alpha = 1) for two (the suite's time is bounded).
# ms1 is DDIM (an identity tested below) and ss2/pp3S share the singlestep engine with ss3/pp2S.
ORDER_CASES = [("vp", c) for c in SAMPLERS if c not in ("ms1", "ss2", "pp3S")] + [("edm", c) for c in ("ms3", "pp2M")]


@pytest.mark.parametrize("schedule, case", ORDER_CASES)
def test_order(x64, schedule, case):
    sampler = SAMPLERS[case]()
    slope = _slope(schedule, sampler)
    assert abs(slope - THEORY[case]) < 0.2, (case, slope)
    assert sampler.order == THEORY[case]
    if THEORY[case] == 3:
        assert slope > 2.6


@pytest.mark.parametrize("data", [False, True])
def test_reference_third_order_is_second_order(x64, data):
    """The reference codes' 3M coefficient (half the exact D2 term) converges at order 2."""
    sampler = (S.dpm_solver_pp if data else S.dpm_solver)(3, third_order="reference")
    slope = _slope("vp", sampler)
    assert 1.9 < slope < 2.4, slope
    assert sampler.order == 2


def test_fast_grid_and_orders(x64):
    ts, orders = S.dpm_solver_fast_grid(skd.EDM(), 10)
    assert orders == (3, 3, 3, 1) and ts.shape == (5,)
    lam = -jnp.log(ts)
    assert np.allclose(np.diff(np.asarray(lam)), float(lam[1] - lam[0]), rtol=1e-12)
    assert S.dpm_solver_fast_grid(skd.EDM(), 12)[1] == (3, 3, 3, 2, 1)
    assert S.dpm_solver_fast_grid(skd.EDM(), 11)[1] == (3, 3, 3, 2)
    assert S.dpm_solver_fast_grid(skd.EDM(), 7, order=2)[1] == (2, 2, 2, 1)
    for nfe in range(1, 13):
        assert sum(S.dpm_solver_fast_grid(skd.VP.linear(), nfe)[1]) == nfe


# --- identities and NFE -----------------------------------------------------------------------
def _solve(model, sampler, ts, x_T, **kw):
    return sk.solve(skd.probability_flow(model), sampler, ts[0], ts[-1], x_T, controller=sk.StepTo(ts), **kw)


@pytest.mark.parametrize("schedule", ["vp", "edm"])
def test_first_order_is_ddim(x64, schedule):
    sched = _schedule(schedule)
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 8)
    ts = skd.time_grid(sched, 12, "karras", zero_end=schedule == "edm")
    ref = skd.sample(model, S.ddim(), x_T, ts)
    for sampler in (S.dpm_solver(1), S.dpm_solver_pp(1, "singlestep")):
        assert np.allclose(skd.sample(model, sampler, x_T, ts), ref, rtol=1e-13, atol=1e-13)
    # The multistep methods' first step is DDIM's.
    one = ts[:2]
    for sampler in (S.dpm_solver(3), S.dpm_solver_pp(2)):
        sol = _solve(model, sampler, ts, x_T, saveat=sk.SaveAt(steps=True))
        assert np.allclose(sol.ys[0], skd.sample(model, S.ddim(), x_T, one), rtol=1e-13, atol=1e-13)


def test_nfe_counts(x64):
    sched = skd.EDM()
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 4)
    ts = skd.time_grid(sched, 10, "log_snr")
    calls = []
    counting = skd.Model(lambda x, t, a: (jax.debug.callback(lambda: calls.append(1)), model.fn(x, t, a))[1], sched,
                         prediction="x0")
    for sampler, nfe in [(S.dpm_solver(3), 10), (S.dpm_solver_pp(2), 10), (S.dpm_solver(2, "singlestep"), 20),
                         (S.dpm_solver_pp(3, "singlestep"), 30)]:
        calls.clear()
        sol = _solve(counting, sampler, ts, x_T)
        jax.block_until_ready(sol.ys)
        assert int(sol.stats["num_fevals"]) == nfe == len(calls), sampler.name
    fast_ts, orders = S.dpm_solver_fast_grid(sched, 10)
    calls.clear()
    sol = _solve(counting, S.dpm_solver(3, "singlestep", orders=orders), fast_ts, x_T)
    jax.block_until_ready(sol.ys)
    assert int(sol.stats["num_fevals"]) == 10 == len(calls)
    # A singlestep step to sigma = 0 evaluates once (k-diffusion's 2S: 2N - 1).
    calls.clear()
    zero = skd.time_grid(sched, 6, "karras", zero_end=True)
    jax.block_until_ready(_solve(counting, S.dpm_solver_pp(2, "singlestep"), zero, x_T).ys)
    assert len(calls) == 11


def test_lower_order_final(x64):
    """With steps < 15 the last step is first order and the one before second (diffusers)."""
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 8)
    ts = skd.time_grid(sched, 8, "log_snr")
    full = _solve(model, S.dpm_solver_pp(3), ts, x_T, saveat=sk.SaveAt(steps=True)).ys
    low = _solve(model, S.dpm_solver_pp(3, steps=8), ts, x_T, saveat=sk.SaveAt(steps=True)).ys
    off = _solve(model, S.dpm_solver_pp(3, steps=8, lower_order_final=False), ts, x_T).ys[-1]
    assert np.array_equal(full[:6], low[:6]) and not np.allclose(full[6], low[6])
    assert np.allclose(off, full[-1], rtol=1e-14, atol=1e-14)
    # Step 7 (the last) from low[6] is DDIM; step 6 from low[5] is second order ("heun" for 3M).
    assert np.allclose(low[7], skd.sample(model, S.ddim(), low[6], ts[7:]), rtol=1e-13, atol=1e-13)
    assert S.dpm_solver_pp(3, steps=20) is S.dpm_solver_pp(3, steps=20)


# --- jit, vmap, float32, gradients, edge cases -------------------------------------------------
# One of each engine path: multistep noise/data forms, singlestep 2 and 3.
SHORT_CASES = ["ms3", "ss3", "pp2M", "pp3M", "pp2S"]


# Every engine path in float64 (vmap against the batch to 1e-12); float32 to sigma = 0 for one (the
# float32 accuracy of all five is test_float32_close_to_float64).
@pytest.mark.parametrize("case, dtype_name", [(c, "float64") for c in SHORT_CASES] + [("pp2M", "float32")])
def test_vmap_jit_dtype(case, dtype_name):
    with jax.enable_x64(dtype_name == "float64"):
        dtype = jnp.dtype(dtype_name)
        sched = skd.EDM()
        model = _orders.mixture(dtype).model(sched)
        x_T = _orders.starts(sched, 6).astype(dtype)
        ts = skd.time_grid(sched, 12, "karras", zero_end=True)
        sampler = SAMPLERS[case]()
        batched = jax.jit(lambda x: skd.sample(model, sampler, x, ts))(x_T)
        single = jax.jit(jax.vmap(lambda x: skd.sample(model, sampler, x, ts)))(x_T)
        assert batched.dtype == dtype and single.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(batched)))
        tol = 1e-4 if dtype == jnp.float32 else 1e-12
        assert np.allclose(batched, single, rtol=tol, atol=tol)


def test_float32_close_to_float64():
    with jax.enable_x64(True):
        sched = skd.VP.linear()
        x64_T = _orders.starts(sched, 8)
        ts = skd.time_grid(sched, 20, "log_snr")
        ref = {k: np.asarray(skd.sample(_orders.mixture().model(sched), SAMPLERS[k](), x64_T, ts)) for k in SHORT_CASES}
    sched = skd.VP.linear()
    model = _orders.mixture(jnp.float32).model(sched)
    for k in SHORT_CASES:
        f = SAMPLERS[k]
        out = skd.sample(model, f(), jnp.asarray(x64_T, jnp.float32), jnp.asarray(ts, jnp.float32))
        assert out.dtype == jnp.float32
        assert np.max(np.abs(np.asarray(out) - ref[k])) < 2e-4, k


@pytest.mark.parametrize("sampler", [S.dpm_solver_pp(3), S.dpm_solver(2, "singlestep"), S.dpm_solver(3)],
                         ids=["pp3M", "ss2", "ms3"])
def test_gradients_match_finite_differences(x64, sampler):
    sched = skd.EDM()
    mix = _orders.mixture()
    x_T = _orders.starts(sched, 3)
    ts = skd.time_grid(sched, 8, "karras", zero_end=True)

    def loss(x, means):
        model = skd.GaussianMixture(mix.weights, means, mix.covs).model(sched)
        return jnp.sum(jnp.sin(skd.sample(model, sampler, x, ts)))

    gx, gm = jax.grad(loss, argnums=(0, 1))(x_T, mix.means)
    assert bool(jnp.all(jnp.isfinite(gx))) and bool(jnp.all(jnp.isfinite(gm)))
    eps = 1e-6
    for idx in [(0, 0), (2, 1)]:
        e = jnp.zeros_like(x_T).at[idx].set(eps)
        fd = (loss(x_T + e, mix.means) - loss(x_T - e, mix.means)) / (2 * eps)
        assert abs(float(fd) - float(gx[idx])) < 1e-6 * max(1.0, abs(float(fd)))
    for idx in [(1, 0), (0, 1)]:
        e = jnp.zeros_like(mix.means).at[idx].set(eps)
        fd = (loss(x_T, mix.means + e) - loss(x_T, mix.means - e)) / (2 * eps)
        assert abs(float(fd) - float(gm[idx])) < 1e-6 * max(1.0, abs(float(fd)))


@pytest.mark.parametrize("case", SHORT_CASES)
def test_infinite_steps_are_nan_free(x64, case):
    """A flow grid from alpha = 0 (lambda = -inf) to sigma = 0 (lambda = +inf): finite values and
    grads (skd.sample allows alpha = 0 at the grid's start only)."""
    sched = skd.Flow()
    mix = _orders.mixture()
    x_T = _orders.starts(sched, 3, t=1.0)
    ts = jnp.linspace(1.0, 0.0, 9)
    sampler = SAMPLERS[case]()

    def loss(x, means):
        model = skd.GaussianMixture(mix.weights, means, mix.covs).model(sched)
        return jnp.sum(_solve(model, sampler, ts, x).ys[-1] ** 2)

    value, grads = jax.value_and_grad(loss, argnums=(0, 1))(x_T, mix.means)
    assert np.isfinite(float(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


def test_bad_input():
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        S.dpm_solver(4)
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        S.dpm_solver_pp(0)
    with pytest.raises(ValueError, match="method must be one of"):
        S.dpm_solver(2, "adaptive")
    with pytest.raises(ValueError, match="one order per grid step"):
        S.dpm_solver(3, "singlestep", steps=5, orders=(3, 3, 1))
    with pytest.raises(ValueError, match="orders must be"):
        S.dpm_solver(2, "singlestep", orders=(3, 1))
    with pytest.raises(ValueError, match="method='singlestep'"):
        S.dpm_solver(2, orders=(2, 2))
    with pytest.raises(ValueError, match="solver_type"):
        S.dpm_solver_pp(2, solver_type="rk4")
    with pytest.raises(ValueError, match="third_order"):
        S.dpm_solver_pp(3, third_order="approx")
    with pytest.raises(ValueError, match="steps must be"):
        S.dpm_solver_pp(2, steps=0)
    with pytest.raises(ValueError, match="nfe"):
        S.dpm_solver_fast_grid(skd.EDM(), 0)


# --- reference trajectories (k-diffusion, diffusers) --------------------------------------------
REFERENCES = {
    "edm_dpmpp_2m": lambda d: S.dpm_solver_pp(2),
    "edm_dpmpp_3m": lambda d: S.dpm_solver_pp(3, third_order="reference"),
    "edm_dpmpp_2s": lambda d: S.dpm_solver_pp(2, "singlestep"),
    "edm_dpm_fast": lambda d: S.dpm_solver(3, "singlestep", orders=tuple(int(k) for k in d["orders"])),
    "vp_ddim": lambda d: S.dpm_solver(1),
    "vp_dpmsolver1": lambda d: S.dpm_solver(1),
    "vp_dpmsolver2": lambda d: S.dpm_solver(2),
    "vp_dpmsolver3": lambda d: S.dpm_solver(3, third_order="reference"),
    "vp_dpmsolverpp2": lambda d: S.dpm_solver_pp(2),
    "vp_dpmsolverpp3": lambda d: S.dpm_solver_pp(3, solver_type="midpoint", third_order="reference"),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_trajectory(x64, name):
    d = _fixtures.load(name)
    gm = skd.GaussianMixture(jnp.asarray(d["weights"]), jnp.asarray(d["means"]), jnp.asarray(d["covs"]))
    if name.startswith("edm"):
        sched, ts = skd.EDM(), jnp.asarray(d["sigmas"])
    else:
        sched, ts = skd.VP.linear(), jnp.asarray(d["ts"])
    if name == "edm_dpm_fast":
        grid, orders = S.dpm_solver_fast_grid(sched, d["nfe"])
        assert orders == tuple(d["orders"]) and np.allclose(grid, ts, rtol=1e-13)
    sol = _solve(gm.model(sched), REFERENCES[name](d), ts, jnp.asarray(d["x_T"]), saveat=sk.SaveAt(t0=True, steps=True))
    tol = 1e-10 if d["float64_inside"] else 1e-4
    np.testing.assert_allclose(np.asarray(sol.ys), d["traj"], rtol=0, atol=tol)
