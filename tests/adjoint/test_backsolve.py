"""sk.adjoint.Backsolve: continuous (ODE) and stochastic (SDE) adjoints solved backwards in time."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from _gradcheck import assert_trees_close as _close, finite_differences as _fd


def _max_err(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _field(t, y, p):
    return -p["k"] * y + p["a"] * jnp.sin(t) * y[::-1]


def _params():
    return {"k": jnp.array([0.7, 1.3]), "a": jnp.array(0.4)}


# ----------------------------------------------------------------------------------------- ODEs


@pytest.mark.parametrize("controller", ["constant", "pid"])
def test_ode_matches_finite_differences(x64, controller):
    ctrl, dt0 = (sk.ConstantStep(), 0.01) if controller == "constant" else (sk.PID(rtol=1e-10, atol=1e-10), None)

    def loss(py, adjoint):
        p, y0 = py
        sol = sk.solve(sk.ODE(_field), sk.solvers.tsit5(), 0.0, 1.5, y0, args=p, dt0=dt0, controller=ctrl,
                       adjoint=adjoint)
        return jnp.sum(sol.ys[-1] ** 2)

    py = (_params(), jnp.array([1.0, -0.5]))
    grad = jax.grad(lambda x: loss(x, sk.adjoint.Backsolve()))(py)
    fd = _fd(lambda x: loss(x, None), py)
    _close(grad, fd, rtol=1e-6, atol=1e-8)


def _logistic(t, y, r):
    return r * y * (1 - y)


def _logistic_exact(r, y0, t):
    return 1 / (1 + (1 / y0 - 1) * jnp.exp(-r * t))


def test_ode_error_shrinks_with_tolerance(x64):
    """Errors against the closed-form gradient fall with rtol = atol (a wrong adjoint would plateau)."""

    def final(r, y0, tol):
        sol = sk.solve(sk.ODE(_logistic), sk.solvers.tsit5(), 0.0, 3.0, y0, args=r,
                       controller=sk.PID(rtol=tol, atol=tol), adjoint=sk.adjoint.Backsolve())
        return sol.ys[-1]

    r, y0 = jnp.array(1.7), jnp.array(0.1)
    exact = jax.grad(_logistic_exact, argnums=(0, 1))(r, y0, 3.0)
    grad = jax.jit(jax.grad(final, argnums=(0, 1)))
    errors = [_max_err(grad(r, y0, jnp.array(tol)), exact) for tol in (1e-4, 1e-6, 1e-8, 1e-10)]
    assert all(e1 < e0 for e0, e1 in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-4 * errors[0], errors
    assert errors[-1] < 1e-8, errors


def test_ode_matches_diffrax_backsolve(x64):
    diffrax = pytest.importorskip("diffrax")
    p, y0 = _params(), jnp.array([1.0, -0.5])

    def ours(p, y0, tol=1e-6):
        sol = sk.solve(sk.ODE(_field), sk.solvers.tsit5(), 0.0, 2.0, y0, args=p,
                       controller=sk.PID(rtol=tol, atol=tol), adjoint=sk.adjoint.Backsolve())
        return jnp.sum(sol.ys[-1] ** 2)

    def theirs(p, y0):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(_field), diffrax.Tsit5(), 0.0, 2.0, None, y0, args=p,
                                  stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
                                  adjoint=diffrax.BacksolveAdjoint())
        return jnp.sum(sol.ys[-1] ** 2)

    grad = jax.jit(jax.grad(ours, argnums=(0, 1)))
    exact = grad(p, y0, jnp.array(1e-12))  # (checked against finite differences above)
    a = grad(p, y0, jnp.array(1e-6))
    b = jax.grad(theirs, argnums=(0, 1))(p, y0)
    # Same method, independent code: agreement to about the tolerance, and both near the truth.
    _close(a, b, rtol=1e-5, atol=1e-6)
    assert _max_err(a, exact) < 1e-4 and _max_err(b, exact) < 1e-4


def test_saveat_ts_matches_checkpointed(x64):
    """A loss on a time series: the adjoint jumps by each saved state's cotangent. Backsolve on a
    StepTo grid and with PID against Checkpointed constant steps (the same grid as StepTo)."""
    weights = jnp.array([1.0, -2.0, 0.5, 3.0])

    def loss(p, y0, adjoint, ctrl, dt0):
        sol = sk.solve(sk.ODE(_field), sk.solvers.tsit5(), 0.0, 2.0, y0, args=p, dt0=dt0, controller=ctrl,
                       adjoint=adjoint, saveat=sk.SaveAt(t0=True, ts=jnp.array([0.3, 0.75, 1.2]), t1=True))
        return jnp.sum(weights[:, None] * sol.ys[1:] ** 2) + jnp.sum(sol.ys[0] ** 3)

    p, y0 = _params(), jnp.array([1.0, -0.5])
    grad = jax.grad(loss, argnums=(0, 1))
    ckpt = grad(p, y0, sk.adjoint.Checkpointed(), sk.ConstantStep(), 0.01)
    grid = grad(p, y0, sk.adjoint.Backsolve(), sk.StepTo(jnp.linspace(0.0, 2.0, 201)), None)
    pid = grad(p, y0, sk.adjoint.Backsolve(), sk.PID(rtol=1e-10, atol=1e-10), None)
    _close(grid, ckpt, rtol=1e-7, atol=1e-9)
    _close(pid, ckpt, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backwards", [False, True])
def test_time_gradients_match_finite_differences(x64, backwards):
    """d/dt1 = ybar(t1).f(t1), d/dt0 = -a(t0).f(t0), also integrating backwards in time (t1 < t0)
    and with saves at ts in between (which do not depend on t1)."""
    ts = jnp.array([1.1, 0.6]) if backwards else jnp.array([0.6, 1.1])

    def loss(times):
        t0, t1 = times
        sol = sk.solve(sk.ODE(_field), sk.solvers.tsit5(), t0, t1, jnp.array([1.0, -0.5]), args=_params(),
                       controller=sk.PID(rtol=1e-11, atol=1e-11), adjoint=sk.adjoint.Backsolve(),
                       saveat=sk.SaveAt(ts=ts, t1=True))
        return jnp.sum(jnp.array([1.0, 2.0, 3.0])[:, None] * sol.ys ** 2)

    times = (jnp.array(1.4), jnp.array(0.2)) if backwards else (jnp.array(0.2), jnp.array(1.4))
    _close(jax.grad(loss)(times), _fd(loss, times), rtol=1e-6, atol=1e-8)


class _MLP(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, t, y, args):
        return jnp.tanh(self.w @ y + self.b) - 0.1 * y


def test_equinox_module_vector_field(x64):
    model = _MLP(0.5 * jax.random.normal(jax.random.key(0), (3, 3)), jnp.full(3, 0.1))

    def loss(model, adjoint):
        sol = sk.solve(sk.ODE(model), sk.solvers.tsit5(), 0.0, 2.0, jnp.array([1.0, -0.5, 0.2]), dt0=0.02,
                       adjoint=adjoint)
        return jnp.sum(sol.ys ** 2)

    back = eqx.filter_grad(lambda m: loss(m, sk.adjoint.Backsolve()))(model)
    ckpt = eqx.filter_grad(lambda m: loss(m, sk.adjoint.Checkpointed()))(model)
    assert float(jnp.max(jnp.abs(back.w))) > 0.1  # the parameters do get gradients
    _close((back.w, back.b), (ckpt.w, ckpt.b), rtol=1e-6, atol=1e-8)


def test_backward_solver_and_controller_override(x64):
    def final(r, adjoint):
        sol = sk.solve(sk.ODE(_logistic), sk.solvers.euler(), 0.0, 3.0, jnp.array(0.1), args=r, dt0=0.01,
                       adjoint=adjoint)
        return sol.ys[-1]

    r = jnp.array(1.7)
    exact = jax.grad(_logistic_exact)(r, jnp.array(0.1), 3.0)
    coarse = jax.grad(final)(r, sk.adjoint.Backsolve())  # Euler both ways
    fine = jax.grad(final)(r, sk.adjoint.Backsolve(sk.solvers.tsit5(), sk.PID(rtol=1e-10, atol=1e-10)))
    # The backward pass's own error is gone; what is left is the forward Euler state error.
    assert abs(float(fine - exact)) < 0.5 * abs(float(coarse - exact))


def test_float32_and_float64(dtype):
    def final(r):
        sol = sk.solve(sk.ODE(_logistic), sk.solvers.tsit5(), 0.0, 3.0, jnp.array(0.1, dtype), args=r,
                       dt0=0.05, adjoint=sk.adjoint.Backsolve())
        return sol.ys[-1]

    r = jnp.array(1.7, dtype)
    grad = jax.grad(final)(r)
    assert grad.dtype == dtype
    exact = jax.grad(_logistic_exact)(r, jnp.array(0.1, dtype), 3.0)
    np.testing.assert_allclose(float(grad), float(exact), rtol=1e-4 if dtype == jnp.float32 else 1e-6)


# ----------------------------------------------------------------------------------------- SDEs


def _scalar_sde():
    return sk.SDE(lambda t, y, p: p["k"] * jnp.sin(y), lambda t, y, p: p["s"] * jnp.cos(y), noise="scalar",
                  calculus="stratonovich")


def _mean_err(a, b):
    """Per path (leading axis), the largest error over the leaves; then the mean over paths."""
    per_leaf = [np.abs(np.asarray(x) - np.asarray(y)).reshape(np.shape(x)[0], -1).max(axis=1)
                for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return float(np.mean(np.max(np.stack(per_leaf), axis=0)))


@pytest.mark.slow
def test_sde_converges_to_checkpointed_gradient(x64):
    """Same trees: optimise-then-discretise and discretise-then-optimise gradients agree as dt -> 0,
    with the strong order of heun_sde on the (one-channel, commutative) adjoint SDE. Mean gaps over
    8 paths (one path's gaps need not fall monotonically)."""
    keys = jax.random.split(jax.random.key(5), 8)

    def loss(p, y0, dt, key, adjoint):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12)
        sol = sk.solve(_scalar_sde(), sk.solvers.heun_sde(), 0.0, 1.0, y0, args=p, dt0=dt, brownian=tree,
                       adjoint=adjoint, max_steps=2**10)
        return sol.ys[-1] ** 2

    grad = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, None, None, 0, None)), static_argnums=4)
    p, y0 = {"k": jnp.array(0.8), "s": jnp.array(0.6)}, jnp.array(0.5)
    dts = [2.0**-3, 2.0**-5, 2.0**-7, 2.0**-9]
    gaps = [_mean_err(grad(p, y0, jnp.array(dt), keys, sk.adjoint.Backsolve()),
                      grad(p, y0, jnp.array(dt), keys, sk.adjoint.Checkpointed())) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(gaps), 1)[0]
    assert slope > 0.75, (gaps, slope)
    assert all(g1 < g0 for g0, g1 in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < gaps[0] / 20, gaps


@pytest.mark.slow
def test_ito_gbm_matches_closed_form_pathwise_gradient(x64):
    r"""$y_1 = y_0 \exp((\mu - \sigma^2/2) + \sigma W_1)$ on each tree's own $W_1$: Euler--Maruyama
    forward, the default heun_sde backward on the Stratonovich-converted adjoint. Mean errors
    over 8 paths fall at Euler--Maruyama's strong order 1/2 or faster."""
    keys = jax.random.split(jax.random.key(3), 8)

    def final(p, y0, dt, key):
        tree = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12)
        sde = sk.SDE(lambda t, y, p: p["mu"] * y, lambda t, y, p: p["s"] * y, noise="scalar", calculus="ito")
        sol = sk.solve(sde, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, args=p, dt0=dt, brownian=tree,
                       adjoint=sk.adjoint.Backsolve(), max_steps=2**10)
        return sol.ys[-1]

    def exact(p, y0, key):
        w = sk.BrownianTree(key, 0.0, 1.0, shape=(), tol=2**-12).evaluate(1.0)
        y1 = y0 * jnp.exp(p["mu"] - p["s"] ** 2 / 2 + p["s"] * w)
        return {"mu": y1, "s": y1 * (w - p["s"])}, y1 / y0

    p, y0 = {"mu": jnp.array(0.3), "s": jnp.array(0.5)}, jnp.array(1.2)
    want = jax.vmap(exact, in_axes=(None, None, 0))(p, y0, keys)
    grad = jax.jit(jax.vmap(jax.grad(final, argnums=(0, 1)), in_axes=(None, None, None, 0)))
    dts = [2.0**-4, 2.0**-6, 2.0**-8, 2.0**-10]
    errors = [_mean_err(grad(p, y0, jnp.array(dt), keys), want) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert all(e1 < e0 for e0, e1 in zip(errors, errors[1:])), errors
    assert slope > 0.4, (errors, slope)
    assert errors[-1] < 0.05, errors


def test_sde_saveat_ts_diagonal_noise(x64):
    """Vector state, diagonal noise (a non-commutative adjoint), loss on a time series: close to
    the discrete gradient on a fine grid."""
    tree = sk.BrownianTree(jax.random.key(1), 0.0, 1.0, shape=(2,), tol=2**-8)
    sde = sk.SDE(lambda t, y, p: -p["k"] * y + jnp.sin(y[::-1]), lambda t, y, p: p["a"] * jnp.cos(y),
                 noise="diagonal", calculus="stratonovich")

    def loss(p, y0, adjoint, grid=False):
        ctrl, dt0 = (sk.StepTo(jnp.linspace(0.0, 1.0, 2**8 + 1)), None) if grid else (sk.ConstantStep(), 2.0**-8)
        sol = sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, y0, args=p, dt0=dt0, controller=ctrl, brownian=tree,
                       adjoint=adjoint, max_steps=2**8, saveat=sk.SaveAt(ts=jnp.array([0.25, 0.5, 1.0])))
        return jnp.sum(sol.ys ** 2)

    p, y0 = _params(), jnp.array([1.0, 0.5])
    back = jax.grad(loss, argnums=(0, 1))(p, y0, sk.adjoint.Backsolve())
    # StepTo: the backward pass draws the reversed path's increments over the grid at once.
    back_grid = jax.grad(loss, argnums=(0, 1))(p, y0, sk.adjoint.Backsolve(), True)
    ckpt = jax.grad(loss, argnums=(0, 1))(p, y0, sk.adjoint.Checkpointed())
    scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(ckpt))
    assert _max_err(back, ckpt) < 1e-3 * scale  # measured 1.8e-4 relative
    assert _max_err(back_grid, ckpt) < 1e-3 * scale


