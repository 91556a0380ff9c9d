"""UniPC, DEIS and iPNDM: convergence orders against the exact probability-flow solution,
identities with DDIM, diffusers' trajectories step by step, jit/vmap/float32/gradients, the
ends of the noise range (alpha = 0, sigma = 0) and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit.diffusion as skd

from . import _fixtures, _orders
from ._drive import trajectory

S = skd.samplers

# (sampler, theoretical order, steps): step counts in the asymptotic range, measured (the fit
# over them is given in the comment; VP linear and EDM, log-SNR grids, float64).
ORDER_CASES = {
    "unipc1": (lambda: S.unipc(1), 2, [128, 256, 512]),  # 1.88
    "unipc2": (lambda: S.unipc(2), 3, [64, 128, 256]),  # 2.98
    "unipc3": (lambda: S.unipc(3), 4, [512, 1024, 2048]),  # 3.88
    "unipc3_bh1": (lambda: S.unipc(3, "bh1"), 4, [512, 1024, 2048]),
    "unipc2_predictor_only": (lambda: S.unipc(2, corrector=False), 2, [128, 256, 512]),  # 1.93
    "deis1": (lambda: S.deis(1), 1, [64, 128, 256]),  # 1.00
    "deis2": (lambda: S.deis(2), 2, [128, 256, 512]),  # 1.88
    "deis3": (lambda: S.deis(3), 3, [128, 256, 512]),  # 2.90
    "deis3_t_ab": (lambda: S.deis(3, "t_ab"), 3, [128, 256, 512]),
    "ipndm": (lambda: S.ipndm(), 2, [64, 128, 256]),  # 2.0: fixed coefficients on a grid not uniform in rho
}


# Every case on VP but deis1 (DDIM: an identity below); one on EDM (alpha = 1): the suite's time
# is bounded (each case compiles once for its three grid lengths: _orders.errors). (bh1: against
# diffusers below.)
ORDER_RUNS = [("vp", c) for c in ORDER_CASES if c not in ("unipc3_bh1", "deis1")] + [("edm", "unipc2")]


@pytest.mark.parametrize("schedule, case", ORDER_RUNS)
def test_order(case, schedule, x64):
    make, order, steps = ORDER_CASES[case]
    sched = skd.VP.linear() if schedule == "vp" else skd.EDM()
    model = _orders.mixture().model(sched)
    errs = _orders.errors(model, make(), _orders.starts(sched, 8), steps)
    assert abs(_orders.fitted_order(steps, errs) - order) < 0.2, errs


def _problem(sched=None):
    sched = skd.VP.linear() if sched is None else sched
    return _orders.mixture().model(sched), _orders.starts(sched, 8), sched


def test_first_orders_are_ddim(x64):
    model, x_T, sched = _problem()
    ts = skd.time_grid(sched, 12)
    ddim = skd.sample(model, S.ddim(), x_T, ts)
    np.testing.assert_allclose(skd.sample(model, S.unipc(1, corrector=False), x_T, ts), ddim, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(skd.sample(model, S.deis(1), x_T, ts), ddim)
    np.testing.assert_array_equal(skd.sample(model, S.deis(1, "t_ab"), x_T, ts), ddim)
    np.testing.assert_array_equal(skd.sample(model, S.ipndm(1), x_T, ts), ddim)


def test_lower_order_final(x64):
    """With `steps`, step i uses order min(p, N - i): on two steps, UniPC-3 is UniPC-1."""
    model, x_T, sched = _problem()
    ts = skd.time_grid(sched, 2)
    low = skd.sample(model, S.unipc(3, steps=2), x_T, ts)
    np.testing.assert_array_equal(low, skd.sample(model, S.unipc(1), x_T, ts))
    assert not np.allclose(low, skd.sample(model, S.unipc(3), x_T, ts))


# --- diffusers' trajectories (tests/diffusion/fixtures) -------------------------------------------

def _fixture_model(f):
    gm = skd.GaussianMixture(jnp.asarray(f["weights"]), jnp.asarray(f["means"]), jnp.asarray(f["covs"]))
    return gm.model(skd.VP.linear())


def _tolerance(f):
    return (1e-10 if f["float64_inside"] else 1e-4) * np.max(np.abs(f["traj"]))


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_against_diffusers(order, variant, x64):
    f = _fixtures.load(f"vp_unipc_{variant}_{order}")
    assert f["config"]["predict_x0"] and not f["config"]["lower_order_final"]
    sampler, model = S.unipc(order, variant), _fixture_model(f)
    ts, x = jnp.asarray(f["ts"]), jnp.asarray(f["x_T"])
    np.testing.assert_allclose(trajectory(sampler, model, ts, x), f["traj"], rtol=0, atol=_tolerance(f))
    # The corrected points, which the sampler keeps in its state as the next step's base.
    problem, step = skd.probability_flow(model), jax.jit(sampler.step)
    state = sampler.init(problem, ts[0], x, None)
    for i in range(len(ts) - 1):
        x, _, _, state = step(problem, ts[i], ts[i + 1], x, None, None, state)
        np.testing.assert_allclose(state.x_prev, f["traj_corrected"][i], rtol=0, atol=_tolerance(f))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_deis_against_diffusers(order, x64):
    f = _fixtures.load(f"vp_deis{order}")
    assert f["config"]["solver_type"] == "logrho" and not f["config"]["lower_order_final"]
    got = trajectory(S.deis(order, "rho_ab"), _fixture_model(f), jnp.asarray(f["ts"]), jnp.asarray(f["x_T"]))
    np.testing.assert_allclose(got, f["traj"], rtol=0, atol=_tolerance(f))


# --- transformations, dtypes, gradients, ends of the range ----------------------------------------

SAMPLERS = {"unipc": lambda: S.unipc(3), "unipc_bh1": lambda: S.unipc(2, "bh1"), "deis": lambda: S.deis(3),
            "deis_t_ab": lambda: S.deis(3, "t_ab"), "ipndm": lambda: S.ipndm()}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_jit_vmap_and_grids_of_one_length(name, x64):
    model, x_T, sched = _problem()
    sampler = SAMPLERS[name]()
    traces = []

    def run(x, ts):
        traces.append(None)
        return skd.sample(model, sampler, x, ts)

    fn = jax.jit(run)
    ts1, ts2 = skd.time_grid(sched, 8), skd.time_grid(sched, 8, "time_uniform")
    batch = fn(x_T, ts1)
    fn(x_T, ts2)
    assert len(traces) == 1  # a new grid of the same length does not retrace
    single = jax.vmap(lambda x: skd.sample(model, sampler, x, ts1))(x_T)
    np.testing.assert_allclose(single, batch, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_float32(name):
    model, x_T, sched = _problem()
    ts = skd.time_grid(sched, 20)
    x0 = skd.sample(model, SAMPLERS[name](), x_T, ts)
    assert x0.dtype == jnp.float32
    with jax.enable_x64(True):
        model64 = _orders.mixture(jnp.float64).model(skd.VP.linear())
        ref = skd.sample(model64, SAMPLERS[name](), x_T.astype(jnp.float64), ts.astype(jnp.float64))
    np.testing.assert_allclose(x0, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["unipc", "deis", "ipndm"])
def test_gradient_against_finite_differences(name, x64):
    model, x_T, sched = _problem()
    sampler, ts = SAMPLERS[name](), skd.time_grid(sched, 10)
    loss = lambda x: jnp.sum(jnp.sin(skd.sample(model, sampler, x, ts)))
    grad = jax.grad(loss)(x_T)
    v = jax.random.normal(jax.random.key(3), x_T.shape, x_T.dtype)
    eps = 1e-6
    fd = (loss(x_T + eps * v) - loss(x_T - eps * v)) / (2 * eps)
    np.testing.assert_allclose(jnp.vdot(grad, v), fd, rtol=1e-6)



@pytest.mark.parametrize("n", [1, 2, 3])
def test_unrolled_elimination_solves_masked_vandermonde_systems(n, x64):
    """UniPC's systems (Vandermonde in the step ratios, identity beyond the usable history) as
    numpy's pivoted LU solves them."""
    from sdekit.diffusion.samplers._unipc import _eliminate

    rng = np.random.default_rng(n)
    for size in range(1, n + 1):
        for _ in range(50):
            a = np.eye(n)
            nodes = -np.cumsum(rng.uniform(0.2, 3.0, size))  # older points: r_k < 0, distinct
            a[:size, :size] = np.vander(nodes, size, increasing=True).T
            b = rng.normal(size=n)
            np.testing.assert_allclose(_eliminate(jnp.asarray(a), jnp.asarray(b)), np.linalg.solve(a, b), rtol=1e-12)

