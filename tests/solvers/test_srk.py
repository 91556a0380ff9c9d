"""Stochastic Runge--Kutta methods (`sdekit/solvers/_srk.py` and its tableaus).

- Agreement with diffrax's SRKs to float rounding, fed the same Brownian increments (one step
  and a whole fixed-step solve).
- Strong orders: one Brownian path per sample, shared across resolutions (coarse increments are
  Chen combinations of fine ones from one `BrownianTree.grid_increments` call), reference on a
  much finer grid of the same path (or the exact solution); fitted slope within 0.15 of theory.
- Embedded error estimates scale with the declared `sde.error_order`.
- Bad input: missing Lévy area, state-dependent diffusion for additive-noise methods.
"""

import functools
from fractions import Fraction as F

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import sdekit as sk
from sdekit.brownian import Increment
from sdekit.solvers._general_shark import general_shark
from sdekit.solvers._sea import sea
from sdekit.solvers._shark import shark
from sdekit.solvers._slow_rk import slow_rk
from sdekit.solvers._spark import spark
from sdekit.solvers._sra1 import sra1
from sdekit.solvers._srk import AdditiveNoiseCoeffs, GeneralNoiseCoeffs, StochasticTableau

SOLVERS = {
    "shark": shark,
    "sra1": sra1,
    "sea": sea,
    "spark": spark,
    "general_shark": general_shark,
    "slow_rk": slow_rk,
}
ADDITIVE_ONLY = ("shark", "sra1", "sea")
GENERAL = ("spark", "general_shark", "slow_rk")
DIFFRAX = {
    "shark": diffrax.ShARK,
    "sra1": diffrax.SRA1,
    "sea": diffrax.SEA,
    "spark": diffrax.SPaRK,
    "general_shark": diffrax.GeneralShARK,
    "slow_rk": diffrax.SlowRK,
}

T = 1.0
M = 3  # Brownian dimension; differs from the state dimension 2 (shape rules stay unambiguous)
N_FINE = 2**10
N_PATHS = 400

# --------------------------------------------------------------------------- problems

# Noise large enough against the drift that the stochastic part of the error (order 1.5) and not
# the deterministic part (order 2) dominates at the step sizes tested.
_G = np.array([[1.0, 0.4, 0.0], [0.2, 0.8, 0.6]])


def _additive_drift(t, y, args):
    return jnp.stack([jnp.sin(y[1]) - 0.5 * y[0], jnp.sin(y[0]) - 0.5 * y[1] + jnp.cos(t).astype(y.dtype)])


def _additive_diffusion(t, y, args):
    # Time-dependent additive noise g(t) = (1 + sin t) G, shape (2, M).
    return (1.0 + jnp.sin(t)) * jnp.asarray(_G, jnp.result_type(float))


ADDITIVE = sk.SDE(_additive_drift, _additive_diffusion, noise="additive", calculus="stratonovich")
ADDITIVE_Y0 = (0.5, -0.3)


def _general_drift(t, y, args):
    return -0.5 * y


def _general_diffusion(t, y, args):
    # Columns (0.8, 0), (0, 0.8 + 0.5 tanh y0), (0.2 sin y1, 0.2 cos y0): their Lie brackets do not
    # vanish, so the noise is non-commutative.
    zero = jnp.zeros_like(y[0])
    col1 = jnp.stack([0.8 + zero, zero])
    col2 = jnp.stack([zero, 0.8 + 0.5 * jnp.tanh(y[0])])
    col3 = jnp.stack([0.2 * jnp.sin(y[1]), 0.2 * jnp.cos(y[0])])
    return jnp.stack([col1, col2, col3], axis=-1)


GENERAL_SDE = sk.SDE(_general_drift, _general_diffusion, noise="general", calculus="stratonovich")
GENERAL_Y0 = (0.3, 0.2)

# Scalar (hence commutative) noise, nonlinear drift and diffusion that do not commute.
SCALAR = sk.SDE(
    lambda t, y, args: -0.5 * y + 0.3 * jnp.cos(y),
    lambda t, y, args: 1.0 + 0.5 * jnp.sin(y),
    noise="scalar",
    calculus="stratonovich",
)
SCALAR_Y0 = 0.5

