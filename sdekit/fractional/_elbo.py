r"""The evidence lower bound of a fractional SDE's variational posterior, for noisy observations."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

from ._augment import FractionalSDE


class Elbo(NamedTuple):
    """A Monte Carlo ELBO and its two terms (each the mean over samples).

    Attributes:
        value: `log_likelihood - kl`, the bound to maximise.
        log_likelihood: $\\mathbb{E}_q \\sum_i \\log N(x^{\\text{obs}}_i; X_{t_i}, \\sigma^2)$.
        kl: $\\mathbb{E}_q \\int \\tfrac12|u|^2dt$, the KL divergence of the posterior path
            measure from the prior's.
    """

    value: Float[Array, ""]
    log_likelihood: Float[Array, ""]
    kl: Float[Array, ""]


def elbo(
    model: FractionalSDE,
    x0: Float[ArrayLike, "*d"],
    t0,
    ts: Float[ArrayLike, " n"],
    observations: Float[ArrayLike, "n *d"],
    obs_std,
    key,
    *,
    n_samples: int,
    solver=None,
    dt0,
    tol=None,
    args=None,
    adjoint=None,
) -> Elbo:
    r"""The evidence lower bound $\mathbb{E}_q[\log p(\text{obs}\mid X)] - \mathrm{KL}(q\,\|\,p)$
    of the posterior `model` (a `FractionalSDE` with a `control`) for observations
    $x^{\text{obs}}_i = X_{t_i} + \sigma\varepsilon_i$, estimated with `n_samples` paths.

    Sample $j$ draws its type-I initial OU state and its `sk.BrownianTree` from
    `jax.random.fold_in(key, j)`, so the estimate is a deterministic, differentiable function
    of the model's arrays (control weights, Hurst index, drift parameters) for a fixed key
    (common random numbers across optimiser steps with the same key). Missing observations
    are NaN and contribute nothing. The prior is `model` without its control; the posterior
    shares the prior's initial law, so the KL is the path term alone (Girsanov).

    Args:
        model: the posterior `FractionalSDE` (`control` set; without it the KL is 0).
        x0: the initial value of $X$.
        t0: the initial time (a Python number).
        ts: the observation times, increasing, in $(t_0, t_1]$ with $t_1$ = `ts[-1]` (a NumPy or
            concrete JAX array: not traced, since they fix the Brownian trees' depth).
        observations: shape `(len(ts), *x0.shape)`; NaN where missing.
        obs_std: the observation noise $\sigma > 0$ (scalar or like `x0`).
        key: a PRNG key.
        n_samples: the number of posterior paths.
        solver: an SDE solver for the augmented SDE (default `sk.solvers.euler_maruyama()`).
        dt0: the fixed step; keep $\gamma_{\max}\,dt_0 < 0.5$.
        tol: the Brownian tree's resolution (default `dt0 / 2`).
        args: passed to drift, diffusion and control.
        adjoint: the `sk.adjoint` for gradients (default checkpointed).

    Returns:
        An `Elbo` (value, log_likelihood, kl).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit import fractional as skf
        >>> fbm = sk.brownian.FractionalBM(0.7, kind="type2", horizon=1.0)
        >>> model = skf.FractionalSDE(lambda t, x, a: -x, lambda t, x, a: jnp.ones_like(x), fbm,
        ...                           control=lambda t, x, y, a: jnp.ones_like(x))
        >>> out = skf.elbo(model, 0.0, 0.0, jnp.array([1.0]), jnp.array([1.0]), 0.1,
        ...                jax.random.key(0), n_samples=8, dt0=2**-5)
        >>> round(float(out.kl), 6)                  # u = 1 on [0, 1]: KL = 1/2
        0.5
    """
    x0 = jnp.asarray(x0)
    if is_traced(ts) or is_traced(t0):
        raise ValueError("elbo: t0 and ts must be known when the ELBO is traced (NumPy arrays or "
                         "Python numbers, not traced values): they fix the Brownian trees' depth.")
    t0, t1 = float(t0), float(np.asarray(ts)[-1])
    ts = jnp.asarray(ts, x0.dtype)
    observations = jnp.asarray(observations, x0.dtype)
    if observations.shape != (*ts.shape, *x0.shape):
        raise ValueError(f"elbo: observations must have shape {(*ts.shape, *x0.shape)} (len(ts), *x0.shape), "
                         f"got {observations.shape}.")
    if n_samples < 1:
        raise ValueError(f"elbo: n_samples must be >= 1, got {n_samples}.")
    solver = sk.solvers.euler_maruyama() if solver is None else solver
    tol = dt0 / 2 if tol is None else tol
    adjoint = sk.adjoint.Checkpointed() if adjoint is None else adjoint
    levy = solver.sde.levy_area if solver.sde is not None else "increment"
    tree_options = {"levy": "space-time", "area": True} if levy == "space-space" else {"levy": levy}
    sde = model.as_sde()

    def sample(j):
        key_y, key_w = jax.random.split(jax.random.fold_in(key, j))
        z0 = model.initial_state(x0, key_y)
        tree = sk.BrownianTree(key_w, t0, t1, shape=model.brownian_shape(x0), tol=tol, **tree_options)
        sol = sk.solve(sde, solver, t0, t1, z0, args=args, dt0=dt0, brownian=tree,
                       saveat=sk.SaveAt(ts=ts), adjoint=adjoint)
        return _gaussian_log_likelihood(sol.ys.x, observations, obs_std), sol.ys.kl[-1]

    log_lik, kl = jax.vmap(sample)(jnp.arange(n_samples))
    log_lik, kl = jnp.mean(log_lik), jnp.mean(kl)
    return Elbo(log_lik - kl, log_lik, kl)


def is_traced(x) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def _gaussian_log_likelihood(x, obs, std):
    std = jnp.asarray(std, x.dtype)
    seen = ~jnp.isnan(obs)
    resid = jnp.where(seen, x - jnp.where(seen, obs, 0), 0) / std
    per = -0.5 * resid**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi).astype(x.dtype)
    return jnp.sum(jnp.where(seen, per, 0))
