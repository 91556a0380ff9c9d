"""sk.adjoint.Reversible with sk.solvers.reversible_heun: exact gradients in O(1) memory."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import sdekit as sk
from _gradcheck import assert_trees_close as _close, finite_differences as _fd
from sdekit.solvers import reversible_heun


def _ode(t, y, p):
    return -p["k"] * y + p["a"] * jnp.sin(t) * y[::-1]


def _params():
    return {"k": jnp.array([0.7, 1.3]), "a": jnp.array(0.4)}


def _ode_final(p, y0, t1, adjoint, grid):
    controller, dt0 = (sk.StepTo(jnp.linspace(0.0, 1.0, 101) * t1), None) if grid else (sk.ConstantStep(), 0.01)
    sol = sk.solve(sk.ODE(_ode), reversible_heun(), 0.0, t1, y0, args=p, dt0=dt0, controller=controller,
                   adjoint=adjoint)
    return jnp.sum(sol.ys[-1] ** 2)


def _sde_final(p, y0, adjoint, grid):
    tree = sk.BrownianTree(jax.random.key(7), 0.0, 1.0, shape=(2,), tol=2**-12)
    sde = sk.SDE(lambda t, y, p: -p["k"] * y, lambda t, y, p: p["a"] * jnp.cos(y), noise="diagonal",
                 calculus="stratonovich")
    controller, dt0 = (sk.StepTo(jnp.linspace(0.0, 1.0, 65)), None) if grid else (sk.ConstantStep(), 1 / 64)
    sol = sk.solve(sde, reversible_heun(), 0.0, 1.0, y0, args=p, dt0=dt0, controller=controller, brownian=tree,
                   adjoint=adjoint)
    return jnp.sum(sol.ys[-1] ** 2)


def test_backward_step_inverts_step(x64):
    solver, problem, p = reversible_heun(), sk.ODE(_ode), _params()
    y0 = jnp.array([1.0, -0.5])
    state0 = solver.init(problem, 0.0, y0, p)
    y, state = y0, state0
    for n in range(5):
        y, _, _, state = solver.step(problem, 0.1 * n, 0.1 * (n + 1), y, p, None, state)
    for n in reversed(range(5)):
        y, state = solver.inverse_step(problem, 0.1 * n, 0.1 * (n + 1), y, p, None, state)
    _close((y, state), (y0, state0), rtol=0, atol=1e-14)


@pytest.mark.parametrize("grid", [True, False])
def test_ode_matches_checkpointed_and_fd(x64, grid):
    # Constant steps: t1 inside a step, away from where the step count changes (a kink in t1).
    p, y0, t1 = _params(), jnp.array([1.0, -0.5]), jnp.array(1.0 if grid else 0.995)
    rev = jax.grad(_ode_final, argnums=(0, 1, 2))(p, y0, t1, sk.adjoint.Reversible(), grid)
    chk = jax.grad(_ode_final, argnums=(0, 1, 2))(p, y0, t1, sk.adjoint.Checkpointed(), grid)
    _close(rev, chk, rtol=1e-10, atol=1e-12)
    fd = _fd(lambda x: _ode_final(*x, None, grid), (p, y0, t1))
    _close(rev, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("grid", [True, False])
def test_sde_matches_checkpointed_and_fd(x64, grid):
    p, y0 = _params(), jnp.array([1.0, -0.5])
    rev = jax.grad(_sde_final, argnums=(0, 1))(p, y0, sk.adjoint.Reversible(), grid)
    chk = jax.grad(_sde_final, argnums=(0, 1))(p, y0, sk.adjoint.Checkpointed(), grid)
    _close(rev, chk, rtol=1e-10, atol=1e-12)
    fd = _fd(lambda x: _sde_final(*x, None, grid), (p, y0))
    _close(rev, fd, rtol=1e-6, atol=1e-8)


def test_equinox_module_parameters(x64):
    class Field(eqx.Module):
        w: jax.Array
        n: int = 3  # a non-float leaf: gets no gradient

        def __call__(self, t, y, args):
            return jnp.tanh(self.w @ y) * self.n

    field = Field(jnp.array([[0.1, -0.3], [0.2, 0.05]]))

    def loss(field, adjoint):
        sol = sk.solve(sk.ODE(field), reversible_heun(), 0.0, 1.0, jnp.array([1.0, 0.5]), dt0=0.05, adjoint=adjoint)
        return jnp.sum(sol.ys[-1])

    rev = eqx.filter_grad(loss)(field, sk.adjoint.Reversible())
    chk = eqx.filter_grad(loss)(field, sk.adjoint.Checkpointed())
    _close(rev.w, chk.w, rtol=1e-10, atol=1e-12)


def _temp_bytes(fn, *args):
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_memory_flat_in_steps(x64):
    """XLA's compiled temp memory for the gradient does not grow with the number of steps."""
    y0 = jnp.ones(64)

    def grad_fn(n):
        def loss(y0, dt):
            sol = sk.solve(sk.ODE(lambda t, y, a: -jnp.tanh(y)), reversible_heun(), 0.0, 1.0, y0, dt0=dt,
                           max_steps=n, adjoint=sk.adjoint.Reversible())
            return jnp.sum(sol.ys[-1])
        return jax.grad(loss)

    small = _temp_bytes(grad_fn(100), y0, 1 / 100)
    large = _temp_bytes(grad_fn(1000), y0, 1 / 1000)
    print("reversible temp bytes", small, large)
    assert large <= small * 1.1 + 1024, (small, large)


def test_bad_input():
    ode, y0 = sk.ODE(lambda t, y, a: -y), jnp.array(1.0)
    with pytest.raises(ValueError, match="reversible_heun"):
        sk.solve(ode, sk.solvers.tsit5(), 0.0, 1.0, y0, dt0=0.1, adjoint=sk.adjoint.Reversible())
    with pytest.raises(ValueError, match="fixed steps|embedded error estimate"):
        sk.solve(ode, reversible_heun(), 0.0, 1.0, y0, controller=sk.PID(rtol=1e-3, atol=1e-3),
                 adjoint=sk.adjoint.Reversible())
    with pytest.raises(ValueError, match="final state"):
        sk.solve(ode, reversible_heun(), 0.0, 1.0, y0, dt0=0.1, saveat=sk.SaveAt(steps=True),
                 adjoint=sk.adjoint.Reversible())
    with pytest.raises(TypeError, match="adjoint must be"):
        sk.solve(ode, reversible_heun(), 0.0, 1.0, y0, dt0=0.1, adjoint="reversible")
    with pytest.raises(TypeError, match="real- or complex-valued"):
        jax.grad(lambda n: sk.solve(ode, reversible_heun(), 0.0, 1.0, y0, dt0=0.1, args=n,
                                    adjoint=sk.adjoint.Reversible()).ys[-1])(3)