# Stratonovich geometric Brownian motion: y_T = y0 exp(mu T + sigma W_T).
MU, SIGMA = 0.1, 0.6
GBM = sk.SDE(lambda t, y, args: MU * y, lambda t, y, args: SIGMA * y, noise="scalar", calculus="stratonovich")

# --------------------------------------------------------------------------- Brownian paths


@functools.cache
def _fine_increments():
    """N_PATHS paths of an M-dimensional Brownian motion with H on a uniform grid of N_FINE steps
    (one tree per path; tol = the grid spacing, so all grid increments are jointly exact)."""
    ts = jnp.linspace(0.0, T, N_FINE + 1)
    keys = jax.random.split(jax.random.key(20240607), N_PATHS)
    tree_incs = jax.vmap(
        lambda k: sk.BrownianTree(k, 0.0, T, shape=(M,), tol=T / N_FINE, levy="space-time").grid_increments(ts)
    )
    return jax.jit(tree_incs)(keys)


def _halve(inc: Increment) -> Increment:
    """Merge neighbouring pairs of increments (axis 1) by Chen's relation:
    $\\bar H_{s,u} = \\bar H_{s,t} + \\bar H_{t,u} + \\frac12(h_2 W_{s,t} - h_1 W_{t,u})$."""

    def pairs(x):
        return x.reshape(x.shape[0], -1, 2, *x.shape[2:])

    dt, w, hh = pairs(inc.dt), pairs(inc.W), pairs(inc.H)
    extra = (1,) * (w.ndim - dt.ndim)  # broadcast times against the Brownian axes
    h1, h2 = dt[:, :, 0].reshape(*dt.shape[:2], *extra), dt[:, :, 1].reshape(*dt.shape[:2], *extra)
    w1, w2 = w[:, :, 0], w[:, :, 1]
    bar_h = h1 * hh[:, :, 0] + h2 * hh[:, :, 1] + 0.5 * (h2 * w1 - h1 * w2)
    return Increment(dt[:, :, 0] + dt[:, :, 1], w1 + w2, bar_h / (h1 + h2), None)


def _coarsen(inc: Increment, num_steps: int) -> Increment:
    while inc.dt.shape[1] > num_steps:
        inc = _halve(inc)
    assert inc.dt.shape[1] == num_steps
    return inc


def _channel(inc: Increment, j: int) -> Increment:
    """One Brownian component as a scalar Brownian motion."""
    return Increment(inc.dt, inc.W[..., j], inc.H[..., j], None)


# --------------------------------------------------------------------------- solving


def _padded(inc: Increment, length: int) -> Increment:
    """Append zero increments up to `length` steps (never stepped: `_final_on_grid` takes the
    real ones), so every resolution has the fine grid's shapes and one compiled solve."""

    def pad(x):
        return jnp.concatenate([x, jnp.zeros((x.shape[0], length - x.shape[1], *x.shape[2:]), x.dtype)], axis=1)

    return jax.tree.map(pad, inc)


def _scan_solve(solver, problem, y0, incs, t0=0.0):
    """Fixed steps over the grid of `incs` (leaves with a leading step axis) in a user's scan."""
    ts = t0 + jnp.concatenate([jnp.zeros(1, incs.dt.dtype), jnp.cumsum(incs.dt)])
    state = solver.init(problem, ts[0], y0, None)

    def body(carry, x):
        # The solver state is carried: stateful methods (reversible Heun's second copy) need it.
        y, state = carry
        ta, tb, inc = x
        y1, _, _, state1 = solver.step(problem, ta, tb, y, None, inc, state)
        return (y1, state1), None

    (y1, _), _ = lax.scan(body, (y0, state), (ts[:-1], ts[1:], incs))
    return y1


@functools.partial(jax.jit, static_argnums=(0, 1))
def _final_on_grid(solver, problem, y0, incs, num_steps):
    """Final states of fixed-step solves on the first `num_steps` increments of each path
    (leaves `(paths, steps, ...)`), the paths stepped together under vmap. The step count is
    traced: one compilation serves every resolution, and padding beyond it is never stepped."""
    paths = incs.dt.shape[0]
    ts = jnp.concatenate([jnp.zeros((paths, 1), incs.dt.dtype), jnp.cumsum(incs.dt, axis=1)], axis=1)
    ys = jax.tree.map(lambda x: jnp.broadcast_to(x, (paths, *jnp.shape(x))), y0)
    states = jax.vmap(lambda t, y: solver.init(problem, t, y, None))(ts[:, 0], ys)

    def step(ta, tb, y, inc, state):
        y1, _, _, state1 = solver.step(problem, ta, tb, y, None, inc, state)
        return y1, state1

    def body(i, carry):
        y, state = carry
        inc = jax.tree.map(lambda x: lax.dynamic_index_in_dim(x, i, 1, keepdims=False), incs)
        return jax.vmap(step)(ts[:, i], ts[:, i + 1], y, inc, state)

    return lax.fori_loop(0, num_steps, body, (ys, states))[0]


