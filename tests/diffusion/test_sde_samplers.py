"""SDE samplers on the Brownian tree: SDE-DPM-Solver++, Song's predictor-corrector and
`skd.reverse_sde` under sdekit's SDE solvers. Batch-size invariance, step-count consistency
(strong order against the finest sample on one Brownian path), the laws they reach, identities,
evaluation counts and bad input. The step-by-step reference comparisons are in
test_sde_samplers_references.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
import sdekit.diffusion as skd
from sdekit.diffusion._sample import TREE_DEPTH, _tree_tol

from . import _orders

S = skd.samplers


def _gaussian(dtype=None):
    """A correlated single Gaussian: the exact law at every t is known."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return skd.GaussianMixture(jnp.ones(1, dtype), jnp.array([[1.0, -1.0]], dtype),
                               jnp.array([[[0.25, 0.1], [0.1, 0.2]]], dtype))


def _overlapping(dtype=None):
    """Two overlapping components: nonlinear score, but no sample switches modes between resolutions
    (with separated modes a few samples do, and their O(1) jumps swamp a strong-error fit)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return skd.GaussianMixture(jnp.array([0.6, 0.4], dtype), jnp.array([[1.0, -1.0], [0.5, -0.5]], dtype),
                               jnp.array([[[0.3, 0.1], [0.1, 0.2]], [[0.2, 0.0], [0.0, 0.3]]], dtype))


def _tree(ts, shape, levy="increment", seed=3, dtype=jnp.float64):
    """The tree `skd.sample(..., key=jax.random.key(seed))` builds for the grid's span."""
    s = -jnp.asarray(ts)
    return sk.BrownianTree(jax.random.key(seed), s[0], s[-1], shape=shape, dtype=dtype, tol=_tree_tol(s),
                           depth=TREE_DEPTH, levy=levy)


CHUNK = 20  # steps per compiled chunk: every grid of the order tests is a multiple


@functools.partial(jax.jit, static_argnums=0)
def _chunk(sampler, problem, tree, s, x, state):
    def body(carry, i):
        x, state = carry
        inc = tree.increment(s[i], s[i + 1])
        x, _, _, state = sampler.step(problem, s[i], s[i + 1], x, None, inc, state)
        return (x, state), None

    (x, state), _ = jax.lax.scan(body, (x, state), jnp.arange(CHUNK))
    return x, state


def _drive(sampler, problem, grid, x, tree):
    """The sampler's steps in s = -t, `CHUNK` steps per compiled call, so that every grid (a
    multiple of `CHUNK` steps) runs the one compiled program (`sk.solve`'s scan would compile once
    per grid length)."""
    s = -jnp.asarray(grid)
    assert (len(s) - 1) % CHUNK == 0
    state = sampler.init(problem, s[0], x, None)
    for i in range(0, len(s) - 1, CHUNK):
        x, state = _chunk(sampler, problem, tree, s[i : i + CHUNK + 1], x, state)
    return x


# --- batch size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case, dtype", [("2M", "float64"), ("3M", "float64"), ("2S", "float64"), ("2M", "float32"),
                                         ("pc", "float64"), ("pc", "float32"), ("er", "float32")])
