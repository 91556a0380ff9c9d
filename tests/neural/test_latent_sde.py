"""`LatentSDE`: the path KL against closed forms (exact and Monte Carlo), the ELBO's pieces and
gradients, sampling, bad input."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdekit as sk
from sdekit import neural as skn
from sdekit.neural._latent_sde import gaussian_kl

C, HIDDEN, LATENT = 2, 6, 3


class _Linear(eqx.Module):
    theta: float
    shift: float = 0.0

    def __call__(self, t, z, context=None):
        return -self.theta * z + self.shift


class _Constant(eqx.Module):
    g: float

    def __call__(self, t, z):
        return jnp.full_like(z, self.g)


def _ou_model(theta_q, theta_p, g, shift=0.0, mean=0.5, **options):
    """Posterior drift -theta_q z + shift, prior -theta_p z, constant g, and q(z0) = N(mean, e^-30)."""
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(0), **options)
    bias = jnp.concatenate([jnp.full(LATENT, mean), jnp.full(LATENT, -30.0)])
    return eqx.tree_at(lambda m: (m.posterior, m.prior, m.diffusion_net, m.to_q0.weight, m.to_q0.bias), model,
                       (_Linear(theta_q, shift), _Linear(theta_p), _Constant(g), jnp.zeros_like(model.to_q0.weight),
                        bias))


@eqx.filter_jit
def _elbo(model, times, values, keys):
    return jax.vmap(lambda t, v, k: model.negative_elbo(t, v, key=k))(times, values, keys)


def test_path_kl_is_exact_for_a_constant_drift_gap(x64):
    """Posterior drift = prior drift + c with constant g: the integrand (c/g)^2/2 is constant,
    so the KL state is (c/g)^2/2 * latent * (t_last - t_0) on every path, with irregular times
    and padding (which adds nothing)."""
    model = _ou_model(1.0, 1.0, 0.5, shift=0.3)
    times = jnp.asarray([[0.0, 0.4, 1.1, 1.5, 2.5], [0.2, 0.9, 1.0, 1.0, 1.0]])
    values = jnp.ones((2, 5, C)).at[1, 3:].set(jnp.nan)
    _, aux = _elbo(model, times, values, jax.random.split(jax.random.key(1), 2))
    expected = 0.5 * (0.3 / 0.5) ** 2 * LATENT * np.array([2.5, 0.8])
    np.testing.assert_allclose(np.asarray(aux["kl_path"]), expected, rtol=1e-12)


@pytest.mark.slow
def test_path_kl_matches_the_ou_closed_form_in_expectation(x64):
    """Posterior dz = -a z dt + g dW, prior drift -b z: E KL = (b - a)^2 / (2 g^2) * latent *
    int_0^T E z_t^2 dt with E z_t^2 = m^2 e^{-2at} + g^2 (1 - e^{-2at}) / (2a). Monte Carlo over
    2000 paths (Euler, 100 steps): within 4 standard errors plus the O(h) Riemann bias (1.5%); a
    wrong factor of 2 (in the KL, g or the noise) is far outside."""
    a, b, g, m, horizon = 1.0, 2.0, 0.5, 0.5, 1.0
    model = _ou_model(a, b, g, mean=m, substeps=25)
    n = 2000
    times = jnp.tile(jnp.linspace(0.0, horizon, 5), (n, 1))
    values = jnp.zeros((n, 5, C))
    _, aux = _elbo(model, times, values, jax.random.split(jax.random.key(2), n))
    decay = 1 - np.exp(-2 * a * horizon)
    second_moment = m**2 * decay / (2 * a) + g**2 / (2 * a) * (horizon - decay / (2 * a))
    expected = (b - a) ** 2 / (2 * g**2) * LATENT * second_moment
    kl = np.asarray(aux["kl_path"])
    se = kl.std() / np.sqrt(n)
    assert abs(kl.mean() - expected) < 4 * se + 0.015 * expected, (kl.mean(), expected, se)


def test_gaussian_kl_closed_form():
    # KL(N(1, 2^2) || N(0, 1)) = (4 + 1 - 1) / 2 - log 2
    value = gaussian_kl(jnp.array([1.0]), jnp.log(jnp.array([2.0])), jnp.zeros(1), jnp.zeros(1))
    np.testing.assert_allclose(float(value), 2.0 - np.log(2.0), rtol=1e-6)


def _batch(dtype):
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.2, 0.8, (3, 6)), axis=1)
    times[1, 4:] = times[1, 3]
    values = rng.normal(size=(3, 6, C))
    values[0, 2, 0] = values[1, 4:] = values[2, 0, 1] = np.nan
    return jnp.asarray(times, dtype), jnp.asarray(values, dtype)


def test_elbo_on_padded_nan_batch():
    """float32 (x64 off); in float64 the ELBO runs in the finite-difference and exact-KL tests."""
    dtype = jnp.dtype(jnp.float32)
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(4))
    times, values = _batch(dtype)
    loss, aux = _elbo(model, times, values, jax.random.split(jax.random.key(5), 3))
    assert loss.shape == (3,) and loss.dtype == dtype
    for v in (loss, aux["nll"], aux["kl0"], aux["kl_path"]):
        assert bool(jnp.all(jnp.isfinite(v)))
    np.testing.assert_allclose(np.asarray(loss), np.asarray(aux["nll"] + aux["kl0"] + aux["kl_path"]), rtol=1e-5)


@pytest.mark.slow
def test_head_on_padded_nan_batch():
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(4), out_size=2)
    times, values = _batch(jnp.float32)
    logits = eqx.filter_jit(jax.vmap(lambda t, v, k: model(t, v, key=k)))(times, values,
                                                                          jax.random.split(jax.random.key(5), 3))
    assert logits.shape == (3, 2) and bool(jnp.all(jnp.isfinite(logits)))


def test_elbo_gradient_matches_finite_differences(x64):
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(6))
    times, values = _batch(jnp.float64)
    keys = jax.random.split(jax.random.key(7), 3)

    def loss(m):
        return jnp.sum(_elbo(m, times, values, keys)[0])

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    value = eqx.filter_jit(loss)
    eps = 1e-6
    for where in (lambda m: m.p0_mean, lambda m: m.obs_log_std, lambda m: m.decoder.weight,
                  lambda m: m.diffusion_net.c, lambda m: m.posterior.mlp.layers[0].weight):
        leaf = where(model)

        def at(delta):
            return float(value(eqx.tree_at(where, model, leaf.reshape(-1).at[0].add(delta).reshape(leaf.shape))))

        fd = (at(eps) - at(-eps)) / (2 * eps)
        got = float(where(grads).reshape(-1)[0])
        assert abs(got - fd) <= 1e-5 + 1e-5 * abs(fd), (got, fd)


def test_sample_interpolates_and_forecasts():
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(8))
    times, values = _batch(jnp.float32)
    predict = jnp.array([times[0, 2], times[0, -1] + 2.0, times[0, 0] - 1.0, times[0, 1] + 0.1])
    draw = eqx.filter_jit(jax.vmap(lambda k: model.sample(times[0], values[0], predict, key=k)))
    samples = draw(jax.random.split(jax.random.key(9), 16))
    assert samples.shape == (16, 4, C) and bool(jnp.all(jnp.isfinite(samples)))
    spread = np.asarray(samples.std(axis=0))
    assert spread[1].min() > 0  # the forecast is random
    # Before the first observation: the decoded initial state, whose q has a positive spread too.
    assert spread[2].min() > 0


def test_bad_input():
    model = skn.LatentSDE(C, HIDDEN, LATENT, key=jax.random.key(10))
    times, values = jnp.arange(4.0), jnp.ones((4, C))
    with pytest.raises(TypeError, match="out_size"):
        model(times, values, key=jax.random.key(0))
    with pytest.raises(ValueError, match="Reversible"):
        dataclasses.replace(model, adjoint=sk.adjoint.Reversible()).negative_elbo(times, values, key=jax.random.key(0))
    with pytest.raises(ValueError, match="data channels"):
        model.negative_elbo(times, jnp.ones((4, C + 1)), key=jax.random.key(0))
