r"""UniPC (Zhao, Bai, Rao, Zhou & Lu, NeurIPS 2023, arXiv 2302.04867), data-prediction form
(diffusers' `UniPCMultistepScheduler` with `predict_x0=True`).

With $\hat x_0$ the data predictions at the previous points $s_k$ (newest $s_0 = s$),
$h = \lambda_t - \lambda_s$, $hh = -h$, $r_k = (\lambda_{s_k} - \lambda_s)/h$ and
$D_k = (\hat x_0(s_k) - \hat x_0(s))/r_k$:

$$\text{UniP-}p:\quad x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t(e^{hh} - 1)\hat x_0(s)
  - \alpha_t B(h)\sum_{k=1}^{p-1}\rho_k D_k,$$

with $\rho$ solving $\sum_k \rho_k r_k^{i-1} = i!\,\psi_i/B(h)$ for $i = 1..p-1$, where
$\psi_1 = (e^{hh} - 1)/hh - 1$, $\psi_{i+1} = \psi_i/hh - 1/(i+1)!$, and $B(h) = hh$ (`"bh1"`) or
$e^{hh} - 1$ (`"bh2"`). UniC-$p$ redoes the step $s \to t$ once $\hat x_0$ is known at the
predicted $\tilde x_t$, adding $r = 1$, $D = \hat x_0(\tilde x_t) - \hat x_0(s)$ to the sum (a
$p\times p$ system). A system of size 1 takes $\rho = 1/2$ (UniP-2, UniC-1), as diffusers does.

As in diffusers, a step evaluates the model once, at its start (the point the previous step
predicted), corrects that point with UniC (not on the first step), and predicts the next one
from the corrected point with UniP; the history keeps $\hat x_0$ at the *uncorrected* points
and the last sample is not corrected. One evaluation per step; order $p + 1$ with the
corrector, $p$ without. Warm-up (and `lower_order_final`) lower the order by masks, so one
trace serves every grid of a length.

A step to $\sigma_t = 0$ returns the data prediction; a history point with $\lambda = -\infty$
($\alpha = 0$, e.g. `skd.Flow` at $t = 1$) is not used by later steps (lower order there).
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

import sdekit as sk

from . import _common as c

VARIANTS = ("bh1", "bh2")


class State(NamedTuple):
    hist: c.History  # x0 predictions at the (uncorrected) previous points, newest first
    x_prev: jax.Array  # the (corrected) sample at the previous point: the last step's base
    t_prev: jax.Array  # the previous point's time
    q_prev: jax.Array  # the last predictor's order (int32)


def _init(order, problem, t0, y0, args):
    c.check_state(y0, "unipc")
    _, t = sk.terms.as_written(problem, t0)
    return State(c.History.empty(order, y0), y0, jnp.asarray(t, y0.dtype), jnp.ones((), jnp.int32))


def _safe_h(s: c.Point, t: c.Point):
    """$hh = -h$ where the step is finite, else -1; and whether it is."""
    ok = jnp.isfinite(s.lam) & jnp.isfinite(t.lam) & (t.lam > s.lam)
    return jnp.where(ok, s.lam - t.lam, -1.0).astype(s.lam.dtype), ok


def _rhs(hh, n, variant):
    r"""$b_i = i!\,\psi_i/B(h)$ for $i = 1..n$, and $B(h)$."""
    phi1 = jnp.expm1(hh)
    bh = hh if variant == "bh1" else phi1
    psi, b = phi1 / hh - 1, []
    for i in range(1, n + 1):
        b.append(math.factorial(i) * psi / bh)
        psi = psi / hh - 1 / math.factorial(i + 1)
    return jnp.stack(b), bh


def _rhos(r, size, b):
    r"""Solve $\sum_k \rho_k r_k^{i-1} = b_i$ on the leading `size` rows and columns (identity and
    $\rho = 0$ beyond); size 1 takes $\rho = 1/2$."""
    n = r.shape[0]
    idx = jnp.arange(n, dtype=jnp.int32)
    live = idx < size
    powers = jnp.cumprod(jnp.concatenate([jnp.ones((1, n), r.dtype), jnp.broadcast_to(r[None], (n - 1, n))]), axis=0)
    mask = live[:, None] & live[None, :]
    eye = jnp.eye(n, dtype=r.dtype)
    rho = _eliminate(jnp.where(mask, powers, eye), jnp.where(live, b, 0.0))
    return jnp.where(size == 1, jnp.where(idx == 0, 0.5, 0.0).astype(r.dtype), rho)


def _eliminate(a, b):
    """$a^{-1} b$ by Gaussian elimination without pivoting, unrolled over the static size (at
    most 3): scalar arithmetic that XLA fuses, where `jnp.linalg.solve` added an LU call and its
    pivot loop to every step (12 of 79 kernels of the default UniPC sampler). Pivoting is not needed: the
    matrix is a Vandermonde block in distinct nodes (leading row of ones), identity beyond it,
    so every leading minor is nonzero."""
    n = a.shape[0]
    rows = [[a[i, j] for j in range(n)] for i in range(n)]
    rhs = [b[i] for i in range(n)]
    for k in range(n):
        for i in range(k + 1, n):
            factor = rows[i][k] / rows[k][k]
            rows[i] = [rows[i][j] - factor * rows[k][j] if j > k else rows[i][j] for j in range(n)]
            rhs[i] = rhs[i] - factor * rhs[k]
    x = [None] * n
    for i in reversed(range(n)):
        x[i] = (rhs[i] - sum((rows[i][j] * x[j] for j in range(i + 1, n)), jnp.zeros((), a.dtype))) / rows[i][i]
    return jnp.stack(x)


def _older(hist: c.History, s: c.Point, hh, ok):
    """$r_k$ of the history's entries 1.. (relative to entry 0 at `s`; 1 where unusable), and how
    many lead usable."""
    k = jnp.arange(1, hist.lams.shape[0], dtype=jnp.int32)
    usable = (k < hist.count) & jnp.isfinite(hist.lams[1:]) & ok
    safe = usable & jnp.isfinite(s.lam)
    r = jnp.where(safe, jnp.where(safe, hist.lams[1:], 0.0) - jnp.where(safe, s.lam, 1.0), 1.0) / -hh
    return jnp.where(safe, r, 1.0), jnp.sum(jnp.cumprod(usable.astype(jnp.int32)), dtype=jnp.int32)


def _combine(values, m0, r, rho):
    r"""$\sum_k \rho_k D_k$, $D_k = (m_k - m_0)/r_k$, over the entries of `values`."""
    coef = rho / r
    return jnp.tensordot(coef, values - m0[None], axes=1)


def _base(s: c.Point, t: c.Point, x, m0, hh, ok):
    phi1 = jnp.where(ok, jnp.expm1(hh), c.exp_neg_h(s, t) - 1)
    return (t.sigma / s.sigma) * x - (t.alpha * phi1) * m0


def _predict(order, variant, s, t, x, hist, q):
    hh, ok = _safe_h(s, t)
    x1 = _base(s, t, x, hist.values[0], hh, ok)
    if order == 1:
        return x1
    r, _ = _older(hist, s, hh, ok)
    b, bh = _rhs(hh, order - 1, variant)
    rho = _rhos(r, q - 1, b)
    return x1 - (t.alpha * bh) * _combine(hist.values[1:], hist.values[0], r, rho)


def _correct(order, variant, s0, s, x_prev, hist, m, q):
    hh, ok = _safe_h(s0, s)
    x1 = _base(s0, s, x_prev, hist.values[0], hh, ok)
    r_old, _ = _older(hist, s0, hh, ok)
    r = jnp.concatenate([jnp.ones((1,), r_old.dtype), r_old])
    values = jnp.concatenate([m[None], hist.values[1:]], axis=0)
    b, bh = _rhs(hh, order, variant)
    rho = _rhos(r, q, b)
    return x1 - (s.alpha * bh) * _combine(values, hist.values[0], r, rho), ok


def _step(order, variant, corrector, steps, problem, tau0, tau1, y0, args, inc, state: State):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, "unipc")
    dtype = y0.dtype
    s, t = c.point(model, t0, dtype), c.point(model, t1, dtype)
    m = model.x0(y0, s.t, args)
    x = y0
    if corrector:
        s0 = c.point(model, state.t_prev, dtype)
        x_c, ok = _correct(order, variant, s0, s, state.x_prev, state.hist, m, state.q_prev)
        x = jnp.where((state.hist.count > 0) & ok, x_c, y0)
    hist = state.hist.push(m, s.lam)
    hh, ok = _safe_h(s, t)
    _, usable = _older(hist, s, hh, ok)
    q = jnp.minimum(order, usable + 1)
    if steps is not None:
        q = jnp.minimum(q, steps - state.hist.count)
    q = jnp.where(ok, jnp.maximum(q, 1), 1).astype(jnp.int32)
    x1 = c.at_data_end(t, m, _predict(order, variant, s, t, x, hist, q))
    return x1, None, sk.solvers.LinearDense(y0, x1), State(hist, x, s.t, q)


@functools.cache
def unipc(order: int = 2, variant: str = "bh2", corrector: bool = True, lower_order_final: bool = True,
          steps: int | None = None) -> sk.solvers.Solver:
    r"""UniPC (Zhao et al. 2023): the UniP-`order` predictor with the UniC corrector, in data
    prediction (diffusers' `UniPCMultistepScheduler(predict_x0=True)`); see the module docstring.

    Args:
        order: the predictor's order $p$, 1 to 3 (diffusers: 2 for guided sampling, 3 unguided).
        variant: $B(h)$: `"bh1"` ($B = -h$, for few steps) or `"bh2"` ($B = e^{-h} - 1$, the default).
        corrector: apply UniC (free: it reuses the next step's evaluation); order $p + 1$ with it, $p$ without.
        lower_order_final: with `steps` (the grid's number of steps) given, step $i$ uses order
            $\min(p, N - i)$, diffusers' rule (the last step is first order). The sampler never
            sees the grid, so without `steps` this has no effect (a step to $\sigma = 0$ always
            returns the data prediction).
        steps: the grid's number of steps $N$, for `lower_order_final`.

    One model evaluation per step.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> model = skd.Model(lambda x, t, a: jnp.full_like(x, 0.5), sched, prediction="x0")
        >>> x_T = sched.prior(jax.random.key(0), (4,))
        >>> x0 = skd.sample(model, skd.samplers.unipc(order=3), x_T, skd.time_grid(sched, 10))
        >>> bool(jnp.allclose(x0, 0.5, atol=0.05))
        True
        >>> skd.samplers.unipc(order=2).order, skd.samplers.unipc(order=2, corrector=False).order
        (3, 2)
    """
    if order not in (1, 2, 3):
        raise ValueError(f"unipc: order must be 1, 2 or 3; got {order!r}.")
    if variant not in VARIANTS:
        raise ValueError(f"unipc: variant must be one of {VARIANTS}; got {variant!r}.")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"unipc: steps must be None or an int >= 1; got {steps!r}.")
    steps = steps if lower_order_final else None
    step = functools.partial(_step, order, variant, bool(corrector), steps)
    return c.deterministic("unipc", functools.partial(_init, order), step, order=order + bool(corrector),
                           fevals_per_step=1)
