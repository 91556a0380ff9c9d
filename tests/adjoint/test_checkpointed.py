"""sk.adjoint.Checkpointed (the default): exact gradients of the discrete solve."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from _gradcheck import assert_trees_close as _close, finite_differences as _fd


def _vf(t, y, p):
    return -p["k"] * y + p["a"] * jnp.sin(t) * y[::-1]


def _loss(p, y0, t1, controller, dt0, adjoint=None, max_steps=4096):
    sol = sk.solve(sk.ODE(_vf), sk.solvers.tsit5(), 0.0, t1, y0, args=p, dt0=dt0, controller=controller,
                   adjoint=adjoint, max_steps=max_steps)
    return jnp.sum(sol.ys[-1] ** 2)


_P = {"k": np.array([0.7, 1.3]), "a": np.array(0.4)}


@pytest.mark.parametrize("kind", ["pid", "constant", "grid"])
def test_ode_matches_fd(x64, kind):
    p, y0 = jax.tree.map(jnp.asarray, _P), jnp.array([1.0, -0.5])
    controller, dt0, t1 = {
        "pid": (sk.PID(rtol=1e-6, atol=1e-8), None, 1.0),
        "constant": (sk.ConstantStep(), 0.01, 0.995),
        "grid": (sk.StepTo(jnp.linspace(0.0, 1.0, 51)), None, 1.0),
    }[kind]
    fn = lambda p, y0, t1: _loss(p, y0, t1, controller, dt0)  # noqa: E731
    argnums = (0, 1) if kind == "grid" else (0, 1, 2)
    args = (p, y0, jnp.asarray(t1))
    grads = jax.grad(fn, argnums=argnums)(*args)
    if kind == "pid":
        # The controller's step times are not differentiated: the gradient is that of the same
        # solve replayed on its accepted steps (only t0 and t1 move).
        steps = sk.solve(sk.ODE(_vf), sk.solvers.tsit5(), 0.0, t1, y0, args=p, controller=controller,
                         saveat=sk.SaveAt(steps=True)).ts
        inner = jnp.asarray(steps[jnp.isfinite(steps)][:-1])

        def fn(p, y0, t1):  # noqa: F811
            grid = sk.StepTo(jnp.concatenate([jnp.zeros(1), inner, t1[None]]))
            return _loss(p, y0, t1, grid, None)

    fd = _fd(lambda x: fn(*x, *args[len(argnums):]), args[: len(argnums)])
    _close(grads, fd, rtol=1e-5, atol=1e-8)


def test_sde_fixed_grid_matches_fd(x64):
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(2,), tol=2**-12)
    sde = sk.SDE(lambda t, y, p: -p["k"] * y, lambda t, y, p: p["a"] * jnp.cos(y), noise="diagonal",
                 calculus="stratonovich")

    def fn(p, y0):
        sol = sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, y0, args=p, controller=sk.StepTo(jnp.linspace(0, 1, 65)),
                       brownian=tree)
        return jnp.sum(sol.ys[-1] ** 2)

    args = (jax.tree.map(jnp.asarray, _P), jnp.array([1.0, -0.5]))
    _close(jax.grad(fn, argnums=(0, 1))(*args), _fd(lambda x: fn(*x), args), rtol=1e-6, atol=1e-8)


def test_matches_diffrax(x64):
    p, y0 = jax.tree.map(jnp.asarray, _P), jnp.array([1.0, -0.5])

    def ours(p, y0):
        sol = sk.solve(sk.ODE(_vf), sk.solvers.tsit5(), 0.0, 2.0, y0, args=p, controller=sk.PID(rtol=1e-8, atol=1e-10))
        return jnp.sum(sol.ys[-1] ** 2)

    def theirs(p, y0):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(_vf), diffrax.Tsit5(), 0.0, 2.0, None, y0, args=p,
                                  stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10))
        return jnp.sum(sol.ys[-1] ** 2)

    _close(jax.grad(ours, argnums=(0, 1))(p, y0), jax.grad(theirs, argnums=(0, 1))(p, y0), rtol=1e-6)


def _temp_bytes(fn, *args):
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_while_loop_memory_bounded_by_checkpoints(x64):
    """Reverse-mode temp memory through the while loop follows `checkpoints`, not `max_steps`."""
    y0 = jnp.array(0.7), jnp.ones(256)

    def grad_fn(max_steps, checkpoints):
        def loss(p, y0):
            sol = sk.solve(sk.ODE(lambda t, y, k: -k * jnp.tanh(y)), sk.solvers.tsit5(), 0.0, 1.0, y0, args=p, dt0=1e-3,
                           max_steps=max_steps, adjoint=sk.adjoint.Checkpointed(checkpoints))
            return jnp.sum(sol.ys[-1])
        return jax.grad(loss)

    m_small = _temp_bytes(grad_fn(1000, 10), *y0)
    m_large = _temp_bytes(grad_fn(10000, 10), *y0)
    m_more = _temp_bytes(grad_fn(1000, 100), *y0)
    assert m_large <= 1.1 * m_small + 4096, (m_small, m_large)
    print("checkpointed temp bytes", m_small, m_large, m_more)
    assert m_more > m_small, (m_small, m_more)


@pytest.mark.parametrize("save_ts", [[0.505], [0.5, 1.0]])
def test_gradients_with_saves_on_step_ends(x64, save_ts):
    """A save time that is also a step end returns the step's end value exactly, but must be
    differentiated as a fixed time: a doubled or step-following derivative breaks the match with
    central differences for y0 and t0 (steps at t0 + n dt0 land on 0.5 and 1.0)."""
    ts = jnp.array(save_ts)

    def loss(t0, y0):
        sol = sk.solve(sk.ODE(lambda t, y, a: -0.7 * y + jnp.sin(t)), sk.solvers.tsit5(), t0, 2.0, y0,
                       saveat=sk.SaveAt(ts=ts), dt0=0.01)
        return jnp.sum(sol.ys**2)

    t0, y0, eps = jnp.array(0.1), jnp.array(1.0), 1e-6
    g_t0, g_y0 = jax.grad(loss, argnums=(0, 1))(t0, y0)
    # Jitted: one compilation for the four evaluations (each eager call builds a new vector
    # field, which the solve's own jit would compile anew).
    loss = jax.jit(loss)
    fd_t0 = (loss(t0 + eps, y0) - loss(t0 - eps, y0)) / (2 * eps)
    fd_y0 = (loss(t0, y0 + eps) - loss(t0, y0 - eps)) / (2 * eps)
    np.testing.assert_allclose([g_t0, g_y0], [fd_t0, fd_y0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["grid", "constant"])
def test_sde_saveat_ts_matches_fd(x64, kind):
    """Gradients through `SaveAt(ts=...)` (several save times in one step, and times between
    grid points) on a fixed grid (scan) and with constant steps (while loop)."""
    tree = sk.BrownianTree(jax.random.key(5), 0.0, 1.0, shape=(2,), tol=2**-12)
    sde = sk.SDE(lambda t, y, p: -p["k"] * y, lambda t, y, p: p["a"] * jnp.cos(y), noise="diagonal",
                 calculus="stratonovich")
    save_ts = jnp.array([0.1, 0.3, 0.31, 0.32, 0.5, 1.0])
    controller, dt0 = {"grid": (sk.StepTo(jnp.linspace(0, 1, 33)), None), "constant": (sk.ConstantStep(), 1 / 32)}[kind]

    def fn(p, y0):
        sol = sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, y0, args=p, dt0=dt0, controller=controller,
                       saveat=sk.SaveAt(ts=save_ts), brownian=tree)
        return jnp.sum(jnp.sin(jnp.arange(1.0, 7.0))[:, None] * sol.ys ** 2)

    args = (jax.tree.map(jnp.asarray, _P), jnp.array([1.0, -0.5]))
    _close(jax.grad(fn, argnums=(0, 1))(*args), _fd(lambda x: fn(*x), args), rtol=1e-6, atol=1e-8)


class _TreeAsDiffraxPath(diffrax.AbstractPath):
    """sdekit's Brownian tree seen by diffrax: both libraries then step on the same increments."""

    tree: sk.BrownianTree

    @property
    def t0(self):
        return self.tree.t0

    @property
    def t1(self):
        return self.tree.t1

    def evaluate(self, t0, t1=None, left=True):
        return self.tree.increment(t0, t1).W


