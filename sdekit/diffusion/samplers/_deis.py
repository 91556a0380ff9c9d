r"""DEIS (Zhang & Chen, ICLR 2023, arXiv 2204.13902): the exponential integrator of the
probability-flow ODE in noise prediction, with $\hat\epsilon$ extrapolated by the Lagrange
polynomial through the last $r + 1$ evaluations.

In $\rho = \sigma/\alpha$ and $y = x/\alpha$ the ODE is $dy/d\rho = \hat\epsilon$, so with
$\hat\epsilon(\tau) \approx \sum_j \ell_j(\tau)\,\hat\epsilon_j$ (nodes at the current point $j = 0$
and the $r$ previous ones):

$$x_t = \alpha_t\hat x_0(s) + \sigma_t\hat\epsilon_0
  + \sum_{j=1}^{r}(\hat\epsilon_j - \hat\epsilon_0)\,\alpha_t\!\int_{\rho_s}^{\rho_t}\ell_j\,d\rho,$$

the first two terms being DDIM (the $j = 0$ part, exact). The polynomial is in $\log\rho = -\lambda$
(`kind="rho_ab"`, diffusers' `DEISMultistepScheduler(solver_type="logrho")`) or in $t$
(`kind="t_ab"`, the paper's tAB). The integrals are taken in $\lambda$,
$\alpha_t\int\ell_j\,d\rho = -\sigma_t\int_0^h e^{h - u}\ell_j\,du$, by an 8-point Gauss-Legendre rule
inside the step (exact to rounding for the $h \lesssim 2$ of practical grids).

Order $r + 1$ (`order`), one evaluation per step; warm-up lowers the order by masks. diffusers'
DEIS cannot end at $\sigma = 0$ ($\log 0$, NaN); here a step to $\sigma_t = 0$ returns the data
prediction (DDIM's step), with every coefficient kept finite, also in gradients. A history point
with $\lambda = -\infty$ ($\alpha = 0$, `skd.Flow` at $t = 1$) is not used by `"rho_ab"`.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import sdekit as sk

from . import _common as c

KINDS = ("rho_ab", "t_ab")
NODES, WEIGHTS = np.polynomial.legendre.leggauss(8)


class State(NamedTuple):
    hist: c.History  # noise predictions and their log-SNRs, newest first
    ts: jax.Array  # their times


def _init(order, problem, t0, y0, args):
    c.check_state(y0, "deis")
    return State(c.History.empty(order, y0), jnp.zeros((order,), y0.dtype))


def _coefficients(kind, model, s: c.Point, t: c.Point, lams, ts, usable):
    r"""$\alpha_t\int_{\rho_s}^{\rho_t}\ell_j\,d\rho$ for the nodes $j = 1..$ (0 where unusable)."""
    dtype = s.lam.dtype
    ok = jnp.isfinite(s.lam) & jnp.isfinite(t.lam)
    h = jnp.where(ok, t.lam - s.lam, 1.0)
    lam_s = jnp.where(ok, s.lam, 0.0)
    u = h * (1 + jnp.asarray(NODES, dtype)) / 2  # nodes in lambda - lambda_s
    w = (h / 2) * jnp.asarray(WEIGHTS, dtype) * jnp.exp(h - u)
    if kind == "rho_ab":
        x, nodes = u, jnp.where(usable, lams - lam_s, -1.0 - jnp.arange(lams.shape[0], dtype=dtype))
        x0 = jnp.zeros((), dtype)
    else:
        x, nodes, x0 = model.schedule.t_of_log_snr(lam_s + u).astype(dtype), ts, s.t
    allnodes = jnp.concatenate([x0[None], nodes])  # (k,)
    live = jnp.concatenate([jnp.ones((1,), bool), usable])
    k = allnodes.shape[0]
    same = jnp.eye(k, dtype=bool)
    use = live[None, :] & ~same  # factor m of basis j
    denom = jnp.where(use & live[:, None], allnodes[:, None] - allnodes[None, :], 1.0)  # (j, m)
    numer = jnp.where(use[None], x[:, None, None] - allnodes[None, None, :], denom[None])  # (node, j, m)
    basis = jnp.prod(numer / denom[None], axis=2)  # (node, j)
    coef = -t.sigma * jnp.tensordot(w, basis[:, 1:], axes=1)
    return jnp.where(usable & ok, coef, 0.0)


def _step(order, kind, problem, tau0, tau1, y0, args, inc, state: State):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, "deis")
    dtype = y0.dtype
    s, t = c.point(model, t0, dtype), c.point(model, t1, dtype)
    x0, eps = model.x0_and_eps(y0, s.t, args)
    hist = state.hist.push(eps, s.lam)
    ts = jnp.concatenate([jnp.reshape(s.t, (1,)), state.ts[:-1]])
    x1 = t.alpha * x0 + t.sigma * eps
    if order > 1:
        k = jnp.arange(1, order, dtype=jnp.int32)
        usable = k < hist.count
        if kind == "rho_ab":
            usable = usable & jnp.isfinite(hist.lams[1:])
        usable = jnp.cumprod(usable.astype(jnp.int32)).astype(bool)
        coef = _coefficients(kind, model, s, t, hist.lams[1:], ts[1:], usable)
        x1 = x1 + jnp.tensordot(coef, hist.values[1:] - eps[None], axes=1)
    x1 = c.at_data_end(t, x0, x1)
    return x1, None, sk.solvers.LinearDense(y0, x1), State(hist, ts)


@functools.cache
def deis(order: int = 3, kind: str = "rho_ab") -> sk.solvers.Solver:
    r"""DEIS (Zhang & Chen 2023): the exponential integrator with $\hat\epsilon$ extrapolated
    through the last `order` evaluations; see the module docstring.

    Args:
        order: $r + 1$, 1 to 3 (1 is DDIM); the order of convergence.
        kind: `"rho_ab"`, the polynomial in $\log\rho$ (diffusers' `"logrho"`, its
            `DEISMultistepScheduler`), or `"t_ab"`, the polynomial in $t$.

    One model evaluation per step. A step to $\sigma = 0$ returns the data prediction (diffusers'
    DEIS gives NaN there).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, a: jnp.full_like(x, 0.5), sched, prediction="x0")
        >>> x_T = sched.prior(jax.random.key(0), (4,))
        >>> x0 = skd.sample(model, skd.samplers.deis(order=3), x_T, skd.time_grid(sched, 10))
        >>> bool(jnp.allclose(x0, 0.5, atol=0.05))
        True
    """
    if order not in (1, 2, 3):
        raise ValueError(f"deis: order must be 1, 2 or 3; got {order!r}.")
    if kind not in KINDS:
        raise ValueError(f"deis: kind must be one of {KINDS}; got {kind!r}.")
    return c.deterministic("deis", functools.partial(_init, order), functools.partial(_step, order, kind),
                           order=order, fevals_per_step=1)