# ------------------------------------------------------------------------------------- memory


def _memory(loss, n):
    compiled = jax.jit(jax.grad(loss), static_argnums=1).lower(jnp.ones(4), n).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_memory_flat_in_the_number_of_steps(x64):
    def ode(y0, n):
        sol = sk.solve(sk.ODE(lambda t, y, a: -y + jnp.sin(y)), sk.solvers.tsit5(), 0.0, 1.0, y0, dt0=1.0 / n,
                       max_steps=n, adjoint=sk.adjoint.Backsolve())
        return jnp.sum(sol.ys ** 2)

    def sde(y0, n):
        tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(4,), tol=2**-12)
        problem = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.3 * jnp.cos(y), noise="diagonal",
                         calculus="stratonovich")
        sol = sk.solve(problem, sk.solvers.heun_sde(), 0.0, 1.0, y0, dt0=1.0 / n, max_steps=n, brownian=tree,
                       adjoint=sk.adjoint.Backsolve())
        return jnp.sum(sol.ys ** 2)

    for loss in (ode, sde):
        assert _memory(loss, 1000) == _memory(loss, 100)


# ---------------------------------------------------------------------------------- bad input


def _ode_solve(**kw):
    return sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=0.1, **kw)


@pytest.mark.parametrize("saveat", [sk.SaveAt(steps=True), sk.SaveAt(dense=True)])
def test_refuses_steps_and_dense(saveat):
    with pytest.raises(ValueError, match="Backsolve"):
        _ode_solve(saveat=saveat, adjoint=sk.adjoint.Backsolve())


