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


@pytest.mark.parametrize("name", LANGEVIN)
def test_init_step_in_user_scan_jit_vmap(name):
    solver = getattr(sk.solvers, name)()
    problem = sk.UnderdampedLangevin(lambda x, k: k * x, gamma=1.0, u=1.0)
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8, levy=LEVY[name])
    grid = jnp.linspace(0.0, 1.0, 33)
    incs = tree.grid_increments(grid)
    y0 = (jnp.ones(3), jnp.zeros(3))

    def scan_solve(k):
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

    batched = jax.jit(jax.vmap(scan_solve))(jnp.array([0.5, 1.0]))
    assert all(leaf.shape == (2, 3) and np.all(np.isfinite(leaf)) for leaf in batched)
    sol = sk.solve(problem, solver, 0.0, 1.0, y0, jnp.asarray(1.0), controller=sk.StepTo(grid), brownian=tree)
    for ours, theirs in zip(sol.ys, batched):
        np.testing.assert_allclose(ours[-1], theirs[1], rtol=1e-5, atol=1e-6)
    per_step = {"align": 1, "should": 2, "quicsort": 2}[name]
    assert int(sol.stats["num_fevals"]) == solver.init_fevals + 32 * per_step == solver.init_fevals + 32 * solver.fevals_per_step


def test_solvers_are_equal_across_calls_and_pytree_positions_work():
    assert sk.solvers.quicsort() is sk.solvers.quicsort() and sk.solvers.align() == sk.solvers.align()
    problem = sk.UnderdampedLangevin(lambda x, a: {"a": x["a"], "b": 3.0 * x["b"]}, gamma={"a": 1.0, "b": 2.0}, u=1.0)
    shape = {"a": jax.ShapeDtypeStruct((2,), jnp.float32), "b": jax.ShapeDtypeStruct((), jnp.float32)}
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=shape, tol=2**-8, levy="space-time-time")
    y0 = ({"a": jnp.ones(2), "b": jnp.ones(())}, {"a": jnp.zeros(2), "b": jnp.zeros(())})
    sol = sk.solve(problem, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.125, brownian=tree)
    # The same as the two components solved apart (the Brownian leaves are the tree's leaves).
    one = sk.UnderdampedLangevin(lambda x, a: 3.0 * x, gamma=2.0, u=1.0)
    incs = tree.grid_increments(jnp.linspace(0.0, 1.0, 9))
    y, solver = (jnp.ones(()), jnp.zeros(())), sk.solvers.quicsort()
    for i in range(8):
        inc = sk.Increment(incs.dt[i], incs.W["b"][i], incs.H["b"][i], incs.K["b"][i])
        y, _, _, _ = solver.step(one, i / 8, (i + 1) / 8, y, None, inc, solver.init(one, 0.0, y, None))
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


@pytest.mark.parametrize("name", LANGEVIN)
def test_agrees_with_diffrax_on_the_same_increments(name, x64):
    gamma, u = jnp.array(GAMMA), jnp.array(U)
    grad_f = lambda x, a: jnp.array([2.0, 1.0]) * x + 0.3 * jnp.sin(x)  # noqa: E731
    problem = sk.UnderdampedLangevin(grad_f, gamma=gamma, u=u)
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 2.0, shape=(2,), tol=2**-10, levy="space-time-time")
    y0 = (jnp.array([1.0, -0.5]), jnp.array([0.3, 0.2]))
    ours = sk.solve(problem, getattr(sk.solvers, name)(), 0.0, 2.0, y0, dt0=0.1, brownian=tree)
    terms = diffrax.MultiTerm(diffrax.UnderdampedLangevinDriftTerm(gamma, u, grad_f),
                              diffrax.UnderdampedLangevinDiffusionTerm(gamma, u, _OurTree(tree, 0.0, 2.0)))
    solver = {"align": diffrax.ALIGN, "should": diffrax.ShOULD, "quicsort": diffrax.QUICSORT}[name](0.01)
    theirs = diffrax.diffeqsolve(terms, solver, 0.0, 2.0, 0.1, y0, max_steps=64)
    for a, b in zip(ours.ys, theirs.ys):
        np.testing.assert_allclose(a[-1], b[-1], rtol=1e-10, atol=1e-12)


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