def test_sde_gradients_match_diffrax_on_the_same_path(x64):
    """Heun (Stratonovich) on a fixed grid, scalar noise, the same increments: sdekit's and
    diffrax's discrete solutions are the same computation, so their gradients agree to rounding."""
    tree = sk.BrownianTree(jax.random.key(3), 0.0, 1.0, shape=(), tol=2**-10)
    grid = jnp.linspace(0.0, 1.0, 33)
    drift = lambda t, y, p: -p["k"] * y  # noqa: E731
    diffusion = lambda t, y, p: p["a"] * jnp.cos(y)  # noqa: E731

    def ours(p, y0):
        sol = sk.solve(sk.SDE(drift, diffusion, noise="scalar", calculus="stratonovich"), sk.solvers.heun_sde(),
                       0.0, 1.0, y0, args=p, controller=sk.StepTo(grid), brownian=tree)
        return jnp.sum(sol.ys[-1] ** 2)

    def theirs(p, y0):
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, _TreeAsDiffraxPath(tree)))
        sol = diffrax.diffeqsolve(terms, diffrax.Heun(), 0.0, 1.0, None, y0, args=p,
                                  stepsize_controller=diffrax.StepTo(ts=grid))
        return jnp.sum(sol.ys[-1] ** 2)

    args = (jax.tree.map(jnp.asarray, _P), jnp.array([1.0, -0.5]))
    np.testing.assert_allclose(ours(*args), theirs(*args), rtol=1e-12)
    _close(jax.grad(ours, argnums=(0, 1))(*args), jax.grad(theirs, argnums=(0, 1))(*args), rtol=1e-10)


def test_forward_mode_through_a_fixed_grid_sde_with_saves(x64):
    """`jax.jacfwd` through a `StepTo` SDE solve saving at `ts` (several per step, some on grid
    points) equals reverse mode and central differences."""
    tree = sk.BrownianTree(jax.random.key(5), 0.0, 1.0, shape=(2,), tol=2**-12)
    sde = sk.SDE(lambda t, y, k: -k * y, lambda t, y, k: 0.3 * jnp.cos(y), noise="diagonal", calculus="stratonovich")
    save_ts = jnp.array([0.1, 0.3, 0.31, 0.5, 1.0])

    def fn(k):
        return sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, jnp.array([1.0, -0.5]), args=k,
                        controller=sk.StepTo(jnp.linspace(0, 1, 33)), saveat=sk.SaveAt(ts=save_ts), brownian=tree).ys

    k = jnp.array([0.7, 1.3])
    forward, reverse = jax.jacfwd(fn)(k), jax.jacrev(fn)(k)
    eps = 1e-6
    fd = jnp.stack([(fn(k + eps * e) - fn(k - eps * e)) / (2 * eps) for e in jnp.eye(2)], axis=-1)
    np.testing.assert_allclose(forward, reverse, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(forward, fd, rtol=1e-6, atol=1e-9)