def _sde_solve(solver, adjoint, levy="increment"):
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-8, levy=levy)
    sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.2 * y, noise="scalar", calculus="ito")
    return sk.solve(sde, solver, 0.0, 1.0, jnp.array(1.0), dt0=0.1, brownian=tree, adjoint=adjoint)


def test_refuses_ito_backward_solver():
    with pytest.raises(ValueError, match="Stratonovich"):
        _sde_solve(sk.solvers.euler_maruyama(), sk.adjoint.Backsolve(solver=sk.solvers.euler_maruyama()))


def test_refuses_additive_only_backward_solver():
    with pytest.raises(ValueError, match="cannot converge"):
        _sde_solve(sk.solvers.euler_maruyama(), sk.adjoint.Backsolve(solver=sk.solvers.shark()), levy="space-time")


def test_refuses_missing_levy_area():
    with pytest.raises(ValueError, match="levy"):
        _sde_solve(sk.solvers.euler_maruyama(), sk.adjoint.Backsolve(solver=sk.solvers.spark()))


def test_refuses_backward_solver_needing_space_space_area():
    """The reversed path carries no space-space area: a clear refusal (it was a KeyError)."""
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time", area=True)
    sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: 0.2 * jnp.stack([y, y[::-1]], axis=-1), noise="general",
                 calculus="stratonovich")
    with pytest.raises(ValueError, match="space-space Lévy area.*Checkpointed"):
        sk.solve(sde, sk.solvers.spark(), 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree,
                 adjoint=sk.adjoint.Backsolve(solver=sk.solvers.milstein_general("stratonovich")))


def test_refuses_bad_options():
    with pytest.raises(TypeError, match="ConstantStep"):
        sk.adjoint.Backsolve(controller=sk.StepTo(jnp.linspace(0.0, 1.0, 5)))
    with pytest.raises(TypeError, match="Solver"):
        sk.adjoint.Backsolve(solver=sk.solvers.tsit5)
    with pytest.raises(ValueError, match="dt0"):
        sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0),
                 controller=sk.PID(rtol=1e-6, atol=1e-6), adjoint=sk.adjoint.Backsolve(controller=sk.ConstantStep()))
    with pytest.raises(ValueError, match="error estimate"):
        _ode_solve(adjoint=sk.adjoint.Backsolve(solver=sk.solvers.euler(), controller=sk.PID(rtol=1e-6, atol=1e-6)))
