r"""EDM's Heun sampler (Karras et al., NeurIPS 2022, Algorithms 1 and 2).

In $\rho = \sigma/\alpha$ and $y = x/\alpha$ the probability-flow ODE is $dy/d\rho = (y - \hat x_0)/\rho$
(for `skd.EDM`, $\rho = \sigma = t$ and $y = x$). A step from $\rho_s$ to $\rho_t$:

1. (Alg. 2, "churn") if $S_{tmin} \le \rho_s \le S_{tmax}$: $\gamma = \min(S_{churn}/N, \sqrt2 - 1)$,
   $\hat\rho = (1 + \gamma)\rho_s$, $\hat y = y + \sqrt{\hat\rho^2 - \rho_s^2}\,S_{noise}\,z$;
2. Euler: $y_E = \hat y + (\rho_t - \hat\rho)\,d(\hat y, \hat\rho)$, $d(y, \rho) = (y - \hat x_0)/\rho$;
3. Heun's correction $y_t = \hat y + (\rho_t - \hat\rho)(d(\hat y,\hat\rho) + d(y_E, \rho_t))/2$,
   skipped on a last step to $\rho_t = 0$ (plain Euler there, which returns $\hat x_0$).

Order 2; two model evaluations per step (one on the step to $\sigma = 0$: N steps cost 2N - 1).
"""

import functools
import math

import jax
import jax.numpy as jnp

import sdekit as sk

from . import _common as c


def _init(problem, t0, y0, args):
    c.check_state(y0, "heun")
    return sk.solvers.EmptyState()


def _slope(model, y, t: c.Point, args):
    # d(y, rho) = (y - x0(alpha y, t)) / rho, with rho = sigma / alpha.
    x0 = model.x0(t.alpha * y, t.t, args)
    return (y - x0) * (t.alpha / t.sigma), x0


def _step(name, churn, steps, s_tmin, s_tmax, s_noise, problem, tau0, tau1, x0_in, args, inc, state):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, name)
    dtype = x0_in.dtype
    s, t = c.point(model, t0, dtype), c.point(model, t1, dtype)
    y = x0_in / s.alpha
    if inc is not None:
        rho_s = s.sigma / s.alpha
        gamma = jnp.where((rho_s >= s_tmin) & (rho_s <= s_tmax), min(churn / steps, math.sqrt(2) - 1), 0.0)
        gamma = gamma.astype(dtype)
        rho_hat = rho_s * (1 + gamma)
        # sqrt(rho_hat^2 - rho_s^2), written so that it is exactly 0 (not NaN) without churn.
        y = y + rho_s * jnp.sqrt(gamma * (2 + gamma)) * s_noise * c.standard_noise(inc, dtype)
        t_hat = jnp.where(gamma > 0, model.schedule.t_of_log_snr(-jnp.log(rho_hat)).astype(dtype), s.t)
        s = c.point(model, t_hat, dtype)
    rho_s, rho_t = s.sigma / s.alpha, t.sigma / t.alpha
    d_s, x0_s = _slope(model, y, s, args)
    y_euler = y + (rho_t - rho_s) * d_s

    def corrected(_):
        d_t, _ = _slope(model, y_euler, t, args)
        return y + (rho_t - rho_s) * 0.5 * (d_s + d_t)

    # The correction needs a model evaluation: skip it (not just mask it) on the step to sigma = 0.
    y_t = jax.lax.cond(t.sigma == 0, lambda _: y_euler, corrected, None)
    x1 = c.at_data_end(t, x0_s, t.alpha * y_t)
    return x1, None, sk.solvers.LinearDense(x0_in, x1), state


@functools.cache
def heun(churn: float = 0.0, steps: int | None = None, s_tmin: float = 0.0, s_tmax: float = math.inf,
         s_noise: float = 1.0):
    r"""EDM's Heun sampler (Karras et al. 2022): Algorithm 1, or Algorithm 2 with `churn > 0`.

    Args:
        churn: $S_{churn}$; with `churn > 0` each step first adds noise (a solver of
            `skd.reverse_sde(model)`); then `steps` (the grid's number of steps, $N$) is needed
            for $\gamma = \min(S_{churn}/N, \sqrt2 - 1)$.
        s_tmin, s_tmax: churn only where $\rho_s = \sigma_s/\alpha_s$ lies in $[S_{tmin}, S_{tmax}]$.
        s_noise: $S_{noise}$, the churn noise's scale (1.003 in EDM's ImageNet setting).

    Order 2 (deterministic); two evaluations per step, one on a final step to $\sigma = 0$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.EDM()
        >>> model = skd.Model(lambda x, t, a: jnp.zeros_like(x), sched, prediction="x0")
        >>> x_T = sched.prior(jax.random.key(0), (3,))
        >>> x0 = skd.sample(model, skd.samplers.heun(), x_T, skd.time_grid(sched, 18, "karras", zero_end=True))
        >>> bool(jnp.all(x0 == 0))
        True
    """
    if not churn >= 0:
        raise ValueError(f"heun needs churn >= 0; got {churn}.")
    name = "heun" if churn == 0 else "heun_churn"
    if churn == 0:
        step = functools.partial(_step, name, 0.0, 1, s_tmin, s_tmax, s_noise)
        return c.deterministic(name, _init, step, order=2, fevals_per_step=2)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError("heun(churn > 0) needs steps=N, the grid's number of steps (gamma = min(churn / N, sqrt 2 - 1)).")
    step = functools.partial(_step, name, float(churn), steps, s_tmin, s_tmax, s_noise)
    return c.stochastic(name, _init, step, weak_order=1.0, fevals_per_step=2)
