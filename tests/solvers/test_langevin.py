"""Underdamped Langevin: `sk.UnderdampedLangevin` and the methods ALIGN, ShOULD and QUICSORT.

Strong orders against the exact solution of a quadratic potential on the same Brownian paths,
stationary moments on a non-quadratic potential against quadrature, agreement with diffrax's
implementations fed the same increments, the conformance checks of `test_conformance.py` on a
Langevin problem, and bad input."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax import lax

import sdekit as sk

LANGEVIN = ["align", "should", "quicsort"]
ORDERS = {"align": 2.0, "should": 3.0, "quicsort": 3.0}
LEVY = {"align": "space-time", "should": "space-time-time", "quicsort": "space-time-time"}

# The harmonic oscillator of the single-seed paper's strong-order notebook: f = |x|^2.
GAMMA, U = (2.0, 0.5), (0.5, 2.0)


def _oscillator():
    return sk.UnderdampedLangevin(lambda x, a: 2.0 * x, gamma=jnp.array(GAMMA), u=jnp.array(U))


# --------------------------------------------------------------------------- conformance


def test_init_step_in_user_scan_jit_vmap():
    """The checks of test_conformance.py on a Langevin problem, the three methods in one program."""
    problem = sk.UnderdampedLangevin(lambda x, k: k * x, gamma=1.0, u=1.0)
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time-time")
    grid = jnp.linspace(0.0, 1.0, 33)
    incs = tree.grid_increments(grid)
    y0 = (jnp.ones(3), jnp.zeros(3))

    def scan_solve(solver, k):
        state = solver.init(problem, grid[0], y0, k)

        def body(carry, x):
            y, state = carry
            y1, err, _, new_state = solver.step(problem, x[0], x[1], y, k, x[2], state)
            assert jax.tree.structure(new_state) == jax.tree.structure(state)
            for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
                assert a.shape == b.shape and a.dtype == b.dtype
            assert (err is None) == (solver.sde.error("langevin") is None)
            return (y1, new_state), None

        (y, _), _ = lax.scan(body, (y0, state), (grid[:-1], grid[1:], incs))
        return y

    solvers = [getattr(sk.solvers, name)() for name in LANGEVIN]
    batched = jax.jit(jax.vmap(lambda k: [scan_solve(s, k) for s in solvers]))(jnp.array([0.5, 1.0]))
    for name, solver, ys in zip(LANGEVIN, solvers, batched):
        assert all(leaf.shape == (2, 3) and np.all(np.isfinite(leaf)) for leaf in ys)
        sol = sk.solve(problem, solver, 0.0, 1.0, y0, jnp.asarray(1.0), controller=sk.StepTo(grid), brownian=tree)
        for ours, theirs in zip(sol.ys, ys):
            np.testing.assert_allclose(ours[-1], theirs[1], rtol=1e-5, atol=1e-6)
        per_step = {"align": 1, "should": 2, "quicsort": 2}[name]
        assert int(sol.stats["num_fevals"]) == solver.init_fevals + 32 * per_step
        assert solver.fevals_per_step == per_step


def test_solvers_are_equal_across_calls_and_pytree_positions_work():
    assert sk.solvers.quicsort() is sk.solvers.quicsort() and sk.solvers.align() == sk.solvers.align()
    problem = sk.UnderdampedLangevin(lambda x, a: {"a": x["a"], "b": 3.0 * x["b"]}, gamma={"a": 1.0, "b": 2.0}, u=1.0)
    shape = {"a": jax.ShapeDtypeStruct((2,), jnp.float32), "b": jax.ShapeDtypeStruct((), jnp.float32)}
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=shape, tol=2**-8, levy="space-time-time")
    y0 = ({"a": jnp.ones(2), "b": jnp.ones(())}, {"a": jnp.zeros(2), "b": jnp.zeros(())})
    sol = sk.solve(problem, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.125, brownian=tree)
    # The "b" leaf is the 1-D problem driven by the tree's "b" leaf.
    one, solver = sk.UnderdampedLangevin(lambda x, a: 3.0 * x, gamma=2.0, u=1.0), sk.solvers.quicsort()
    incs = tree.grid_increments(jnp.linspace(0.0, 1.0, 9))
    step = jax.jit(lambda t, y, inc: solver.step(one, t, t + 0.125, y, None, inc, solver.init(one, t, y, None))[0])
    y = (jnp.ones(()), jnp.zeros(()))
    for i in range(8):
        y = step(i / 8, y, sk.Increment(incs.dt[i], incs.W["b"][i], incs.H["b"][i], incs.K["b"][i]))
    np.testing.assert_allclose(sol.ys[0]["b"][-1], y[0], rtol=1e-5)


# --------------------------------------------------------------------------- diffrax


class _OurTree(diffrax.AbstractBrownianPath):
    """diffrax's view of an sdekit tree: the same W, H, K (both use the normalised H and K)."""

    tree: object
    t0: float
    t1: float
    levy_area: type = eqx.field(static=True, default=diffrax.SpaceTimeTimeLevyArea)

    @property
    def shape(self):
        return jax.ShapeDtypeStruct(self.tree.shape, self.tree.dtype)

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        inc = self.tree.increment(t0, t1)
        if use_levy:
            return diffrax.SpaceTimeTimeLevyArea(dt=inc.dt, W=inc.W, H=inc.H, K=inc.K)
        return inc.W


