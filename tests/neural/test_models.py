"""The neural-SDE models: forward passes on padded NaN-ridden batches, finite-difference
gradients, adjoint switches, and the equations (against hand-written Euler loops)."""

import dataclasses
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from sdekit import neural as skn

C, H, OUT = 2, 4, 3


def _batch(dtype):
    """Three series of length 7: irregular times, NaNs (leading, interior, trailing), padding."""
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.3, 1.0, (3, 7)), axis=1)
    times[1, 5:] = times[1, 4]  # length 5
    times[2, 3:] = times[2, 2]  # length 3
    values = rng.normal(size=(3, 7, C))
    values[0, 0, 1] = values[0, 3, :] = values[0, 6, 0] = np.nan
    values[1, 5:] = values[2, 3:] = np.nan
    values[2, 1, 0] = np.nan
    return jnp.asarray(times, dtype), jnp.asarray(values, dtype)


MODELS = {
    "lnsde": lambda key, **kw: skn.LNSDE(C, H, OUT, key=key, width=8, **kw),
    "lsde": lambda key, **kw: skn.LSDE(C, H, OUT, key=key, width=8, **kw),
    "gsde": lambda key, **kw: skn.GSDE(C, H, OUT, key=key, width=8, **kw),
    "neural_sde": lambda key, **kw: skn.NeuralSDE(C, H, OUT, key=key, width=8, **kw),
    "neural_cde": lambda key, **kw: skn.NeuralCDE(C, H, OUT, key=key, width=8, **kw),
}
SDES = ["gsde", "lnsde", "lsde", "neural_sde"]
# The suite's time budget: the first model of a kind runs in every test run, the others in the
# slow set (CI).
FAST = {"lnsde", "neural_cde", "gsde"}


def _fast_first(names, fast=FAST):
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]


@eqx.filter_jit
def _outputs(model, times, values, keys):
    return jax.vmap(lambda t, v, k: model(t, v, key=k))(times, values, keys)


def _loss(model, times, values, keys):
    out = jax.vmap(lambda t, v, k: model(t, v, key=k))(times, values, keys)
    return jnp.sum(jnp.sin(out))


_grad = eqx.filter_jit(eqx.filter_grad(_loss))
_value = eqx.filter_jit(_loss)


@eqx.filter_jit
def _final(model, times, values, key):
    return model.final_state(model.path(times, values), key)


@eqx.filter_jit
def _trajectory(model, times, values, key):
    return model.trajectory(times, values, key=key)


@eqx.filter_jit
def _z0(model, times, values):
    return model.initial(model.path(times, values).evaluate(times[0]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_on_padded_nan_batch(name):
    """float32 here; the float64 forward of every model, padding included, is checked in the Euler
    and midpoint tests below (the same compiled `_outputs` on the same batch)."""
    dtype = jnp.dtype(jnp.float32)
    times, values = _batch(dtype)
    model = MODELS[name](jax.random.key(0))
    out = _outputs(model, times, values, jax.random.split(jax.random.key(1), 3))
    assert out.shape == (3, OUT) and out.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(out)))
    # Padded rows are ignored, whatever values they hold.
    garbage = values.at[2, 3:].set(7.0)
    again = _outputs(model, times, garbage, jax.random.split(jax.random.key(1), 3))
    np.testing.assert_allclose(np.asarray(again), np.asarray(out), rtol=1e-6, atol=1e-6)


def _scalar_leaves(model):
    """A few parameters (one element of the first three inexact leaves and of the last)."""
    leaves = [x for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]
    return [0, 1, 2, len(leaves) - 1]


@pytest.mark.parametrize("name", _fast_first(sorted(MODELS), {"lnsde", "neural_cde"}))
def test_gradient_matches_finite_differences(name, x64):
    times, values = _batch(jnp.float64)
    model = MODELS[name](jax.random.key(2))
    keys = jax.random.split(jax.random.key(3), 3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, treedef = jax.tree.flatten(params)
    grads = jax.tree.leaves(_grad(model, times, values, keys))
    eps = 1e-6
    for i in _scalar_leaves(model):
        def at(delta):
            leaves = list(flat)
            leaves[i] = leaves[i].reshape(-1).at[0].add(delta).reshape(leaves[i].shape)
            return float(_value(eqx.combine(jax.tree.unflatten(treedef, leaves), static), times, values, keys))

        fd = (at(eps) - at(-eps)) / (2 * eps)
        assert abs(float(grads[i].reshape(-1)[0]) - fd) <= 1e-6 + 1e-5 * abs(fd), (i, grads[i].reshape(-1)[0], fd)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["neural_sde", "neural_cde"])