def _errors(solver, problem, y0, fine, resolutions, reference=None):
    """Mean over paths of the max-norm error at T for each resolution; the reference defaults to
    the same solver on the fine grid."""
    length = fine.dt.shape[1]
    if reference is None:
        reference = _final_on_grid(solver, problem, y0, fine, length)
    errs = []
    for n in resolutions:
        y = _final_on_grid(solver, problem, y0, _padded(_coarsen(fine, n), length), n)
        diff = np.abs(np.asarray(y - reference)).reshape(y.shape[0], -1)
        errs.append(diff.max(axis=1).mean())
    return np.asarray(errs)


def _slope(resolutions, errs):
    hs = T / np.asarray(resolutions, float)
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


# --------------------------------------------------------------------------- diffrax agreement


class _GridPath(diffrax.AbstractBrownianPath):
    """A diffrax Brownian path replaying our increments on a fixed grid (diffrax's
    `SpaceTimeLevyArea.H` is normalised like ours, $H = \\bar H / h$)."""

    ts: jax.Array
    incs: Increment
    levy_area: type = eqx.field(static=True, default=diffrax.SpaceTimeLevyArea)

    @property
    def t0(self):
        return self.ts[0]

    @property
    def t1(self):
        return self.ts[-1]

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        i = jnp.clip(jnp.searchsorted(self.ts, t0, side="right") - 1, 0, self.ts.shape[0] - 2)
        inc = jax.tree.map(lambda x: x[i], self.incs)
        if use_levy:
            return diffrax.SpaceTimeLevyArea(dt=inc.dt, W=inc.W, H=inc.H)
        return inc.W


def _one_path(num_steps):
    inc = jax.tree.map(lambda x: x[:1], _fine_increments())
    inc = jax.tree.map(lambda x: x[0], _coarsen(inc, num_steps))
    ts = jnp.concatenate([jnp.zeros(1, inc.dt.dtype), jnp.cumsum(inc.dt)])
    return ts, inc


def _diffrax_terms(problem, path):
    return diffrax.MultiTerm(diffrax.ODETerm(problem.drift), diffrax.ControlTerm(problem.diffusion, path))


DIFFRAX_CASES = [(n, "additive") for n in SOLVERS] + [(n, "general") for n in GENERAL]


def _case(kind):
    if kind == "additive":
        return ADDITIVE, jnp.array(ADDITIVE_Y0)
    return GENERAL_SDE, jnp.array(GENERAL_Y0)