def test_batch_size_invariance(case, dtype):
    """The first 8 samples of a batch of 8 and of a batch of 1024 from one key: the same Brownian
    draws (every element's normals depend on its index alone, with or without Lévy areas, in
    both dtypes: tests/brownian/test_noise.py), so the same increments, bitwise for 2M in float64
    on a single Gaussian. Elsewhere XLA's code for a batch of 1024 (vector loops) and of 8 rounds
    some operations differently (the bridge arithmetic, the mixture's denoiser), so increments
    and samples agree to a few ulps. The predictor-corrector (space-time Lévy areas) uses its
    per-sample step size (Song's "batch" rule reads the whole batch by design)."""
    with jax.enable_x64(dtype == "float64"):
        sched = skd.EDM()
        dt = jnp.dtype(dtype)
        model = (_gaussian(dt) if case == "2M" else _orders.mixture(dt)).model(sched)
        ts = skd.time_grid(sched, 12, "karras", zero_end=case != "pc")
        sampler = {"2M": S.dpm_solver_pp_sde(2), "3M": S.dpm_solver_pp_sde(3),
                   "2S": S.dpm_solver_pp_sde(2, method="singlestep"),
                   "pc": S.predictor_corrector(1, step_size="sample"), "er": S.er_sde(3)}[case]
        if case == "2S":
            ts = S.midpoint_grid(sched, ts)
        x_T = sched.prior(jax.random.key(0), (1024, 2)).astype(dt)
        key = jax.random.key(7)
        noise = [_tree(ts, x.shape, sampler.sde.levy_area, seed=7, dtype=dt).grid_increments(-ts) for x in (x_T, x_T[:8])]
        exact = dtype == "float64" and case != "pc"
        ulps = 0.0 if exact else (1e-13 if dtype == "float64" else 2e-5)  # (H: a float32 bridge cancels digits)
        for field in ("W", "H"):
            big, small = getattr(noise[0], field), getattr(noise[1], field)
            if big is not None:
                np.testing.assert_allclose(small, big[:, :8], rtol=ulps, atol=ulps)
        big = skd.sample(model, sampler, x_T, ts, key=key)
        small = skd.sample(model, sampler, x_T[:8], ts, key=key)
        assert big.dtype == dt and bool(jnp.all(jnp.isfinite(big)))
        if case == "2M" and dtype == "float64":
            np.testing.assert_array_equal(noise[1].W, noise[0].W[:, :8])
            np.testing.assert_array_equal(small, big[:8])
        tol = 1e-13 if dtype == "float64" else 2e-5
        np.testing.assert_allclose(small, big[:8], rtol=tol, atol=tol)


# --- step count: strong order on one Brownian path -------------------------------------------------
# The asymptotic range for this problem starts near 40 steps (measured at 20/40/80/160 against 640:
# slopes 1.07-1.25, and 0.78 for 2S whose 20 grid steps are 10 pairs), so the fit is at 40-320 steps
# against 1280; 2S counts pairs (outer steps, as k-diffusion does), each two grid steps.
STEPS = (40, 80, 160, 320)
FINEST = 1280
# Strong order 1 for every SDE-DPM-Solver++ variant and Euler-Maruyama on the reverse SDE's additive
# noise (samplers' module docstring). ShARK (W and the space-time Levy area H): 1.5 on additive
# noise in general, whose leading error term I_(1,1,0) f'' g^2 vanishes for a drift linear in x: on
# the single Gaussian (linear score) its next terms, the parts of I_(1,0,0), I_(0,1,0), I_(0,0,1)
# that W and H do not determine, are O(h^2.5) locally with mean 0, so order 2 (measured 2.0-2.1).
# 2S: order 1, but at 40-320 pairs still short of it (measured 0.85; against a ShARK reference on the
# same path its error ratios per 4x refinement are 3.3 then 3.9): a wider bound, 0.2.
ORDER_CASES = {
    "sde_pp1": (lambda: S.dpm_solver_pp_sde(1), "increment", 1.0, 1.0, 0.15),
    "sde_pp2M": (lambda: S.dpm_solver_pp_sde(2), "increment", 1.0, 1.0, 0.15),
    "sde_pp3M": (lambda: S.dpm_solver_pp_sde(3), "increment", 1.0, 1.0, 0.15),
    "sde_pp2S": (lambda: S.dpm_solver_pp_sde(2, method="singlestep"), "increment", 1.0, 1.0, 0.2),
    "er_sde1": (lambda: S.er_sde(1), "increment", 1.0, 1.0, 0.15),
    "er_sde3": (lambda: S.er_sde(3), "increment", 1.0, 1.0, 0.15),
    "euler_maruyama": (sk.solvers.euler_maruyama, "increment", 1.0, 1.0, 0.15),
    "shark": (sk.solvers.shark, "space-time", 1.5, 2.0, 0.15),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ORDER_CASES))
