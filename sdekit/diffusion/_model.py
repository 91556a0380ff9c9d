r"""A denoising network with its parameterisation: exact conversions between every form.

With $x = \alpha x_0 + \sigma\epsilon$ (the forward marginal), a network's output fixes the
other forms exactly:

- `"eps"`: $\epsilon$; then $x_0 = (x - \sigma\epsilon)/\alpha$.
- `"x0"`: the data prediction $E[x_0 \mid x_t]$; then $\epsilon = (x - \alpha x_0)/\sigma$.
- `"v"`: $v = \alpha\epsilon - \sigma x_0$ (Salimans & Ho 2022);
  $x_0 = (\alpha x - \sigma v)/(\alpha^2 + \sigma^2)$.
- `"score"`: $\nabla\log p_t(x) = -\epsilon/\sigma$.
- `"velocity"`: the probability-flow velocity $u = \dot\alpha x_0 + \dot\sigma\epsilon$ (flow matching);
  $x_0 = (\dot\sigma x - \sigma u)/(\alpha\dot\sigma - \sigma\dot\alpha)$.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._schedules import EDM, Schedule

PREDICTIONS = ("eps", "x0", "v", "score", "velocity")


class Threshold(eqx.Module):
    r"""Dynamic thresholding of the data prediction (Saharia et al. 2022; DPM-Solver++):
    $s = \max(1, \min(q_{ratio}(|x_0|), \text{max\_value}))$, then $x_0 \leftarrow \text{clip}(x_0, -s, s)/s$.

    The quantile is taken per sample over all axes but the first when $x_0$ has two or more
    axes (a batch), else over the whole array (a single sample, e.g. under `vmap`).
    """

    ratio: float = eqx.field(static=True, default=0.995)
    max_value: float = eqx.field(static=True, default=1.0)

    def __call__(self, x0: Array) -> Array:
        flat = jnp.abs(x0.reshape(x0.shape[0], -1) if x0.ndim >= 2 else x0.reshape(1, -1))
        s = jnp.quantile(flat, self.ratio, axis=1)
        s = jnp.clip(s, 1.0, self.max_value) if self.max_value >= 1.0 else jnp.ones_like(s)
        s = s.reshape((-1,) + (1,) * (x0.ndim - 1)) if x0.ndim >= 2 else s.reshape(())
        return jnp.clip(x0, -s, s) / s


class Model(eqx.Module):
    r"""A diffusion model: a network `fn(x, t, args)` with its schedule and parameterisation.

    Args:
        fn: any callable `fn(x, t, args)` (an equinox module, a flax `apply` closure, a plain
            function); `t` is the schedule's time (for `skd.EDM`, $\sigma$).
        schedule: the `skd` schedule the network was trained with.
        prediction: what `fn` returns: `"eps"`, `"x0"`, `"v"`, `"score"` or `"velocity"`.
        threshold: an optional `skd.Threshold` applied to the data prediction (`x0`), and so to
            the samplers that use it (DPM-Solver++, UniPC, DDIM in data form).

    Examples:
        >>> import jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, args: 0.5 * x, sched, prediction="eps")
        >>> x, t = jnp.ones(2), 0.5
        >>> bool(jnp.allclose(sched.alpha(t) * model.x0(x, t) + sched.sigma(t) * model.eps(x, t), x))
        True
    """

    fn: Callable
    schedule: Schedule
    prediction: str = eqx.field(static=True, default="eps")
    threshold: Threshold | None = None

    def __check_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}; got {self.prediction!r}.")
        if not isinstance(self.schedule, Schedule):
            raise TypeError(f"schedule must be an skd schedule (VP, VE, EDM, Flow); got {type(self.schedule).__name__}.")

    def _coefficients(self, x, t):
        t = jnp.asarray(t, x.dtype)
        return t, self.schedule.alpha(t).astype(x.dtype), self.schedule.sigma(t).astype(x.dtype)

    def x0_and_eps(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> tuple[Array, Array]:
        """The data and noise predictions at `(x, t)` from one network evaluation (thresholded
        data prediction, and the noise prediction consistent with it, if `threshold` is set)."""
        if self.threshold is None:
            return self._raw(x, t, args)
        _, alpha, sigma = self._coefficients(x, t)
        x0 = self.threshold(self._raw(x, t, args)[0])
        return x0, (x - alpha * x0) / sigma

    def _raw(self, x, t, args):
        t, alpha, sigma = self._coefficients(x, t)
        out = self.fn(x, t, args)
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(
                f"the model returned shape {out.shape} and dtype {out.dtype} for an input of shape {x.shape} "
                f"and dtype {x.dtype}; it must return the input's shape and dtype.")
        p = self.prediction
        if p == "eps":
            return (x - sigma * out) / alpha, out
        if p == "x0":
            return out, (x - alpha * out) / sigma
        if p == "score":
            eps = -sigma * out
            return (x - sigma * eps) / alpha, eps
        if p == "v":
            norm = alpha**2 + sigma**2
            return (alpha * x - sigma * out) / norm, (sigma * x + alpha * out) / norm
        dalpha, dsigma = (d.astype(x.dtype) for d in self.schedule.derivatives(t))
        det = alpha * dsigma - sigma * dalpha
        return (dsigma * x - sigma * out) / det, (alpha * out - dalpha * x) / det

    def x0(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> Array:
        r"""The data prediction $\hat x_0 = E[x_0 \mid x_t = x]$ (thresholded if `threshold` is set)."""
        if self.prediction == "x0" and self.threshold is None:
            return self.fn(x, jnp.asarray(t, x.dtype), args)
        return self.x0_and_eps(x, t, args)[0]

    def eps(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> Array:
        r"""The noise prediction $\hat\epsilon$ (consistent with a thresholded `x0` if `threshold` is set)."""
        if self.prediction == "eps" and self.threshold is None:
            return self.fn(x, jnp.asarray(t, x.dtype), args)
        return self.x0_and_eps(x, t, args)[1]

    def score(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> Array:
        r"""$\nabla_x \log p_t(x) = -\hat\epsilon/\sigma_t$."""
        _, _, sigma = self._coefficients(x, t)
        return -self.eps(x, t, args) / sigma

    def v(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> Array:
        r"""$v = \alpha_t\hat\epsilon - \sigma_t\hat x_0$."""
        _, alpha, sigma = self._coefficients(x, t)
        x0, eps = self.x0_and_eps(x, t, args)
        return alpha * eps - sigma * x0

    def velocity(self, x: Array, t: Float[ArrayLike, ""], args: Any = None) -> Array:
        r"""The probability-flow ODE's vector field $dx/dt = \dot\alpha_t\hat x_0 + \dot\sigma_t\hat\epsilon$."""
        t_, _, _ = self._coefficients(x, t)
        dalpha, dsigma = (d.astype(x.dtype) for d in self.schedule.derivatives(t_))
        x0, eps = self.x0_and_eps(x, t, args)
        return dalpha * x0 + dsigma * eps