@pytest.mark.parametrize("name, kind", DIFFRAX_CASES)
def test_one_step_matches_diffrax(name, kind, x64):
    problem, y0 = _case(kind)
    ts, incs = _one_path(8)
    path = _GridPath(ts, incs)
    terms = _diffrax_terms(problem, path)
    ours, theirs = SOLVERS[name](), DIFFRAX[name]()
    i = 3  # a step away from t = 0, where g(t) has non-zero slope
    t0, t1 = ts[i], ts[i + 1]
    inc = jax.tree.map(lambda x: x[i], incs)
    y1, err, _, _ = jax.jit(lambda y: ours.step(problem, t0, t1, y, None, inc, ours.init(problem, t0, y, None)))(y0)
    dstate = theirs.init(terms, t0, t1, y0, None)
    y1_dx, err_dx, _, _, _ = jax.jit(lambda y: theirs.step(terms, t0, t1, y, None, dstate, False))(y0)
    assert float(jnp.max(jnp.abs(y1 - y0))) > 1e-2  # a non-trivial step
    np.testing.assert_allclose(y1, y1_dx, rtol=1e-13, atol=1e-14)
    assert (err is None) == (err_dx is None)
    if err is not None:
        np.testing.assert_allclose(err, err_dx, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, kind", [(n, "additive") for n in ADDITIVE_ONLY] + [(n, "general") for n in GENERAL])
def test_fixed_step_solve_matches_diffrax(name, kind, x64):
    problem, y0 = _case(kind)
    ts, incs = _one_path(32)
    ours = SOLVERS[name]()
    y1 = jax.jit(lambda y: _scan_solve(ours, problem, y, incs))(y0)
    sol = diffrax.diffeqsolve(
        _diffrax_terms(problem, _GridPath(ts, incs)), DIFFRAX[name](), ts[0], ts[-1], None, y0,
        stepsize_controller=diffrax.StepTo(ts), saveat=diffrax.SaveAt(t1=True),
    )
    np.testing.assert_allclose(y1, sol.ys[0], rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- strong orders

ADDITIVE_RES = (16, 32, 64, 128)
SCALAR_RES = (16, 32, 64, 128)
GENERAL_RES = (4, 8, 16, 32)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SOLVERS))
def test_strong_order_additive_time_dependent_noise(name, x64):
    solver = SOLVERS[name]()
    errs = _errors(solver, ADDITIVE, jnp.array(ADDITIVE_Y0), _fine_increments(), ADDITIVE_RES)
    expected = solver.sde.strong("additive")
    assert expected == (1.0 if name == "sea" else 1.5)
    assert abs(_slope(ADDITIVE_RES, errs) - expected) < 0.15, errs


@pytest.mark.slow
@pytest.mark.parametrize("name", GENERAL)
def test_strong_order_scalar_noise(name, x64):
    solver = SOLVERS[name]()
    errs = _errors(solver, SCALAR, jnp.array(SCALAR_Y0), _channel(_fine_increments(), 0), SCALAR_RES)
    expected = solver.sde.strong("scalar")
    assert expected == solver.sde.strong("commutative") == (1.5 if name == "slow_rk" else 1.0)
    assert abs(_slope(SCALAR_RES, errs) - expected) < 0.15, errs


@pytest.mark.slow
@pytest.mark.parametrize("name", GENERAL)
def test_strong_order_and_limit_gbm_exact(name, x64):
    """Against the exact Stratonovich solution: the right order, and the right calculus (an Itô
    limit would differ by $\\sigma^2 T/2$ in the exponent)."""
    solver = SOLVERS[name]()
    fine = _channel(_fine_increments(), 0)
    exact = jnp.exp(MU * T + SIGMA * jnp.sum(fine.W, axis=1))
    res = (8, 16, 32, 64)
    errs = _errors(solver, GBM, jnp.array(1.0), fine, res + (N_FINE,), reference=exact)
    assert abs(_slope(res, errs[:4]) - solver.sde.strong("scalar")) < 0.15, errs
    assert errs[-1] < 2e-4, errs


@pytest.mark.slow
@pytest.mark.parametrize("name", GENERAL)
def test_strong_order_general_noncommutative(name, x64):
    solver = SOLVERS[name]()
    errs = _errors(solver, GENERAL_SDE, jnp.array(GENERAL_Y0), _fine_increments(), GENERAL_RES)
    assert solver.sde.strong("general") == 0.5
    assert abs(_slope(GENERAL_RES, errs) - 0.5) < 0.15, errs


@pytest.mark.slow
def test_order_test_detects_missing_levy_area(x64):
    """Negative control: ShARK without its H terms (a plain additive RK) drops to order 1, so
    the order test above can fail."""
    from sdekit.solvers._shark import SHARK_TABLEAU
    from sdekit.solvers._srk import make_srk_solver

    broken = SHARK_TABLEAU._replace(w=AdditiveNoiseCoeffs(a=(0, F(5, 6)), b=1), h=None)
    solver = make_srk_solver("shark_without_h", broken, strong_order=(("additive", 1.5),), weak_order=())
    errs = _errors(solver, ADDITIVE, jnp.array(ADDITIVE_Y0), _fine_increments(), ADDITIVE_RES)
    assert _slope(ADDITIVE_RES, errs) < 1.5 - 0.3, errs


# --------------------------------------------------------------------------- error estimates