# Every sampler in float64; float32 for one (the ends' arithmetic is shared).
ENDS = [(n, sch, "float64") for n in SAMPLERS for sch in ("edm", "flow")] + [("unipc", "edm", "float32"),
                                                                          ("unipc", "flow", "float32")]


@pytest.mark.parametrize("name, schedule, dtype_name", ENDS)
def test_ends_of_the_noise_range(name, schedule, dtype_name):
    """EDM to sigma = 0, and Flow from alpha = 0 (lambda = -inf) to sigma = 0: finite samples and
    gradients, near DDIM's on a fine grid."""
    with jax.enable_x64(dtype_name == "float64"):
        _check_ends(name, schedule, jnp.dtype(dtype_name))


def _ends_problem(schedule, dtype):
    sched = skd.EDM() if schedule == "edm" else skd.Flow()
    model = _orders.mixture(dtype).model(sched)
    x_T = _orders.starts(sched, 8).astype(dtype)
    grid = lambda n: (skd.time_grid(sched, n, "karras", zero_end=True) if schedule == "edm"
                      else skd.time_grid(sched, n, "time_uniform"))
    return model, x_T, grid


@functools.cache
def _ddim_fine(schedule, dtype):
    """DDIM on 256 steps: the same for every sampler of a schedule and dtype (computed once)."""
    model, x_T, grid = _ends_problem(schedule, dtype)
    return np.asarray(skd.sample(model, S.ddim(), x_T, grid(256)))


def _check_ends(name, schedule, dtype):
    model, x_T, grid = _ends_problem(schedule, dtype)
    sampler, ts = SAMPLERS[name](), grid(24)

    def loss(x):
        x0 = skd.sample(model, sampler, x, ts)
        return jnp.sum(x0**2), x0

    # The samples and their gradient from one compiled program.
    (_, x0), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(x_T)
    assert bool(jnp.all(jnp.isfinite(x0))) and bool(jnp.all(jnp.isfinite(grad)))
    assert float(jnp.max(jnp.abs(x0 - _ddim_fine(schedule, dtype.name)))) < 0.2


@pytest.mark.parametrize("make", [
    lambda: S.unipc(0), lambda: S.unipc(4), lambda: S.unipc(2, "bh3"), lambda: S.unipc(2, steps=0),
    lambda: S.deis(0), lambda: S.deis(4), lambda: S.deis(2, "logrho"), lambda: S.ipndm(0), lambda: S.ipndm(5),
])
def test_bad_input(make):
    with pytest.raises(ValueError):
        make()
