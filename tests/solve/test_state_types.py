"""States and Brownian shapes: complex ODE states, noise types against the tree's shape,
tuple-rooted Brownian pytrees, strict dtype promotion outside jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk


def test_complex_states_are_controlled_by_their_modulus(x64):
    # y' = -y from 1j: a norm of the real part alone saw no error and took 4 steps to 138j.
    sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 10.0, jnp.array(1j),
                   controller=sk.PID(rtol=1e-8, atol=1e-8))
    np.testing.assert_allclose(sol.ys[-1], 1j * np.exp(-10.0), rtol=1e-4)
    rotating = sk.solve(sk.ODE(lambda t, y, a: 1j * y), sk.solvers.dopri5(), 0.0, 10.0, jnp.array(1.0 + 0j),
                        controller=sk.PID(rtol=1e-8, atol=1e-8))
    np.testing.assert_allclose(rotating.ys[-1], np.exp(10j), rtol=1e-6)


def test_complex_sde_states_are_refused():
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-8)
    sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.ones_like(y), noise="additive")
    with pytest.raises(ValueError, match="SDE states must be real"):
        sk.solve(sde, sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.array(1j, jnp.complex64), dt0=0.1, brownian=tree)


def _gbm(noise):
    diffusion = (lambda t, y, a: 0.2 * y[:, None] * jnp.ones((3, 2))) if noise == "general" else (lambda t, y, a: 0.2 * y)
    return sk.SDE(lambda t, y, a: 0.05 * y, diffusion, noise=noise)


@pytest.mark.parametrize(
    "noise, shape, needed",
    [("diagonal", (), "shape must be the state's"), ("diagonal", (2,), "shape must be the state's"),
     ("scalar", (3,), "shape=\\(\\)"), ("general", (), "shape=\\(m,\\)")],
)
def test_the_tree_shape_must_match_the_noise_type(noise, shape, needed):
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=shape, tol=2**-8)
    with pytest.raises(ValueError, match=needed):
        sk.solve(_gbm(noise), sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(3), dt0=0.1, brownian=tree)


def test_diagonal_noise_drives_each_component_independently():
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8)
    y = sk.solve(_gbm("diagonal"), sk.solvers.euler_maruyama(), 0.0, 1.0, jnp.ones(3), dt0=0.1, brownian=tree).ys[-1]
    assert len(np.unique(np.asarray(y))) == 3


def test_a_tuple_rooted_brownian_shape(x64):
    sds = jax.ShapeDtypeStruct((), jnp.float64)
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(sds, sds), tol=2**-8)
    sde = sk.SDE(lambda t, y, a: (-y[0], -y[1]), lambda t, y, a: (y[0], 2 * y[1]), noise="diagonal")
    y0 = (jnp.array(1.0), jnp.array(2.0))
    ys = sk.solve(sde, sk.solvers.euler_maruyama(), 0.0, 1.0, y0, dt0=2**-6, brownian=tree).ys
    w = tree.evaluate(1.0)
    assert all(np.isfinite(y[-1]) for y in ys)
    assert float(w[0]) != float(w[1])  # two independent paths
    # Backsolve builds the same template for the adjoint's noise.
    sde = sk.SDE(sde.drift, sde.diffusion, noise="diagonal", calculus="stratonovich")
    grad = jax.grad(lambda y: sk.solve(sde, sk.solvers.heun_sde(), 0.0, 1.0, y, dt0=2**-6, brownian=tree,
                                       adjoint=sk.adjoint.Backsolve()).ys[0][-1])
    assert np.isfinite(grad(y0)[0])


def test_pid_outside_jit_under_strict_promotion(x64):
    # The suite runs with jax_numpy_dtype_promotion="strict" (conftest); the result codes once
    # promoted to int64 against the loop's int32 outside jit.
    with jax.disable_jit():
        sol = sk.solve(sk.ODE(lambda t, y, a: -y), sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0),
                       controller=sk.PID(rtol=1e-3, atol=1e-6))
    np.testing.assert_allclose(sol.ys[-1], np.exp(-1.0), rtol=1e-2)