def test_step_count_consistency(case, x64):
    """Samples at 40/80/160/320 steps from one key converge to the 1280-step sample at the strong order."""
    make, levy, order, expected, bound = ORDER_CASES[case]
    sampler = make()
    sched = skd.VP.linear()
    model = (_gaussian if case == "shark" else _overlapping)(jnp.float64).model(sched)
    problem = skd.reverse_sde(model)
    x_T = _orders.starts(sched, 64)

    def grid(n):
        if case == "sde_pp2S":  # n pairs: 2n grid steps
            return S.midpoint_grid(sched, skd.time_grid(sched, n, "log_snr"))
        return skd.time_grid(sched, n, "log_snr")

    tree = _tree(grid(2), x_T.shape, levy)
    finest = _drive(sampler, problem, grid(FINEST), x_T, tree)
    errs = [float(jnp.sqrt(jnp.mean(jnp.sum((_drive(sampler, problem, grid(n), x_T, tree) - finest) ** 2, -1))))
            for n in STEPS]
    slope = _orders.fitted_order(STEPS, errs)
    assert abs(slope - expected) <= bound, (case, slope, errs)
    assert sampler.sde.strong("additive") == order
    if case == "sde_pp2M":  # skd.sample draws this path from the key
        x = skd.sample(model, sampler, x_T, grid(STEPS[0]), key=jax.random.key(3))
        np.testing.assert_allclose(x, _drive(sampler, problem, grid(STEPS[0]), x_T, tree), rtol=1e-12, atol=1e-12)


# --- reverse_sde under sdekit's SDE solvers --------------------------------------------------------
def _exact_law(gm, sched, t):
    a, s = sched.alpha(t), sched.sigma(t)
    return a * gm.means[0], a**2 * gm.covs[0] + s**2 * jnp.eye(2)


def _check_law(x, mean, cov, bias):
    """Mean and covariance within `bias` plus 4 standard errors (Gaussian samples)."""
    n = x.shape[0]
    se_mean = jnp.sqrt(jnp.diag(cov) / n)
    np.testing.assert_array_less(jnp.abs(jnp.mean(x, 0) - mean), bias + 4 * se_mean)
    se_cov = jnp.sqrt((cov**2 + jnp.outer(jnp.diag(cov), jnp.diag(cov))) / n)
    np.testing.assert_array_less(jnp.abs(jnp.cov(x.T) - cov), bias + 4 * se_cov)


@pytest.mark.slow
def test_reverse_sde_sampled_by_euler_maruyama_and_adaptive_shark(x64):
    """Euler-Maruyama on a fixed grid reaches the exact law (a 10%-off noise scale would miss the
    covariance by ~20 standard errors); ShARK with PID steps (its SRK error estimate) follows the
    same Brownian path as a fine fixed-step ShARK solve, far closer than 20 fixed steps do."""
    sched = skd.VP.linear()
    gm = _gaussian(jnp.float64)
    problem = skd.reverse_sde(gm.model(sched))
    ts = skd.time_grid(sched, 200, "log_snr")
    x_T = sched.prior(jax.random.key(0), (8000, 2))
    tree = _tree(ts, x_T.shape)
    x = sk.solve(problem, sk.solvers.euler_maruyama(), -ts[0], -ts[-1], x_T, controller=sk.StepTo(-ts),
                 brownian=tree).ys[-1]
    _check_law(x, *_exact_law(gm, sched, ts[-1]), bias=0.01)

    x_T = x_T[:64]
    tree = _tree(ts, x_T.shape, "space-time")
    # The fixed-step solves step ShARK on the tree by `_drive`: one compiled chunk for both grids
    # (and the one test_step_count_consistency[shark] compiles), where sk.solve compiles per length.
    fine = _drive(sk.solvers.shark(), problem, ts, x_T, tree)
    coarse = _drive(sk.solvers.shark(), problem, skd.time_grid(sched, 20, "log_snr"), x_T, tree)
    sol = sk.solve(problem, sk.solvers.shark(), -ts[0], -ts[-1], x_T, dt0=0.01, brownian=tree,
                   controller=sk.PID(rtol=1e-3, atol=1e-3), max_steps=4096)
    adaptive_err, coarse_err = (float(jnp.max(jnp.abs(x - fine))) for x in (sol.ys[-1], coarse))
    steps = int(sol.stats["num_accepted_steps"])
    assert adaptive_err < 0.2 * coarse_err and steps < 1000, (adaptive_err, coarse_err, steps)
    assert int(sol.stats["num_rejected_steps"]) > 0