def test_reversible_adjoint_matches_checkpointed(name, x64):
    """Same solver (reversible Heun), two adjoints: the same gradients to float rounding. One SDE
    model (the most general one: a state-dependent diffusion net) and the CDE; the other SDE models
    differ only in their fields, which the adjoint treats as the same black box (their gradients
    are checked against finite differences above)."""
    times, values = _batch(jnp.float64)
    model = MODELS[name](jax.random.key(4), solver=sk.solvers.reversible_heun())
    keys = jax.random.split(jax.random.key(5), 3)
    reference = _grad(model, times, values, keys)
    reversible = _grad(dataclasses.replace(model, adjoint=sk.adjoint.Reversible()), times, values, keys)
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(reversible)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-10)


@eqx.filter_jit
def _euler_reference(model, times, values, key, drift, diffusion, padded_length):
    """Hand-written Euler--Maruyama in real time on the observation times of one unpadded
    series, with the increments of the model's Brownian tree (over index time [0, L - 1] for
    the padded length L, scaled by the square root of the spacing)."""
    path = model.path(times, values)
    n = times.shape[0]
    tree = sk.BrownianTree(key, 0.0, float(padded_length - 1), shape=(model.hidden_size,), tol=0.5, dtype=times.dtype)
    dws = tree.grid_increments(jnp.arange(padded_length, dtype=times.dtype)).W
    z = model.initial(path.evaluate(times[0]))
    for i in range(n - 1):
        dt = times[i + 1] - times[i]
        x = path.evaluate(times[i])
        z = z + drift(times[i], z, x) * dt + diffusion(times[i], z) * jnp.sqrt(dt) * dws[i]
    return model.readout(z)


class _Fields(eqx.Module):
    """The drift and diffusion of each SDE model in real time, as its docstring writes them."""

    model: eqx.Module
    name: str = eqx.field(static=True)

    def drift(self, t, z, x):
        m = self.model
        if self.name == "gsde":  # in y = log z
            return m.drift_net(t, z, x) - 0.5 * m.sigma(t, z.dtype) ** 2
        return m.drift_net(t, z, x)

    def diffusion(self, t, z):
        m = self.model
        return {"lnsde": lambda: m.sigma(t, z.dtype) * z, "lsde": lambda: m.sigma(t, z.dtype),
                "gsde": lambda: m.sigma(t, z.dtype), "neural_sde": lambda: m.diffusion_net(z)}[self.name]()


@pytest.mark.parametrize("name", _fast_first(SDES))
def test_sde_models_are_euler_on_the_observation_times(name, x64):
    """Index time with padding is Euler--Maruyama in real time on the observation times."""
    times, values = _batch(jnp.float64)
    model = MODELS[name](jax.random.key(6))
    key = jax.random.key(7)
    t, v = times[1, :5], values[1, :5]
    fields = _Fields(model, name)
    expected = _euler_reference(model, t, v, key, fields.drift, fields.diffusion, 7)
    keys = jnp.stack([jax.random.key(0), key, jax.random.key(0)])
    out = _outputs(model, times, values, keys)
    got = out[1]  # padded to 7: the same (shapes as in the forward test)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-10)
    _check_float64_forward(model, times, values, keys, out)


def _check_float64_forward(model, times, values, keys, out):
    """The forward test's checks in float64 (no new compile: the same `_outputs` call)."""
    assert out.shape == (3, OUT) and out.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(out)))
    again = _outputs(model, times, values.at[2, 3:].set(7.0), keys)
    np.testing.assert_allclose(np.asarray(again), np.asarray(out), rtol=1e-12, atol=1e-12)


@eqx.filter_jit
def _midpoint_reference(model, times, values):
    """The CDE dz/dt = f(z) X'(t) by the midpoint method in real time on the observation times."""
    path = model.path(times, values)
    z = model.initial(path.evaluate(times[0]))
    f = lambda z, t: model.field(z).reshape(H, C + 1) @ path.derivative(t)  # noqa: E731
    for i in range(times.shape[0] - 1):
        dt = times[i + 1] - times[i]
        z_mid = z + 0.5 * dt * f(z, times[i])
        z = z + dt * f(z_mid, times[i] + 0.5 * dt)
    return model.readout(z)