def _one_step_errors(solver, problem, y0, w_shape, hs, t0=0.3, num=4000):
    z = jax.random.normal(jax.random.key(7), (2, num, *w_shape), jnp.result_type(float))
    state = solver.init(problem, t0, y0, None)

    @jax.jit
    def mean_error(h):
        inc = Increment(h, jnp.sqrt(h) * z[0], jnp.sqrt(h / 12) * z[1], None)
        step = lambda i: solver.step(problem, t0, t0 + h, y0, None, i, state)[1]  # noqa: E731
        err = jax.vmap(step, in_axes=(Increment(None, 0, 0, None),))(inc)
        return jnp.mean(jnp.max(jnp.abs(err.reshape(num, -1)), axis=1))

    return np.asarray([mean_error(jnp.asarray(h)) for h in hs])


@pytest.mark.parametrize(
    "name, problem, y0, w_shape, noise",
    [
        ("shark", ADDITIVE, ADDITIVE_Y0, (M,), "additive"),
        ("sra1", ADDITIVE, ADDITIVE_Y0, (M,), "additive"),
        ("spark", ADDITIVE, ADDITIVE_Y0, (M,), "additive"),
        ("spark", SCALAR, SCALAR_Y0, (), "scalar"),
        ("spark", GENERAL_SDE, GENERAL_Y0, (M,), "general"),
    ],
)
def test_error_estimate_scales_with_declared_order(name, problem, y0, w_shape, noise, x64):
    solver = SOLVERS[name]()
    hs = 2.0 ** -np.arange(6, 12)
    errs = _one_step_errors(solver, problem, jnp.array(y0), w_shape, hs)
    assert solver.has_error_estimate and solver.embedded_order == 1
    assert abs(np.polyfit(np.log(hs), np.log(errs), 1)[0] - solver.sde.error(noise)) < 0.1, errs


# --------------------------------------------------------------------------- facts and structure