def test_reverse_sde_eta():
    """eta = 0 is the probability-flow ODE (drift = -dx/dt in s = -t, no diffusion); eta scales the noise
    and takes (1 + eta^2)/2 of the score term."""
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    x = _orders.starts(sched, 4, t=0.5)
    t = 0.5
    ode = skd.reverse_sde(model, eta=0.0)
    np.testing.assert_allclose(ode.drift(-t, x, None), -model.velocity(x, t, None), rtol=2e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(ode.diffusion(-t, x, None)))) == 0.0
    g = jnp.sqrt(sched.diffusion_squared(jnp.asarray(t)))
    np.testing.assert_allclose(skd.reverse_sde(model, eta=0.5).diffusion(-t, x, None), 0.5 * g * jnp.ones_like(x),
                               rtol=1e-6)
    f, g2 = sched.drift_coefficient(jnp.asarray(t)), g**2
    np.testing.assert_allclose(skd.reverse_sde(model, eta=0.5).drift(-t, x, None),
                               0.625 * g2 * model.score(x, t, None) - f * x, rtol=1e-5)


# --- predictor-corrector ---------------------------------------------------------------------------
@pytest.mark.slow
def test_predictor_corrector_reaches_the_law(x64):
    """Song's PC on VP at 100 steps: the Langevin corrector removes most of the predictor's bias in
    the covariance (measured: predictor alone +0.02 on the variances, 5 standard errors of 8000
    samples; with the corrector within 2). Through `skd.sample`, whose tree carries the Lévy areas."""
    sched = skd.VP.linear()
    gm = _gaussian(jnp.float64)
    model = gm.model(sched)
    ts = skd.time_grid(sched, 100, "log_snr")
    x_T = sched.prior(jax.random.key(0), (8000, 2))
    mean, cov = _exact_law(gm, sched, ts[-1])
    run = lambda k, mode: skd.sample(model, S.predictor_corrector(k, snr=0.16, step_size=mode), x_T, ts,
                                     key=jax.random.key(1))
    predictor_only = run(0, "batch")
    bias = float(jnp.mean(jnp.diag(jnp.cov(predictor_only.T)) - jnp.diag(cov)))
    assert bias > 0.012, bias
    _check_law(run(1, "batch"), mean, cov, bias=0.004)


def test_eta_zero_is_dpm_solver_pp(x64):
    """With eta = 0 the SDE updates are DPM-Solver++'s ODE updates (2M midpoint and heun, 3M exact)."""
    sched = skd.EDM()
    model = _orders.mixture().model(sched)
    x_T = _orders.starts(sched, 8)
    ts = skd.time_grid(sched, 10, "karras", zero_end=True)
    key = jax.random.key(0)
    for order, solver_type in [(2, "midpoint"), (2, "heun"), (3, None)]:
        ode = skd.sample(model, S.dpm_solver_pp(order, solver_type=solver_type), x_T, ts)
        sde = skd.sample(model, S.dpm_solver_pp_sde(order, eta=0.0, solver_type=solver_type), x_T, ts, key=key)
        np.testing.assert_allclose(sde, ode, rtol=1e-12, atol=1e-12)


