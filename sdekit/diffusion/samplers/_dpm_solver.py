r"""DPM-Solver (Lu et al., NeurIPS 2022, arXiv 2206.00927): exponential integrators of the
probability-flow ODE in $\lambda = \log(\alpha/\sigma)$ with the noise prediction $\hat\epsilon$;
and the engine it shares with DPM-Solver++ (`_dpm_solver_pp.py`, the data prediction $\hat x_0$).

A step from $s$ to $t$, $h = \lambda_t - \lambda_s$, solves exactly the linear part:

$$x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t\int_0^h e^{h-u}\,\hat\epsilon(\lambda_s + u)\,du,$$

and approximates $\hat\epsilon$ in $\lambda$. Both forms are written here as one update with
$\eta = h$, $c_t = \sigma_t$, $m = \hat\epsilon$ (noise) or $\eta = -h$, $c_t = \alpha_t$,
$m = \hat x_0$ (data), $\varphi_2(\eta) = 1 - (e^\eta - 1)/\eta$:

- order 1 (DDIM): $x_t = \alpha_t\hat x_0(s) + \sigma_t\hat\epsilon(s)$
  ($= \frac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^h - 1)\hat\epsilon_s$);
- multistep, with the last predictions $m_0, m_1, m_2$ at $\lambda_s, \lambda_{s-1}, \lambda_{s-2}$,
  $r_0 = (\lambda_s - \lambda_{s-1})/h$, $r_1 = (\lambda_{s-1} - \lambda_{s-2})/h$,
  $D_{1,0} = (m_0 - m_1)/r_0$, $D_{1,1} = (m_1 - m_2)/r_1$, $D_2 = (D_{1,0} - D_{1,1})/(r_0 + r_1)$:
  - order 2: $x_t = x_t^{(1)} - \tfrac12 c_t(e^\eta - 1)D_{1,0}$ ("midpoint", DPM-Solver's and
    diffusers' default), or $+\,c_t\varphi_2(\eta)D_{1,0}$ ("heun");
  - order 3: $x_t = x_t^{(1)} + c_t\varphi_2(\eta)(D_{1,0} + r_0D_2) + w\,c_t(\varphi_2(\eta)/\eta + \tfrac12)D_2$
    ($-\varphi_3$ of samplers.md is $\varphi_2/\eta + \tfrac12$), see below for $w$;
  one model evaluation per step; step $i$ uses order $\min(k, i + 1)$ (warm-up);
- singlestep, intermediate points at $\lambda_s + r h$ (one DDIM step there, $u_1$), $k$ evaluations:
  - order 2 ($r_1 = \tfrac12$): $x_t = x_t^{(1)} - \frac{c_t}{2r_1}(e^\eta - 1)(m(u_1) - m_0)$;
  - order 3 ($r_1 = \tfrac13$, $r_2 = \tfrac23$): $u_2 = u_2^{(1)} + c_{s_2}\frac{r_2}{r_1}\varphi_2(r_2\eta)(m(u_1) - m_0)$,
    $x_t = x_t^{(1)} + \frac{c_t}{r_2}\varphi_2(\eta)(m(u_2) - m_0)$ (the paper's DPM-Solver-3).

Global order $k$ in the largest $\lambda$-step. A step that ends at $\sigma_t = 0$ returns
$\hat x_0(s)$ (first order, one evaluation); a step from $\alpha_s = 0$ ($\lambda_s = -\infty$) is
first order. Coefficients are scalars computed in the step from its times and the $\lambda$
history, so one compiled loop serves every grid of a length.

Order-3 multistep, $w$: DPM-Solver's code (`multistep_dpm_solver_third_order_update`),
diffusers and k-diffusion (`sample_dpmpp_3m_sde`) take $w = 1$ (`third_order="reference"`).
But $D_2 \approx \tfrac12h^2\partial_\lambda^2 m$ (the second divided difference scaled by
$h^2$), and the exact integral of the quadratic through $m_0, m_1, m_2$ takes $w = 2$: with
$w = 1$ the local error is $O(h^3)$ and the method converges at order 2 only (measured on
the test mixture: slopes 2.1-2.2 at 160-640 steps, falling towards 2). The default
`third_order="exact"` ($w = 2$) is third order (slopes 2.95-3.1).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

import sdekit as sk

from .._grid import time_grid
from . import _common as c

METHODS = ("multistep", "singlestep")
SOLVER_TYPES = ("midpoint", "heun")
THIRD = ("exact", "reference")
D2_WEIGHT = {"exact": 2.0, "reference": 1.0}
LOWER_ORDER_FINAL_BELOW = 15  # diffusers: lower the final orders on grids of fewer steps


class _Config(NamedTuple):
    name: str
    data: bool  # True: DPM-Solver++ (x0 history); False: DPM-Solver (eps history)
    method: str
    order: int
    steps: int | None
    orders: tuple[int, ...] | None
    lower_order_final: bool
    solver_type: str
    third_order: str  # multistep order 3's D2 term: "exact" or "reference" (half of it)


class _Step(NamedTuple):
    """One step's scalars: h = lambda_t - lambda_s (1 where infinite), eta, c_t, and first_order
    (true at sigma_t = 0 or alpha_s = 0, where only the first-order update is meaningful)."""

    h: jax.Array
    eta: jax.Array
    c: jax.Array
    first_order: jax.Array


def _scalars(cfg: _Config, s: c.Point, t: c.Point) -> _Step:
    h = t.lam - s.lam
    infinite = ~jnp.isfinite(h)
    h = jnp.where(infinite, jnp.ones_like(h), h)
    return _Step(h, -h if cfg.data else h, t.alpha if cfg.data else t.sigma, infinite)


def _pick(cfg, x0, eps):
    return x0 if cfg.data else eps


def _phi2(eta):
    r"""$\varphi_2(\eta) = 1 - (e^\eta - 1)/\eta$ (finite $\eta \ne 0$)."""
    return 1 - jnp.expm1(eta) / eta


def _ddim(p: c.Point, x0, eps):
    return p.alpha * x0 + p.sigma * eps


# --------------------------------------------------------------------------------------------
# Multistep: one evaluation per step, the predictions and their lambdas in a History.
# --------------------------------------------------------------------------------------------
def _multistep_init(cfg, problem, t0, y0, args):
    c.check_state(y0, cfg.name)
    return c.History.empty(max(cfg.order - 1, 1), y0)


def _multistep_order(cfg: _Config, count, first_order):
    p = jnp.minimum(cfg.order, count + 1)
    if cfg.lower_order_final and cfg.steps is not None and cfg.steps < LOWER_ORDER_FINAL_BELOW:
        p = jnp.where(count == cfg.steps - 1, 1, jnp.where(count == cfg.steps - 2, jnp.minimum(p, 2), p))
    return jnp.where(first_order, 1, p)


def _multistep_step(cfg: _Config, problem, tau0, tau1, x, args, inc, hist: c.History):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, cfg.name)
    s, t = c.point(model, t0, x.dtype), c.point(model, t1, x.dtype)
    x0, eps = model.x0_and_eps(x, s.t, args)
    m0 = _pick(cfg, x0, eps)
    st = _scalars(cfg, s, t)
    x1 = _ddim(t, x0, eps)
    if cfg.order >= 2:
        p = _multistep_order(cfg, hist.count, st.first_order)
        one = jnp.ones_like(st.h)
        h0 = jnp.where(p >= 2, s.lam - hist.lams[0], one)  # may be inf after alpha = 0: then 1/r0 = 0
        d10 = (st.h / h0) * (m0 - hist.values[0])
        expm1 = jnp.expm1(st.eta)
        phi2 = _phi2(st.eta)
        second = -0.5 * expm1 if cfg.solver_type == "midpoint" else phi2
        c1 = jnp.where(p == 2, second, jnp.where(p == 3, phi2, 0))
        update = c1 * d10
        if cfg.order >= 3:
            h1 = jnp.where(p >= 3, hist.lams[0] - hist.lams[1], one)
            d11 = (st.h / h1) * (hist.values[0] - hist.values[1])  # 0 for h1 = inf
            h0 = jnp.where(p >= 3, h0, one)  # finite at p = 3 (only the grid's first lambda can be -inf)
            w = st.h / (h0 + h1)  # 1 / (r0 + r1)
            d2 = w * (d10 - d11)
            c2 = jnp.where(p == 3, D2_WEIGHT[cfg.third_order] * (phi2 / st.eta + 0.5), 0)
            # D1 = D10 + r0 D2, with r0 D2 = (h0 / (h0 + h1)) (D10 - D11) finite for h1 = inf.
            c1r = jnp.where(p == 3, phi2 * (h0 / (h0 + h1)), 0)
            update = update + c1r * (d10 - d11) + c2 * d2
        x1 = x1 + st.c * update
    x1 = c.at_data_end(t, x0, x1)
    return x1, None, sk.solvers.LinearDense(x, x1), hist.push(m0, s.lam)


# --------------------------------------------------------------------------------------------
# Singlestep: k evaluations per step at lambda_s + r h; per-step orders from a static tuple.
# --------------------------------------------------------------------------------------------
class _Count(NamedTuple):
    count: jax.Array  # int32: steps taken


def _singlestep_init(cfg, problem, t0, y0, args):
    c.check_state(y0, cfg.name)
    return _Count(jnp.zeros((), jnp.int32))


def _intermediate(model, s: c.Point, st: _Step, r, dtype):
    return c.point(model, model.schedule.t_of_log_snr(s.lam + r * st.h), dtype)


def _first(cfg, model, args, s, t, st, x, x0, eps):
    return c.at_data_end(t, x0, _ddim(t, x0, eps))


def _second(cfg, model, args, s, t, st, x, x0, eps, r1=0.5):
    m0 = _pick(cfg, x0, eps)
    s1 = _intermediate(model, s, st, r1, x.dtype)
    m1 = _pick(cfg, *model.x0_and_eps(_ddim(s1, x0, eps), s1.t, args))
    return _ddim(t, x0, eps) - (st.c * jnp.expm1(st.eta) / (2 * r1)) * (m1 - m0)


def _third(cfg, model, args, s, t, st, x, x0, eps, r1=1 / 3, r2=2 / 3):
    m0 = _pick(cfg, x0, eps)
    s1, s2 = (_intermediate(model, s, st, r, x.dtype) for r in (r1, r2))
    m1 = _pick(cfg, *model.x0_and_eps(_ddim(s1, x0, eps), s1.t, args))
    c_s2 = s2.alpha if cfg.data else s2.sigma
    u2 = _ddim(s2, x0, eps) + (c_s2 * (r2 / r1) * _phi2(r2 * st.eta)) * (m1 - m0)
    m2 = _pick(cfg, *model.x0_and_eps(u2, s2.t, args))
    return _ddim(t, x0, eps) + (st.c * _phi2(st.eta) / r2) * (m2 - m0)


def _singlestep_step(cfg: _Config, problem, tau0, tau1, x, args, inc, state: _Count):
    model, t0, t1 = c.model_and_times(problem, tau0, tau1, cfg.name)
    s, t = c.point(model, t0, x.dtype), c.point(model, t1, x.dtype)
    st = _scalars(cfg, s, t)
    if cfg.orders is None:
        k = jnp.asarray(cfg.order, jnp.int32)
    else:
        k = jnp.asarray(cfg.orders, jnp.int32)[jnp.minimum(state.count, len(cfg.orders) - 1)]
    branches = [_first, _second, _third][: max(cfg.orders or (cfg.order,))]
    index = jnp.where(st.first_order, 0, k - 1)

    def run(branch):
        def f(x):
            x0, eps = model.x0_and_eps(x, s.t, args)
            return branch(cfg, model, args, s, t, st, x, x0, eps)
        return f

    x1 = jax.lax.switch(index, [run(b) for b in branches], x)
    return x1, None, sk.solvers.LinearDense(x, x1), _Count(state.count + 1)


# --------------------------------------------------------------------------------------------
# Factories.
# --------------------------------------------------------------------------------------------
def check_arguments(name, order, method, steps, orders, solver_type, third_order, max_order=3):
    """Validate a DPM-Solver(++) configuration; return `orders` as a tuple (or None)."""
    if third_order not in THIRD:
        raise ValueError(f"{name}: third_order must be one of {THIRD}; got {third_order!r}.")
    if method not in METHODS:
        raise ValueError(f"{name}: method must be one of {METHODS}; got {method!r}.")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= max_order:
        raise ValueError(f"{name}: order must be 1, 2 or 3; got {order!r}.")
    if solver_type is not None and solver_type not in SOLVER_TYPES:
        raise ValueError(f"{name}: solver_type must be one of {SOLVER_TYPES} (or None); got {solver_type!r}.")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"{name}: steps must be a positive int (the grid's number of steps) or None; got {steps!r}.")
    if orders is None:
        return None
    if method != "singlestep":
        raise ValueError(f"{name}: per-step orders are for method='singlestep'; multistep warms up by itself.")
    orders = tuple(orders)
    if not orders or any(not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= order for k in orders):
        raise ValueError(f"{name}: orders must be a non-empty sequence of ints in 1..order={order}; got {orders!r}.")
    if steps is not None and steps != len(orders):
        raise ValueError(f"{name}: steps={steps} but {len(orders)} per-step orders: one order per grid step.")
    return orders


@functools.cache
def build(cfg: _Config) -> sk.solvers.Solver:
    """The `sk.solvers.Solver` of a (validated) configuration; cached, so equal settings give
    the same solver (no retracing)."""
    if cfg.method == "multistep":
        init, step, fevals, init_fevals = _multistep_init, _multistep_step, 1, 0
    elif cfg.orders is None:
        init, step, fevals, init_fevals = _singlestep_init, _singlestep_step, cfg.order, 0
    else:
        # Static counts are per grid step: min(orders) per step plus the rest once, so a grid of
        # len(orders) steps reports sum(orders) evaluations.
        fevals = min(cfg.orders)
        init, step, init_fevals = _singlestep_init, _singlestep_step, sum(cfg.orders) - fevals * len(cfg.orders)
    # The reference third-order multistep update converges at order 2 (module docstring).
    order = 2 if cfg.method == "multistep" and cfg.order == 3 and cfg.third_order == "reference" else cfg.order
    solver = c.deterministic(cfg.name, functools.partial(init, cfg), functools.partial(step, cfg),
                             order=order, fevals_per_step=fevals)
    return solver._replace(init_fevals=init_fevals)


def make(name, data, order, method, steps, orders, lower_order_final, solver_type, third_order, default_solver_type):
    """Validate the arguments and build the sampler (shared by `dpm_solver` and `dpm_solver_pp`)."""
    orders = check_arguments(name, order, method, steps, orders, solver_type, third_order)
    solver_type = default_solver_type if solver_type is None else solver_type
    cfg = _Config(name, data, method, order, steps, orders, bool(lower_order_final), solver_type, third_order)
    return build(cfg)


def dpm_solver(order: int = 2, method: str = "multistep", steps: int | None = None, orders=None,
               lower_order_final: bool = True, solver_type: str | None = None,
               third_order: str = "exact") -> sk.solvers.Solver:
    r"""DPM-Solver (Lu et al., NeurIPS 2022, arXiv 2206.00927) with the noise prediction
    $\hat\epsilon$: a solver of `skd.probability_flow(model)`; see this module's docstring.

    Args:
        order: 1 (DDIM), 2 or 3: the global order in the largest $\lambda$-step.
        method: `"multistep"` (one model evaluation per step; step $i$ uses order
            $\min(k, i + 1)$) or `"singlestep"` (`order` evaluations per step, intermediate
            points at $r = \tfrac12$ or $r = \tfrac13, \tfrac23$ in $\lambda$).
        steps: the grid's number of steps. Multistep: with `lower_order_final`, on grids of
            fewer than 15 steps the last step is first order and the one before at most
            second (diffusers' rule); without `steps` only a step to $\sigma = 0$ is lowered
            (it returns $\hat x_0$), as k-diffusion. Singlestep: must equal `len(orders)`.
        orders: singlestep only: a static tuple of per-step orders (each $\le$ `order`), step
            $i$ taking `orders[i]`: "DPM-Solver-fast" with `dpm_solver_fast_grid`.
        lower_order_final: see `steps`.
        solver_type: the second-order multistep update, `"midpoint"` (default, DPM-Solver's
            `"dpmsolver"`) or `"heun"`; used by order 2 and by order 3's warm-up.
        third_order: multistep order 3's update: `"exact"` (the exponential integral of the
            quadratic through the last three predictions; order 3) or `"reference"` (the
            coefficient of DPM-Solver's code and diffusers, half the exact $D_2$ term, which
            converges at order 2 only; for reproducing them).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> sched = skd.VP.linear()
        >>> gm = skd.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), 0.25 * jnp.eye(2)[None])
        >>> x_T = sched.prior(jax.random.key(0), (2048, 2))
        >>> x0 = skd.sample(gm.model(sched), skd.samplers.dpm_solver(order=3), x_T, skd.time_grid(sched, 10))
        >>> round(float(jnp.std(x0)), 1)
        0.5
    """
    return make("dpm_solver", False, order, method, steps, orders, lower_order_final, solver_type, third_order,
                "midpoint")


def fast_orders(nfe: int, order: int = 3) -> tuple[int, ...]:
    """DPM-Solver-fast's per-step orders for `nfe` evaluations (Lu et al. 2022, Sec. 3.4)."""
    if not isinstance(nfe, int) or nfe < 1 or order not in (1, 2, 3):
        raise ValueError("dpm_solver_fast_grid: nfe must be a positive int and order 1, 2 or 3; "
                         f"got {nfe!r}, {order!r}.")
    if order == 3:
        k = nfe // 3 + 1
        if nfe % 3 == 0:
            return (3,) * (k - 2) + (2, 1)
        return (3,) * (k - 1) + (nfe % 3,)
    if order == 2:
        return (2,) * (nfe // 2) + ((1,) if nfe % 2 else ())
    return (1,) * nfe


def dpm_solver_fast_grid(schedule, nfe: int, order: int = 3, t_start=None, t_end=None):
    r"""DPM-Solver-fast (Lu et al. 2022, Sec. 3.4): the outer grid, uniform in $\lambda$
    (`skip_type="logSNR"`), and the per-step orders that spend exactly `nfe` evaluations.

    For `order=3`: $K = \lfloor nfe/3\rfloor + 1$ steps of orders $[3, \dots, 3, 2, 1]$ if
    $3 \mid nfe$, else $[3, \dots, 3, nfe \bmod 3]$; for `order=2`: $[2, \dots, 2(, 1)]$.
    Returns `(ts, orders)`; run `dpm_solver(order, "singlestep", orders=orders)` on `ts`.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> ts, orders = skd.samplers.dpm_solver_fast_grid(skd.EDM(), 10)
        >>> ts.shape, orders
        ((5,), (3, 3, 3, 1))
    """
    orders = fast_orders(nfe, order)
    return time_grid(schedule, len(orders), "log_snr", t_start=t_start, t_end=t_end), orders
