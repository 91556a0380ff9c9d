r"""Shared pieces of the models: the stable classes' $\zeta$ and drift network, the time-only
diffusion scale $\sigma(t)$, input checks and the control path of one series."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._interpolate import ControlPath, check_observed, interpolate, last_knot


def time_features(t) -> Float[Array, "2"]:
    r"""$(\sin t, \cos t)$, the time features of Oh, Lim & Kim (2024)."""
    return jnp.stack([jnp.sin(t), jnp.cos(t)])


class StableDrift(eqx.Module):
    r"""$\gamma(t, \tilde z)$ with $\tilde z = \zeta(t, z, X(t))$ (Oh, Lim & Kim 2024):

    $\tilde z = W_e\,[\,W_i\,(\sin t, \cos t, z) + b_i;\ W_x X(t) + b_x\,] + b_e$ (without the time
    features when `time_features=False`), then $\gamma = \tanh(\mathrm{MLP}(\mathrm{ReLU}(\tilde
    z)))$: `depth - 1` hidden ReLU layers of `width`, a linear output and the tanh clipping.
    With `clip=False` the tanh is left out (the naive neural SDE)."""

    inner: eqx.nn.Linear
    control: eqx.nn.Linear
    embed: eqx.nn.Linear
    mlp: eqx.nn.MLP
    time_features: bool = eqx.field(static=True)
    clip: bool = eqx.field(static=True)

    def __init__(self, path_size, hidden_size, width, depth, *, time_features=True, clip=True, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.time_features, self.clip = time_features, clip
        self.inner = eqx.nn.Linear(hidden_size + (2 if time_features else 0), width, key=k1)
        self.control = eqx.nn.Linear(path_size, width, key=k2)
        self.embed = eqx.nn.Linear(2 * width, width, key=k3)
        self.mlp = eqx.nn.MLP(width, hidden_size, width, max(depth - 1, 0), activation=jax.nn.relu, key=k4)

    def __call__(self, t, z, x):
        inner = jnp.concatenate([time_features(t).astype(z.dtype), z]) if self.time_features else z
        zeta = self.embed(jnp.concatenate([self.inner(inner), self.control(x)]))
        out = self.mlp(jax.nn.relu(zeta))
        return jnp.tanh(out) if self.clip else out


class TimeScale(eqx.Module):
    r"""$\sigma(t) = \mathrm{sigmoid}(\theta)\,\tanh(\mathrm{softplus}(\mathrm{MLP}(\sin t,
    \cos t)))$, in $[0, 1)$ per dimension: a learnable time-only diffusion scale, bounded by
    the sigmoid-scaled tanh as in the Stable-Neural-SDEs repository (which uses a ReLU where
    the softplus is: dimensions whose ReLU starts at zero never get a gradient)."""

    mlp: eqx.nn.MLP
    theta: Float[Array, ""]

    def __init__(self, hidden_size, width, *, key):
        self.mlp = eqx.nn.MLP(2, hidden_size, width, 1, activation=jax.nn.relu, key=key)
        self.theta = jnp.zeros(())

    def __call__(self, t, dtype):
        return jax.nn.sigmoid(self.theta) * jnp.tanh(jax.nn.softplus(self.mlp(time_features(t).astype(dtype))))


def root(h):
    r"""$\sqrt{h}$ with a finite derivative at the padding's $h = 0$ (zero there)."""
    positive = h > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, h, 1)), 0)


def control_path(times, values, in_size: int, method: str) -> ControlPath:
    """The interpolated path of one series with time as its first channel, after shape checks."""
    times, values = jnp.asarray(times), jnp.asarray(values)
    if times.ndim != 1 or values.ndim != 2:
        raise ValueError(
            f"A model is called on one series: times of shape (L,) and values of shape (L, C); got "
            f"{times.shape} and {values.shape} (jax.vmap the model over a batch)."
        )
    if values.shape[1] != in_size:
        raise ValueError(f"The model was built for {in_size} data channels (in_size), got values with {values.shape[1]}.")
    values = values.astype(_float_dtype(values.dtype))
    times = times.astype(values.dtype) if jnp.issubdtype(times.dtype, jnp.integer) else times
    if times.dtype != values.dtype:
        times = times.astype(values.dtype)
    if times.shape[0] > 1:  # (the time channel is always observed: check the data channels)
        values = check_observed(values, last_knot(times))
    return interpolate(times, jnp.concatenate([times[:, None], values], axis=1), method)


def _float_dtype(dtype):
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def split_key(key: PRNGKeyArray | None, n: int):
    if key is None:
        raise TypeError("Pass key=jax.random.key(...) to initialise the model's parameters.")
    return jax.random.split(key, n)
