r"""The two differential equations a diffusion model defines, as sdekit problems.

- `probability_flow(model)`: the probability-flow ODE $dx/dt = \dot\alpha_t\hat x_0 + \dot\sigma_t\hat\epsilon$,
  whose solution from $t_{max}$ back to $t_{min}$ carries the prior to the data law; any sdekit
  ODE solver integrates it (`sk.solve(..., t0=t_max, t1=t_min)`), and the deterministic
  samplers are solvers of it.
- `reverse_sde(model, eta)`: the reverse-time SDEs $dx = [f x - \tfrac{1 + \eta^2}{2}g^2\nabla\log p_t]dt + \eta g\,d\bar W$
  (all with the model's marginals; $\eta = 1$ is Anderson's reverse SDE, $\eta = 0$ the
  probability-flow ODE), written in the forward time $s = -t$ (sdekit's SDE solves run
  forwards): solve it from $s = -t_{max}$ to $-t_{min}$ with a Brownian tree on that interval;
  the stochastic samplers are solvers of it.
"""

import equinox as eqx
import jax.numpy as jnp

import sdekit as sk

from ._model import Model


class ProbabilityFlow(eqx.Module):
    """The probability-flow vector field of `model`, `(t, x, args) -> dx/dt`."""

    model: Model

    def __call__(self, t, x, args):
        return self.model.velocity(x, t, args)


class ReverseDrift(eqx.Module):
    r"""Drift of the reverse-time SDE in $s = -t$: $\tfrac{1 + \eta^2}{2}g^2(t)\nabla\log p_t(x) - f(t)x$."""

    model: Model
    eta: float = 1.0

    def __call__(self, s, x, args):
        t = -jnp.asarray(s, x.dtype)
        sched = self.model.schedule
        f, g2 = sched.drift_coefficient(t).astype(x.dtype), sched.diffusion_squared(t).astype(x.dtype)
        weight = (1 + jnp.square(jnp.asarray(self.eta, x.dtype))) / 2
        return (weight * g2) * self.model.score(x, t, args) - f * x


class ReverseDiffusion(eqx.Module):
    r"""Diffusion of the reverse-time SDE: $\eta\,g(t)$ on every coordinate (additive noise)."""

    model: Model
    eta: float = 1.0

    def __call__(self, s, x, args):
        g2 = self.model.schedule.diffusion_squared(-jnp.asarray(s, x.dtype))
        return (jnp.asarray(self.eta, x.dtype) * jnp.sqrt(g2).astype(x.dtype)) * jnp.ones_like(x)


def probability_flow(model: Model) -> sk.ODE:
    r"""The probability-flow ODE of `model` as an `sk.ODE` in the schedule's time $t$.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, a: x, sched, prediction="x0")   # data law: a point mass... at x
        >>> ode = skd.probability_flow(model)
        >>> sol = sk.solve(ode, sk.solvers.tsit5(), 1.0, 1e-3, jnp.ones(2), controller=sk.PID(1e-6, 1e-6))
        >>> sol.ys.shape
        (1, 2)
    """
    if not isinstance(model, Model):
        raise TypeError(f"probability_flow needs an skd.Model; got {type(model).__name__}.")
    return sk.ODE(ProbabilityFlow(model))


def reverse_sde(model: Model, eta: float = 1.0) -> sk.SDE:
    r"""The reverse-time SDE of `model` in $s = -t$ (Itô, additive noise), for `sk.solve` forwards in $s$:

    $$dx = \bigl[\tfrac{1 + \eta^2}{2}g^2(t)\nabla\log p_t(x) - f(t)x\bigr]ds + \eta\,g(t)\,dW_s,$$

    $f = d\log\alpha/dt$, $g^2 = d\sigma^2/dt - 2f\sigma^2$. For every $\eta \ge 0$ its marginals are the
    model's ($\eta = 1$: Anderson's reverse SDE; $\eta = 0$: the probability-flow ODE), so any sdekit
    SDE solver samples it: Euler–Maruyama and Heun (strong order 1 on this additive noise),
    the SRK methods (`shark`, `sra1`: strong order 1.5, with a `levy="space-time"` tree), adaptively
    with `sk.PID` on those with an error estimate. The diffusion samplers (`skd.samplers`) read
    only the model from it and inject noise with their own `eta`.

    Args:
        model: an `skd.Model`.
        eta: the noise scale $\eta \ge 0$ (a number; traced values are fine).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk, sdekit.diffusion as skd
        >>> model = skd.Model(lambda x, t, a: jnp.zeros_like(x), skd.VP.linear(), prediction="x0")
        >>> sde = skd.reverse_sde(model)
        >>> tree = sk.BrownianTree(jax.random.key(0), -1.0, -1e-3, shape=(2,), tol=2**-14)
        >>> sol = sk.solve(sde, sk.solvers.euler_maruyama(), -1.0, -1e-3, jnp.ones(2), dt0=1e-3, brownian=tree)
        >>> bool(jnp.all(jnp.abs(sol.ys[-1]) < 0.1))   # the data law is a point mass at 0 (sigma_t = 0.01 left)
        True
    """
    if not isinstance(model, Model):
        raise TypeError(f"reverse_sde needs an skd.Model; got {type(model).__name__}.")
    if isinstance(eta, (int, float)) and not eta >= 0:
        raise ValueError(f"reverse_sde needs eta >= 0; got {eta}.")
    return sk.SDE(ReverseDrift(model, eta), ReverseDiffusion(model, eta), noise="additive", calculus="ito")