def _exact_on_tree(keys, ts_fine, y0):
    """The oscillator's solution on each key's tree: per fine step of size d the exact linear map
    e^{Md} of (x, v) plus sum_k M^k sigma / k! * int (d - s)^k dW_s for k <= 2, which are exact in
    W, H, K (d (W/2 + H) and d^2 (W/3 + H + 2K)); the rest is O(d^3) globally."""
    d = float(ts_fine[1] - ts_fine[0])
    maps, noise = [], []
    for g, u in zip(GAMMA, U):
        m = np.array([[0.0, 1.0], [-2.0 * u, -g]])
        sigma = np.array([0.0, np.sqrt(2 * g * u)])
        maps.append(scipy.linalg.expm(m * d))
        noise.append(np.stack([sigma, m @ sigma, m @ m @ sigma / 2]))
    maps, noise = jnp.asarray(np.stack(maps)), jnp.asarray(np.stack(noise))  # (2, 2, 2), (2, 3, 2)

    def one(key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-10, levy="space-time-time")
        incs = tree.grid_increments(ts_fine)

        def body(z, inc):  # z: (component, [x, v])
            j = jnp.stack([inc.W, d * (inc.W / 2 + inc.H), d**2 * (inc.W / 3 + inc.H + 2 * inc.K)], -1)
            return jnp.einsum("cij,cj->ci", maps, z) + jnp.einsum("ckj,ck->cj", noise, j), None

        z, _ = lax.scan(body, jnp.stack(y0, -1), incs)
        return z

    return jax.jit(jax.vmap(one))(keys)


@pytest.mark.slow
def test_strong_orders_on_a_quadratic_potential(x64):
    keys = jax.random.split(jax.random.key(5), 64)
    y0 = (jnp.array([1.0, -0.5]), jnp.array([0.3, 0.2]))
    exact = _exact_on_tree(keys, jnp.linspace(0.0, 1.0, 2**10 + 1), y0)
    steps = 2.0 ** -np.arange(2, 7)  # h = 1/4 ... 1/64, all >= 16 x the reference step
    problem = _oscillator()
    slopes = {}
    for name in LANGEVIN:
        solver = getattr(sk.solvers, name)()
        errors = []
        for h in steps:
            @jax.jit
            @jax.vmap
            def coarse(key, h=h):
                tree = sk.BrownianTree(key, 0.0, 1.0, shape=(2,), tol=2**-10, levy="space-time-time")
                sol = sk.solve(problem, solver, 0.0, 1.0, y0, controller=sk.StepTo(jnp.linspace(0.0, 1.0, round(1 / h) + 1)),
                               brownian=tree)
                return jnp.stack([sol.ys[0][-1], sol.ys[1][-1]], -1)

            errors.append(float(jnp.sqrt(jnp.mean(jnp.sum((coarse(keys) - exact) ** 2, axis=(1, 2))))))
        slopes[name] = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    for name, slope in slopes.items():
        assert abs(slope - ORDERS[name]) < 0.2, (name, slopes)


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
@pytest.mark.parametrize("name, h", [("align", 0.1), ("should", 0.25), ("quicsort", 0.25)])
def test_stationary_moments_on_a_double_well(name, h):
    """4096 independent chains to T = 24 (gamma = 1.5, u = 2): their end positions' mean and second
    moment within 4 standard errors of the target's (quadrature). A wrong sqrt(2) in the noise
    (target e^{-2f}) moves the second moment by about 30 standard errors."""
    problem = sk.UnderdampedLangevin(_grad_well, gamma=1.5, u=2.0)
    solver, n = getattr(sk.solvers, name)(), 4096

    @jax.jit
    @jax.vmap
    def chain(key):
        tree = sk.BrownianTree(key, 0.0, 24.0, shape=(), tol=h / 2, levy=LEVY[name])
        sol = sk.solve(problem, solver, 0.0, 24.0, (jnp.zeros(()), jnp.zeros(())), dt0=h, brownian=tree,
                       max_steps=512)
        return sol.ys[0][-1]

    x = np.asarray(chain(jax.random.split(jax.random.key(6), n)), np.float64)
    mean, second = _well_moments()
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(n)
    assert abs((x**2).mean() - second) < 4 * (x**2).std() / np.sqrt(n)


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


def test_gradient_through_a_closed_over_parameter(x64):
    """grad_f closing over a traced value is closure-converted: reverse mode matches finite differences."""
    tree = sk.BrownianTree(jax.random.key(8), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time-time")
    y0 = (jnp.array([1.0, -0.5]), jnp.zeros(2))

    def end(k):
        problem = sk.UnderdampedLangevin(lambda x, a: k * x**3, gamma=1.0, u=1.0)
        sol = sk.solve(problem, sk.solvers.quicsort(), 0.0, 1.0, y0, dt0=0.125, brownian=tree)
        return jnp.sum(sol.ys[0][-1] ** 2)

    eps = 1e-6
    fd = (end(0.7 + eps) - end(0.7 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(end)(0.7), fd, rtol=1e-6)


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