class _Guided(eqx.Module):
    cond: Model
    uncond: Model
    scale: Any

    def __call__(self, x, t, args):
        e_c, e_u = self.cond.eps(x, t, args), self.uncond.eps(x, t, args)
        return e_u + jnp.asarray(self.scale, x.dtype) * (e_c - e_u)


def guided(cond: Model, uncond: Model, scale: Float[ArrayLike, ""]) -> Model:
    r"""Classifier-free guidance (Ho & Salimans 2022): $\epsilon = \epsilon_u + w(\epsilon_c - \epsilon_u)$.

    `cond` and `uncond` are models of one schedule (they may share a network and differ in
    `args` handling, e.g. `lambda x, t, args: net(x, t, args["label"])` and one ignoring it).

    Examples:
        >>> import jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> c = skd.Model(lambda x, t, a: jnp.ones_like(x), sched)
        >>> u = skd.Model(lambda x, t, a: jnp.zeros_like(x), sched)
        >>> skd.guided(c, u, 3.0).eps(jnp.zeros(2), 0.5)
        Array([3., 3.], dtype=float32)
    """
    same = eqx.tree_equal(cond.schedule, uncond.schedule)
    if not isinstance(same, jax.core.Tracer) and not bool(same):  # (traced leaves: cannot tell)
        raise ValueError("guided: cond and uncond must use the same schedule.")
    return Model(_Guided(cond, uncond, scale), cond.schedule, prediction="eps")


def edm_denoiser(network: Callable, schedule: EDM) -> Model:
    r"""An EDM-preconditioned network as a model: $D(x;\sigma) = c_{skip}x + c_{out}F(c_{in}x, c_{noise})$.

    `network(x, c_noise, args)` is the raw $F_\theta$ of Karras et al. (2022), Sec. 5.
    """
    return Model(_EDMPreconditioned(network, schedule), schedule, prediction="x0")


class _EDMPreconditioned(eqx.Module):
    network: Callable
    schedule: EDM

    def __call__(self, x, t, args):
        c_skip, c_out, c_in, c_noise = (c.astype(x.dtype) for c in self.schedule.preconditioning(t))
        return c_skip * x + c_out * self.network(c_in * x, c_noise, args)