def test_evaluation_counts(x64):
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    ts = skd.time_grid(sched, 6)
    x_T = _orders.starts(sched, 4)
    for sampler, grid, nfe in [(S.dpm_solver_pp_sde(3), ts, 6), (S.dpm_solver_pp_sde(2, method="singlestep"),
                                                                 S.midpoint_grid(sched, ts), 12),
                               (S.predictor_corrector(2), ts, 18), (S.er_sde(3), ts, 6)]:
        tree = _tree(grid, x_T.shape, sampler.sde.levy_area)
        sol = sk.solve(skd.reverse_sde(model), sampler, -grid[0], -grid[-1], x_T, controller=sk.StepTo(-grid),
                       brownian=tree)
        assert int(sol.stats["num_fevals"]) == nfe, sampler.name


def test_midpoint_grid():
    edm = skd.EDM()
    ts = skd.time_grid(edm, 5, "karras", zero_end=True)
    mid = S.midpoint_grid(edm, ts)
    assert mid.shape == (10,)
    np.testing.assert_allclose(mid[1:-2:2], jnp.sqrt(ts[:-2] * ts[1:-1]), rtol=1e-5)
    np.testing.assert_array_equal(mid[0:-1:2], ts[:-1])
    vp = skd.VP.linear()
    ts = skd.time_grid(vp, 4)
    mid = S.midpoint_grid(vp, ts, r=0.25)
    lam = vp.log_snr(mid)
    np.testing.assert_allclose(lam[1::2], lam[0:-1:2] + 0.25 * (lam[2::2] - lam[0:-1:2]), rtol=1e-4)
    assert S.midpoint_grid(vp, jax.jit(lambda t: t)(ts), zero_end=False).shape == (9,)


def test_bad_input():
    sched = skd.VP.linear()
    model = _orders.mixture().model(sched)
    ts = skd.time_grid(sched, 5)
    x_T = jnp.zeros((2, 2))
    for kwargs, match in [({"order": 4}, "order must be"), ({"order": 3, "method": "singlestep"}, "singlestep"),
                          ({"eta": -1.0}, "eta must"), ({"solver_type": "rk4"}, "solver_type"),
                          ({"method": "adaptive"}, "method must"), ({"third_order": "x"}, "third_order"),
                          ({"s_noise": -1.0}, "s_noise")]:
        with pytest.raises(ValueError, match=match):
            S.dpm_solver_pp_sde(**kwargs)
    for kwargs, match in [({"corrector_steps": 3}, "0, 1 or 2"), ({"snr": 0.0}, "snr"), ({"step_size": "x"}, "step_size")]:
        with pytest.raises(ValueError, match=match):
            S.predictor_corrector(**kwargs)
    with pytest.raises(ValueError, match="r must lie"):
        S.midpoint_grid(sched, ts, r=1.0)
    with pytest.raises(ValueError, match="zero_end"):
        jax.jit(lambda t: S.midpoint_grid(sched, t))(ts)
    with pytest.raises(ValueError, match="eta >= 0"):
        skd.reverse_sde(model, eta=-0.5)
    with pytest.raises(ValueError, match="pass key="):
        skd.sample(model, S.dpm_solver_pp_sde(2), x_T, ts)
    tree = _tree(ts, x_T.shape, dtype=jnp.float32)
    with pytest.raises(TypeError, match="solves skd.reverse_sde"):
        sk.solve(sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.ones_like(y), noise="additive"),
                 S.dpm_solver_pp_sde(2), -ts[0], -ts[-1], x_T, controller=sk.StepTo(-ts), brownian=tree)
    with pytest.raises(ValueError, match="space-time"):  # the corrector's normals are the tree's Levy areas
        sk.solve(skd.reverse_sde(model), S.predictor_corrector(1), -ts[0], -ts[-1], x_T, controller=sk.StepTo(-ts),
                 brownian=tree)