EVALUATIONS = {
    "shark": (2, 2), "sra1": (2, 2), "sea": (1, 2), "spark": (3, 3), "general_shark": (2, 3), "slow_rk": (2, 5),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_declared_facts_and_evaluation_counts(name):
    solver = SOLVERS[name]()
    assert solver is SOLVERS[name]() and solver == SOLVERS[name]()  # cached: static jit args hash alike
    assert solver.name == name and solver.order is None
    assert solver.sde.calculus == "stratonovich" and solver.sde.levy_area == "space-time"
    assert solver.has_error_estimate == (name in ("shark", "sra1", "spark"))
    assert bool(solver.sde.error_order) == solver.has_error_estimate
    noises = {n for n, _ in solver.sde.strong_order}
    assert noises == ({"additive"} if name in ADDITIVE_ONLY else {"additive", "scalar", "diagonal", "commutative",
                                                                   "general"})
    # Count the evaluations the step actually traces.
    calls = {"f": 0, "g": 0}
    problem, y0 = _case("additive" if name in ADDITIVE_ONLY else "general")

    def drift(t, y, a):
        calls["f"] += 1
        return problem.drift(t, y, a)

    def diffusion(t, y, a):
        calls["g"] += 1
        return problem.diffusion(t, y, a)

    counted = sk.SDE(drift, diffusion, noise=problem.noise, calculus="stratonovich")
    inc = Increment(jnp.asarray(0.1), jnp.ones(M), jnp.ones(M), None)
    state = solver.init(counted, 0.0, y0, None)
    calls.update(f=0, g=0)
    jax.make_jaxpr(lambda y: solver.step(counted, 0.0, 0.1, y, None, inc, state)[:2])(y0)
    assert (calls["f"], calls["g"]) == EVALUATIONS[name]
    assert solver.fevals_per_step == EVALUATIONS[name][0]


@pytest.mark.parametrize("name", ["shark", "spark", "slow_rk"])
def test_pytree_state_matches_flat_state(name, x64):
    """A dict state with general-shaped noise gives the same numbers as the flat state."""
    m = 4
    mat = jnp.asarray(np.arange(12.0).reshape(3, m) / 20.0)
    flat_f = lambda t, y, a: jnp.sin(y[::-1]) - 0.3 * y  # noqa: E731
    if name == "shark":
        flat_g = lambda t, y, a: (1.0 + t) * mat  # noqa: E731
        noise = "additive"
    else:
        flat_g = lambda t, y, a: mat * jnp.cos(y)[:, None]  # noqa: E731
        noise = "general"

    def to_tree(y):
        return {"a": y[:2], "b": y[2]}

    def from_tree(d):
        return jnp.concatenate([d["a"], d["b"][None]])

    flat = sk.SDE(flat_f, flat_g, noise=noise, calculus="stratonovich")
    tree = sk.SDE(
        lambda t, y, a: to_tree(flat_f(t, from_tree(y), a)),
        lambda t, y, a: (lambda g: {"a": g[:2], "b": g[2]})(flat_g(t, from_tree(y), a)),
        noise=noise,
        calculus="stratonovich",
    )
    y0 = jnp.array([0.3, -0.2, 0.5])
    key_w, key_h = jax.random.split(jax.random.key(3))
    w, hh = 0.2 * jax.random.normal(key_w, (m,)), 0.06 * jax.random.normal(key_h, (m,))
    inc = Increment(jnp.asarray(0.05), w, hh, None)
    solver = SOLVERS[name]()
    y1, e1, _, _ = solver.step(flat, 0.1, 0.15, y0, None, inc, solver.init(flat, 0.1, y0, None))
    y2, e2, _, _ = solver.step(tree, 0.1, 0.15, to_tree(y0), None, inc, solver.init(tree, 0.1, to_tree(y0), None))
    np.testing.assert_allclose(from_tree(y2), y1, rtol=1e-14, atol=1e-15)
    if e1 is not None:
        np.testing.assert_allclose(from_tree(e2), e1, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_jit_vmap_scan_float32(name):
    """float32 with strict dtype promotion: times and increments may be float32 or float64."""
    solver = SOLVERS[name]()
    problem, y0 = _case("additive" if name in ADDITIVE_ONLY else "general")
    incs = Increment(
        jnp.full((5, 10), 0.1, jnp.float32),
        0.3 * jax.random.normal(jax.random.key(0), (5, 10, M), jnp.float32),
        0.1 * jax.random.normal(jax.random.key(1), (5, 10, M), jnp.float32),
        None,
    )
    y = jax.jit(jax.vmap(lambda i: _scan_solve(solver, problem, y0.astype(jnp.float32), i)))(incs)
    assert y.shape == (5, 2) and y.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y)))
    # float64 times and Brownian increments (x64 tree) with a float32 state.
    with jax.enable_x64(True):
        incs64 = jax.tree.map(lambda x: x.astype(jnp.float64), incs)
        y64 = jax.jit(jax.vmap(lambda i: _scan_solve(solver, problem, y0.astype(jnp.float32), i)))(incs64)
    assert y64.dtype == jnp.float32
    np.testing.assert_allclose(y64, y, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", list(SOLVERS))
def test_increment_without_levy_area_is_refused(name):
    solver = SOLVERS[name]()
    problem, y0 = _case("additive" if name in ADDITIVE_ONLY else "general")
    inc = Increment(jnp.asarray(0.1), jnp.ones(M), None, None)
    with pytest.raises(ValueError, match="levy='space-time'"):
        solver.step(problem, 0.0, 0.1, y0, None, inc, solver.init(problem, 0.0, y0, None))
    with pytest.raises(ValueError, match="needs a Brownian increment"):
        solver.step(problem, 0.0, 0.1, y0, None, None, solver.init(problem, 0.0, y0, None))


@pytest.mark.parametrize("name", ADDITIVE_ONLY)
def test_additive_method_refuses_state_dependent_diffusion(name):
    solver = SOLVERS[name]()
    with pytest.raises(ValueError, match="additive noise"):
        solver.init(GENERAL_SDE, 0.0, jnp.array(GENERAL_Y0), None)


def test_malformed_tableau_is_refused():
    from sdekit.solvers._shark import SHARK_TABLEAU
    from sdekit.solvers._srk import make_srk_solver

    with pytest.raises(ValueError, match="sum to"):
        make_srk_solver("bad", SHARK_TABLEAU._replace(b=(F(1, 2), F(1, 3))), strong_order=(), weak_order=())
    with pytest.raises(ValueError, match="same form"):
        make_srk_solver(
            "bad", SHARK_TABLEAU._replace(h=GeneralNoiseCoeffs(a=((F(1),),), b=(F(0), F(0)))),
            strong_order=(), weak_order=(),
        )
    with pytest.raises(ValueError, match="K weights need H"):
        StochasticTableau(c=(F(0),), a=(), b=(F(1),), e=None, w=AdditiveNoiseCoeffs((F(0),), F(1)),
                          k=AdditiveNoiseCoeffs((F(0),), F(0))).check()