def test_neural_cde_is_the_midpoint_method_on_the_observation_times(x64):
    times, values = _batch(jnp.float64)
    model = MODELS["neural_cde"](jax.random.key(6))
    expected = _midpoint_reference(model, times[1, :5], values[1, :5])
    keys = jax.random.split(jax.random.key(0), 3)
    out = _outputs(model, times, values, keys)
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(expected), rtol=1e-10)
    _check_float64_forward(model, times, values, keys, out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lnsde"])
def test_backsolve_matches_checkpointed(name, x64):
    """The stochastic adjoint (continuous) against the discrete gradient of a Stratonovich Heun
    solve with 4 steps per (short) interval: equal up to the discretisation. On LNSDE's
    multiplicative noise, where the adjoint's diffusion terms matter (LSDE's additive noise is
    the easier case of the same code)."""
    rng = np.random.default_rng(1)
    times = jnp.asarray(np.cumsum(rng.uniform(0.05, 0.1, (2, 6)), axis=1))
    values = jnp.asarray(rng.normal(size=(2, 6, C)))
    model = MODELS[name](jax.random.key(11), solver=sk.solvers.heun_sde(), substeps=4)
    keys = jax.random.split(jax.random.key(12), 2)
    reference = jax.tree.leaves(_grad(model, times, values, keys))
    backsolve = jax.tree.leaves(_grad(dataclasses.replace(model, adjoint=sk.adjoint.Backsolve()), times, values, keys))
    scale = max(float(jnp.max(jnp.abs(g))) for g in reference)
    for a, b in zip(reference, backsolve):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-3 * scale)


def test_gsde_stays_positive(x64):
    """z = exp(y) > 0 along the path even when the drift pulls it down hard (gamma = -1 after
    the clipping) and the noise is large: z falls by orders of magnitude, never below 0."""
    model = MODELS["gsde"](jax.random.key(13))
    last = model.drift_net.mlp.layers[-1]
    down = eqx.tree_at(lambda m: (m.drift_net.mlp.layers[-1].weight, m.drift_net.mlp.layers[-1].bias, m.sigma.theta),
                       model, (jnp.zeros_like(last.weight), jnp.full_like(last.bias, -50.0), jnp.asarray(5.0)))
    times = jnp.arange(20.0)
    values = jnp.asarray(np.random.default_rng(2).normal(size=(20, C)))
    z = _trajectory(down, times, values, jax.random.key(14))
    assert z.shape == (20, H)
    assert bool(jnp.all(z > 0))
    assert float(jnp.max(z[-1] / z[0])) < 1e-3


def test_lnsde_structure(x64):
    """Zero drift and zero sigma: z stays at z0; zero drift alone: z(T) is linear in z0
    (linear multiplicative noise), for a fixed Brownian path."""
    times, values = _batch(jnp.float64)
    model = MODELS["lnsde"](jax.random.key(8))
    last = model.drift_net.mlp.layers[-1]
    no_drift = eqx.tree_at(lambda m: (m.drift_net.mlp.layers[-1].weight, m.drift_net.mlp.layers[-1].bias), model,
                           (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
    still = eqx.tree_at(lambda m: m.sigma.theta, no_drift, jnp.asarray(-jnp.inf))
    key = jax.random.key(9)
    z0 = _z0(model, times[0], values[0])
    np.testing.assert_array_equal(np.asarray(_final(still, times[0], values[0], key)), np.asarray(z0))
    doubled = eqx.tree_at(lambda m: (m.initial.weight, m.initial.bias), no_drift,
                          (2 * model.initial.weight, 2 * model.initial.bias))
    zt = _final(no_drift, times[0], values[0], key)
    assert not np.allclose(np.asarray(zt), np.asarray(z0))
    np.testing.assert_allclose(np.asarray(_final(doubled, times[0], values[0], key)), 2 * np.asarray(zt), rtol=1e-12)


@eqx.filter_jit
def _path_coeffs(model, times, values):
    return jax.vmap(lambda t, v: model.path(t, v).coeffs)(times, values)


def test_bad_input():
    """The model's checks (through its control path: no solve is compiled for them)."""
    model = MODELS["lnsde"](jax.random.key(10))
    keys = jax.random.split(jax.random.key(0), 2)
    times, values = jnp.tile(jnp.arange(4.0), (2, 1)), jnp.ones((2, 4, C))
    with pytest.raises(ValueError, match="data channels"):
        eqx.filter_eval_shape(_outputs, model, times, jnp.ones((2, 4, C + 1)), keys)
    with pytest.raises(ValueError, match="one series"):
        eqx.filter_eval_shape(model, jnp.arange(4.0)[None], jnp.ones((1, 4, C)), key=keys[0])
    with pytest.raises(Exception, match="strictly increasing"):
        _path_coeffs(model, times.at[1, 2].set(0.5), values)
    with pytest.raises(Exception, match="all NaN"):
        _path_coeffs(model, times, values.at[1].set(jnp.nan))
    with pytest.raises(TypeError, match="key"):
        skn.LNSDE(C, H, OUT)