def test_agrees_with_diffrax_on_the_same_increments(x64):
    """Step by step (eagerly: no compilation) against diffrax's ALIGN, ShOULD and QUICSORT, whose
    Brownian path is our tree: equal to 1e-9 (our coefficients sum 16 terms of their series, diffrax 6), so the coefficients and the H, K
    conventions agree."""
    gamma, u = jnp.array(GAMMA), jnp.array(U)
    grad_f = lambda x, a: jnp.array([2.0, 1.0]) * x + 0.3 * jnp.sin(x)  # noqa: E731
    problem = sk.UnderdampedLangevin(grad_f, gamma=gamma, u=u)
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(2,), tol=2**-10, levy="space-time-time")
    terms = diffrax.MultiTerm(diffrax.UnderdampedLangevinDriftTerm(gamma, u, grad_f),
                              diffrax.UnderdampedLangevinDiffusionTerm(gamma, u, _OurTree(tree, 0.0, 1.0)))
    y0 = (jnp.array([1.0, -0.5]), jnp.array([0.3, 0.2]))
    ts = [0.0, 0.1, 0.25, 0.5]  # unequal steps: the coefficients are recomputed
    for name, theirs in (("align", diffrax.ALIGN), ("should", diffrax.ShOULD), ("quicsort", diffrax.QUICSORT)):
        ours, theirs = getattr(sk.solvers, name)(), theirs(0.01)
        y_ours = y_theirs = y0
        state_ours = ours.init(problem, ts[0], y0, None)
        state_theirs = theirs.init(terms, ts[0], ts[1], y0, None)
        for t, tn in zip(ts[:-1], ts[1:]):
            y_ours, _, _, state_ours = ours.step(problem, t, tn, y_ours, None, tree.increment(t, tn), state_ours)
            y_theirs, _, _, state_theirs, _ = theirs.step(terms, t, tn, y_theirs, None, state_theirs, False)
        for a, b in zip(y_ours, y_theirs):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)  # series vs Taylor coefficients


def test_general_additive_solvers_solve_it_as_an_sde(x64):
    """It is an additive-noise SDE: ShARK (strong 1.5) on fine steps meets QUICSORT on the same path."""
    problem = _oscillator()
    tree = sk.BrownianTree(jax.random.key(4), 0.0, 1.0, shape=(2,), tol=2**-12, levy="space-time-time")
    y0 = (jnp.array([1.0, -0.5]), jnp.array([0.3, 0.2]))
    fine = sk.solve(problem, sk.solvers.shark(), 0.0, 1.0, y0, dt0=2**-10, brownian=tree)
    ref = sk.solve(problem, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=2**-6, brownian=tree)
    for a, b in zip(fine.ys, ref.ys):
        np.testing.assert_allclose(a, b, atol=2e-5)


# --------------------------------------------------------------------------- strong order


def _coarsen(inc, d):
    """Increments over pairs of adjacent steps of size d, by Chen's relation (exact)."""
    def pairs(a):
        return a[0::2], a[1::2]

    (w1, w2), (h1, h2), (k1, k2) = pairs(inc.W), pairs(inc.H), pairs(inc.K)
    hbar1, hbar2 = d * h1, d * h2
    w = w1 + w2
    hbar = hbar1 + hbar2 + (d / 2) * (w1 - w2)
    kbar = d**2 * (k1 + k2) + (d / 2) * (hbar1 - hbar2)
    return sk.Increment(2 * inc.dt[0::2], w, hbar / (2 * d), kbar / (2 * d) ** 2)


