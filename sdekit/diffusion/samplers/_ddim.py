r"""DDIM (Song, Meng & Ermon 2021), and k-diffusion's Euler and Euler-ancestral samplers, which
are the same update.

From $s$ to $t$ with the data and noise predictions $\hat x_0, \hat\epsilon$ at $(x_s, s)$:

$$x_t = \alpha_t\hat x_0 + \sqrt{\sigma_t^2 - c^2}\,\hat\epsilon + c\,z, \qquad
  c = \min\bigl(\sigma_t,\ \eta\,\sigma_t\sqrt{1 - e^{-2h}}\bigr),$$

with $z \sim N(0, I)$ from the Brownian increment. $\eta = 0$ is DDIM, which is DPM-Solver-1 and
Euler's method for $dy/d\rho = \hat\epsilon$ in $\rho = \sigma/\alpha$, $y = x/\alpha$ (k-diffusion's
`sample_euler`; for $\alpha = 1 - t$, $\sigma = t$ also Euler in $t$ on the flow velocity).
$\eta = 1$ is DDPM's ancestral step, and k-diffusion's `sample_euler_ancestral(eta)` is this update
in $\rho$ with its $\sigma_{up} = c/\alpha_t$, $\sigma_{down} = \sqrt{\sigma_t^2 - c^2}/\alpha_t$.
Order 1 (deterministic), weak order 1 (stochastic); one model evaluation per step.
"""

import functools

import jax.numpy as jnp

import sdekit as sk

from . import _common as c


def _init(problem, t0, y0, args):
    c.check_state(y0, "ddim")
    return sk.solvers.EmptyState()


def _update(problem, tau0, tau1, x, args, inc, eta, name):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, name)
    s, t = c.point(model, t0, x.dtype), c.point(model, t1, x.dtype)
    x0, eps = model.x0_and_eps(x, s.t, args)
    if inc is None:
        x1 = t.alpha * x0 + t.sigma * eps
    else:
        noise_scale = jnp.minimum(t.sigma, eta * t.sigma * jnp.sqrt(-jnp.expm1(2 * jnp.log(c.exp_neg_h(s, t)))))
        x1 = t.alpha * x0 + jnp.sqrt(t.sigma**2 - noise_scale**2) * eps + noise_scale * c.standard_noise(inc, x.dtype)
    return c.at_data_end(t, x0, x1)


def _deterministic_step(name, problem, t0, t1, y0, args, inc, state):
    y1 = _update(problem, t0, t1, y0, args, None, 0.0, name)
    return y1, None, sk.solvers.LinearDense(y0, y1), state


def _stochastic_step(name, eta, problem, t0, t1, y0, args, inc, state):
    y1 = _update(problem, t0, t1, y0, args, inc, eta, name)
    return y1, None, sk.solvers.LinearDense(y0, y1), state


@functools.cache
def _deterministic(name):
    return c.deterministic(name, _init, functools.partial(_deterministic_step, name), order=1, fevals_per_step=1)


def ddim(eta: float = 0.0):
    r"""DDIM (Song, Meng & Ermon, ICLR 2021): order 1, one model evaluation per step.

    `eta = 0` is deterministic (a solver of `skd.probability_flow(model)`); `eta > 0` injects
    noise (a solver of `skd.reverse_sde(model)`, weak order 1; `eta = 1` is DDPM's ancestral
    sampler). See this module's docstring for the update.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, a: jnp.zeros_like(x), sched, prediction="x0")
        >>> x_T = sched.prior(jax.random.key(0), (4,))
        >>> x0 = skd.sample(model, skd.samplers.ddim(), x_T, skd.time_grid(sched, 10))
        >>> bool(jnp.all(jnp.abs(x0) < 0.05))   # the data law is a point mass at 0 (x0 is at t = 1e-3)
        True
    """
    if not eta >= 0:
        raise ValueError(f"ddim needs eta >= 0; got {eta}.")
    if eta == 0:
        return _deterministic("ddim")
    return _stochastic("ddim", float(eta))


@functools.cache
def _stochastic(name, eta):
    return c.stochastic(name, _init, functools.partial(_stochastic_step, name, eta), weak_order=1.0, fevals_per_step=1)


def euler():
    r"""k-diffusion's Euler sampler (Karras et al. 2022, Alg. 1 without the Heun correction):
    Euler's method in $\rho = \sigma/\alpha$ on $y = x/\alpha$, which is DDIM (`ddim()`), and, for
    `skd.Flow`, Euler in $t$ on the velocity. Order 1, one evaluation per step.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> skd.samplers.euler().order
        1
    """
    return _deterministic("euler")


def euler_ancestral(eta: float = 1.0):
    r"""k-diffusion's Euler-ancestral sampler: the `ddim(eta)` update with
    $c = \min(\sigma_t, \eta\sigma_t\sqrt{1 - e^{-2h}})$ (the minimum matters for `eta > 1`).
    A solver of `skd.reverse_sde(model)`; weak order 1.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> skd.samplers.euler_ancestral().sde.weak("additive")
        1.0
    """
    if not eta > 0:
        raise ValueError(f"euler_ancestral needs eta > 0 (eta = 0 is euler()); got {eta}.")
    return _stochastic("euler_ancestral", float(eta))