def _oscillator_maps(d):
    """Per component: e^{Md} and the vectors M^k sigma / k! (k = 0, 1, 2)."""
    maps, noise = [], []
    for g, u in zip(GAMMA, U):
        m = np.array([[0.0, 1.0], [-2.0 * u, -g]])
        sigma = np.array([0.0, np.sqrt(2 * g * u)])
        maps.append(scipy.linalg.expm(m * d))
        noise.append(np.stack([sigma, m @ sigma, m @ m @ sigma / 2]))
    return jnp.asarray(np.stack(maps)), jnp.asarray(np.stack(noise))  # (2, 2, 2), (2, 3, 2)


def _scan_steps(problem, solver, y0, ts, inc):
    """The solver's steps over the grid `ts` with the stacked increments `inc`, in a user's own
    `lax.scan` (the pure init/step protocol); the final state."""

    def body(carry, x):
        y, state = carry
        y1, _, _, state = solver.step(problem, x[0], x[1], y, None, x[2], state)
        return (y1, state), None

    (y, _), _ = lax.scan(body, (y0, solver.init(problem, 0.0, y0, None)), (ts[:-1], ts[1:], inc))
    return y


@pytest.mark.slow
def test_strong_orders_on_a_quadratic_potential(x64):
    """RMS over 64 paths of |(x, v)(1) - exact| for h = 1/4 ... 1/64; fitted slopes within 0.2 of
    2 (ALIGN) and 3 (ShOULD, QUICSORT). The exact solution on each tree: per step d = 2^-10 the
    linear map e^{Md} plus sum_k M^k sigma / k! int (d - s)^k dW_s for k <= 2, exact in W, H, K
    (W, d (W/2 + H), d^2 (W/3 + H + 2K)); the rest is O(d^3), below 1e-8. The coarse steps'
    increments are the fine ones joined by Chen's relation (the tree's own coarse increments to
    rounding), so one program does everything."""
    n_fine, levels = 2**10, [2, 3, 4, 5, 6]
    d = 1.0 / n_fine
    maps, noise = _oscillator_maps(d)
    y0 = (jnp.array([1.0, -0.5]), jnp.array([0.3, 0.2]))
    problem, solvers = _oscillator(), [getattr(sk.solvers, name)() for name in LANGEVIN]

    def errors(key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=d, levy="space-time-time")
        inc = tree.grid_increments(jnp.linspace(0.0, 1.0, n_fine + 1))

        def exact_step(z, i):
            j = jnp.stack([i.W, d * (i.W / 2 + i.H), d**2 * (i.W / 3 + i.H + 2 * i.K)], -1)
            return jnp.einsum("cij,cj->ci", maps, z) + jnp.einsum("ckj,ck->cj", noise, j), None

        exact, _ = lax.scan(exact_step, jnp.stack(y0, -1), inc)
        out, level = [], 10
        for target in sorted(levels, reverse=True):
            while level > target:
                inc, level = _coarsen(inc, 2.0**-level), level - 1
            ts = jnp.linspace(0.0, 1.0, 2**target + 1)
            for solver in solvers:
                y = _scan_steps(problem, solver, y0, ts, inc)
                out.append(jnp.sum((jnp.stack(y, -1) - exact) ** 2))
        return jnp.stack(out).reshape(len(levels), len(solvers))

    squared = jax.jit(jax.vmap(errors))(jax.random.split(jax.random.key(5), 64))
    rms = np.sqrt(np.mean(np.asarray(squared), axis=0))  # (levels, solvers), finest first
    steps = 2.0 ** -np.array(sorted(levels, reverse=True), float)
    for i, name in enumerate(LANGEVIN):
        slope = np.polyfit(np.log(steps), np.log(rms[:, i]), 1)[0]
        assert abs(slope - ORDERS[name]) < 0.2, (name, slope, rms[:, i])


# --------------------------------------------------------------------------- weak behaviour

# A tilted double well, f(x) = x^4/4 - x^2/2 + x/4: asymmetric, so the mean is not zero.
def _grad_well(x, args):
    return x**3 - x + 0.25


def _well_moments():
    x = np.linspace(-6.0, 6.0, 200001)
    w = np.exp(-(x**4 / 4 - x**2 / 2 + x / 4))
    w /= np.trapezoid(w, x)
    return np.trapezoid(x * w, x), np.trapezoid(x**2 * w, x)


@pytest.mark.slow
def test_stationary_moments_on_a_double_well():
    """4096 independent chains to T = 24 with h = 1/8 (gamma = 1.5, u = 2), one program for the
    three methods: the end positions' mean and second moment within 4 standard errors of the
    target's (quadrature). A wrong sqrt(2) in the noise (target e^{-2f}) moves the second moment
    by about 30 standard errors."""
    problem, n, h = sk.UnderdampedLangevin(_grad_well, gamma=1.5, u=2.0), 4096, 0.125
    solvers = [getattr(sk.solvers, name)() for name in LANGEVIN]
    ts = jnp.linspace(0.0, 24.0, 193)

    def chain(key):
        tree = sk.BrownianTree(key, 0.0, 24.0, shape=(), tol=h / 2, levy="space-time-time")
        inc = tree.grid_increments(ts)
        y0 = (jnp.zeros(()), jnp.zeros(()))
        ends = []
        for solver in solvers:
            ends.append(_scan_steps(problem, solver, y0, ts, inc)[0])
        return jnp.stack(ends)

    x = np.asarray(jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(6), n)), np.float64)
    mean, second = _well_moments()
    for name, xs in zip(LANGEVIN, x.T):
        assert abs(xs.mean() - mean) < 4 * xs.std() / np.sqrt(n), name
        assert abs((xs**2).mean() - second) < 4 * (xs**2).std() / np.sqrt(n), name


# --------------------------------------------------------------------------- adaptive


def test_align_steps_adaptively_and_converges(x64):
    problem = sk.UnderdampedLangevin(_grad_well, gamma=1.0, u=1.0)
    tree = sk.BrownianTree(jax.random.key(7), 0.0, 4.0, shape=(3,), tol=2**-14, levy="space-time-time")
    y0 = (jnp.array([1.0, -1.0, 0.0]), jnp.zeros(3))
    ref = sk.solve(problem, sk.solvers.quicsort(), 0.0, 4.0, y0, dt0=2**-9, brownian=tree, max_steps=4096)
    errors, steps = [], []
    for atol in (1e-3, 1e-4, 1e-5):
        sol = sk.solve(problem, sk.solvers.align(), 0.0, 4.0, y0, dt0=0.1, brownian=tree, max_steps=4096,
                       controller=sk.PID(rtol=0.0, atol=atol, pcoeff=0.1, icoeff=0.4))
        errors.append(float(jnp.max(jnp.abs(sol.ys[0][-1] - ref.ys[0][-1]))))
        steps.append(int(sol.stats["num_accepted_steps"]))
        assert int(sol.stats["num_fevals"]) == 1 + int(sol.stats["num_steps"])  # FSAL: one gradient a step
    assert steps[0] < steps[1] < steps[2] and errors[2] < errors[1] < errors[0], (steps, errors)


def test_half_step_joins_halves_exactly_and_makes_quicsort_adaptive(x64):
    """Chen's join of the two halves equals the tree's own increment; step doubling gives QUICSORT
    an error estimate: tighter tolerances take more steps and land closer to a fine reference,
    with 3 x 2 gradients a step, and constant half steps equal two plain QUICSORT steps."""
    tree = sk.BrownianTree(jax.random.key(9), 0.0, 4.0, shape=(3,), tol=2**-14, levy="space-time-time")
    joined = sk.solvers._half_step.join(tree.increment(0.5, 0.8), tree.increment(0.8, 1.25))
    for a, b in zip(joined[:4], tree.increment(0.5, 1.25)[:4]):  # dt, W, H, K
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    problem = sk.UnderdampedLangevin(_grad_well, gamma=1.0, u=1.0)
    y0 = (jnp.array([1.0, -1.0, 0.0]), jnp.zeros(3))
    halved = sk.solvers.half_step(sk.solvers.quicsort())
    plain = sk.solve(problem, sk.solvers.quicsort(), 0.0, 4.0, y0, dt0=2**-4, brownian=tree)
    doubled = sk.solve(problem, halved, 0.0, 4.0, y0, dt0=2**-3, brownian=tree)
    np.testing.assert_allclose(doubled.ys[0], plain.ys[0], rtol=1e-10)
    ref = sk.solve(problem, sk.solvers.quicsort(), 0.0, 4.0, y0, dt0=2**-9, brownian=tree, max_steps=4096)
    errors, steps = [], []
    for atol in (1e-2, 1e-4, 1e-6):
        sol = sk.solve(problem, halved, 0.0, 4.0, y0, dt0=0.1, brownian=tree, max_steps=4096,
                       controller=sk.PID(rtol=0.0, atol=atol, pcoeff=0.1, icoeff=0.4, dtmin=2**-12))
        errors.append(float(jnp.max(jnp.abs(sol.ys[0][-1] - ref.ys[0][-1]))))
        steps.append(int(sol.stats["num_accepted_steps"]))
        assert int(sol.stats["num_fevals"]) == 6 * int(sol.stats["num_steps"])
    assert steps[0] < steps[1] < steps[2] and errors[2] < errors[1] < errors[0], (steps, errors)


def test_gradient_through_a_closed_over_parameter(x64):
    """grad_f closing over a traced value is closure-converted: reverse mode matches finite differences."""
    tree = sk.BrownianTree(jax.random.key(8), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time-time")
    y0 = (jnp.array([1.0, -0.5]), jnp.zeros(2))

    def end(k):
        problem = sk.UnderdampedLangevin(lambda x, a: k * x**3, gamma=1.0, u=1.0)
        sol = sk.solve(problem, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.125, brownian=tree)
        return jnp.sum(sol.ys[0][-1] ** 2)

    eps, k = 1e-6, jnp.asarray(0.7)
    value_and_grad = jax.jit(jax.value_and_grad(end))  # under jit, grad_f closes over a tracer
    fd = (value_and_grad(k + eps)[0] - value_and_grad(k - eps)[0]) / (2 * eps)
    np.testing.assert_allclose(value_and_grad(k)[1], fd, rtol=1e-6)


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    uld, y0 = _oscillator(), (jnp.ones(2), jnp.zeros(2))
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time-time")
    plain = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.ones_like(y), noise="additive")
    with pytest.raises(ValueError, match="underdamped Langevin method"):
        sk.solve(plain, sk.solvers.quicsort(), 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    with pytest.raises(ValueError, match="sk.UnderdampedLangevin"):
        sk.solvers.align().init(plain, 0.0, jnp.ones(2), None)
    poorer = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time")
    with pytest.raises(ValueError, match="space-time-time"):
        sk.solve(uld, sk.solvers.should(), 0.0, 1.0, y0, dt0=0.1, brownian=poorer)
    with pytest.raises(ValueError, match="no embedded error estimate.*align"):
        sk.solve(uld, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.1, brownian=tree, controller=sk.PID(0.0, 1e-3))
    bad_gamma = sk.UnderdampedLangevin(lambda x, a: x, gamma=jnp.ones(3), u=1.0)
    with pytest.raises(ValueError, match="gamma of shape \\(3,\\) does not broadcast"):
        sk.solve(bad_gamma, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.1, brownian=tree)
    with pytest.raises(ValueError, match="pair \\(x0, v0\\)"):
        sk.solve(uld, sk.solvers.quicsort(), 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    wrong_shape = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8, levy="space-time-time")
    with pytest.raises(ValueError, match="tree's shape must be the position's"):
        sk.solve(uld, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.1, brownian=wrong_shape)
    with pytest.raises(ValueError, match="grad_f"):
        sk.solve(sk.UnderdampedLangevin(lambda x, a: x[:1]), sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.1,
                 brownian=tree)
    pytree = (({"a": jnp.ones(2)}, {"a": jnp.zeros(2)}))
    dict_tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape={"a": jax.ShapeDtypeStruct((2,), jnp.float32)},
                                tol=2**-8, levy="space-time")
    with pytest.raises(ValueError, match="single array"):
        sk.solve(sk.UnderdampedLangevin(lambda x, a: x), sk.solvers.shark(), 0.0, 1.0, pytree, dt0=0.1,
                 brownian=dict_tree)
