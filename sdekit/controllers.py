"""Step-size controllers: constant steps, a given grid, and PID adaptive control.

Controllers are equinox modules: their numbers (tolerances, gains, grids) are traced leaves, so
new values never recompile; their functions (the norm) are static.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._typing import RealScalarLike, is_concrete


__all__ = ["ConstantStep", "StepTo", "PID", "PIDState", "rms_norm", "max_norm", "initial_step_size"]


def __dir__():
    # Only the public names (not the modules this one imports).
    return __all__


def rms_norm(tree) -> Array:
    """Root-mean-square over every element of every leaf."""
    leaves = jax.tree.leaves(tree)
    size = sum(x.size for x in leaves)
    if size == 0:
        return jnp.zeros(())
    total = sum(jnp.sum(jnp.square(jnp.abs(x)).astype(jnp.result_type(float))) for x in leaves)
    return jnp.sqrt(total / size)


def max_norm(tree) -> Array:
    """Largest absolute element over every leaf."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros(())
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(jnp.result_type(float)) for x in leaves]))


class ConstantStep(eqx.Module):
    r"""Steps of constant size `dt0` from `t0`; the last step is shortened to end at `t1`.

    Step ends are $t_0 + n\,\mathrm{dt}_0$ (not accumulated sums, so no drift). `dt0` is traced:
    a new step size does not recompile; the number of steps is bounded by `max_steps`. Inside a
    user's `jit`, where Python or NumPy `t0`, `t1` and `dt0` are fixed for the trace, the same
    step ends run as a fixed grid (`StepTo`'s `lax.scan`, an SDE's increments drawn at once;
    conditions in `sk.solve`).
    """

    adaptive = False


class StepTo(eqx.Module):
    """Step exactly through the given grid `ts` (increasing, or decreasing for backward solves).

    The grid's length is static (the loop is a `lax.scan`); its values are traced. `ts[0]` must be
    `t0` and `ts[-1]` must be `t1`.

    With `padded=True` the grid may repeat a time: a repeated time is a step of length zero,
    skipped at run time (no vector-field evaluation). Padding grids to one length with their
    final time lets grids with different numbers of steps share one compiled program: a sweep
    over step counts compiles once (`StepTo.pad` builds such a grid). Skipped steps are not
    counted in `sol.stats`; with `SaveAt(steps=True)` their entries hold `inf` times and NaN
    values.

    Args:
        ts: 1-D array of step boundaries.
        padded: whether `ts` may repeat times (then monotonic rather than strictly so).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> problem = sk.ODE(lambda t, y, args: -y)
        >>> @jax.jit
        ... def final(ts):  # one compilation for every step count below
        ...     sol = sk.solve(problem, sk.solvers.heun(), 0.0, 1.0, 1.0, controller=sk.StepTo(ts, padded=True))
        ...     return sol.ys[-1], sol.stats["num_steps"]
        >>> [final(sk.StepTo.pad(jnp.linspace(0.0, 1.0, n + 1), 64).ts)[1].item() for n in (8, 16, 64)]
        [8, 16, 64]
    """

    ts: Float[Array, " n"]
    padded: bool = eqx.field(static=True, default=False)
    adaptive = False

    def __init__(self, ts: Float[ArrayLike, " n"], padded: bool = False):
        ts = jnp.asarray(ts)
        if ts.ndim != 1 or ts.shape[0] < 2:
            raise ValueError(f"StepTo needs a 1-D grid of at least two times, got shape {ts.shape}.")
        if not jnp.issubdtype(ts.dtype, jnp.floating):
            ts = ts.astype(jnp.result_type(float))
        self.ts = ts
        self.padded = bool(padded)

    @classmethod
    def pad(cls, ts: Float[ArrayLike, " n"], num_steps: int) -> "StepTo":
        """`StepTo(ts, padded=True)` with `ts` extended to `num_steps + 1` times by repeating its
        last: grids of up to `num_steps` steps then have one shape (and one compiled solve).

        Args:
            ts: 1-D array of step boundaries (at most `num_steps + 1` of them).
            num_steps: the padded grid's number of steps (static).
        """
        ts = jnp.asarray(ts)
        if ts.ndim != 1 or ts.shape[0] < 2:
            raise ValueError(f"StepTo.pad needs a 1-D grid of at least two times, got shape {ts.shape}.")
        if not isinstance(num_steps, int) or num_steps < ts.shape[0] - 1:
            raise ValueError(f"StepTo.pad: num_steps must be an int of at least the grid's {ts.shape[0] - 1} steps, "
                             f"got {num_steps!r}.")
        fill = jnp.broadcast_to(ts[-1], (num_steps + 1 - ts.shape[0],))
        return cls(jnp.concatenate([ts, fill]), padded=True)


class PIDState(NamedTuple):
    """Scaled errors of the two previously accepted steps (1 before there were any), the last
    accepted step's size (0 before there was one) and whether the last step was rejected."""

    prev_error: Array
    prev_prev_error: Array
    prev_h: Array
    rejected: Array


class PID(eqx.Module):
    r"""Adaptive step sizes from an embedded error estimate, with a PID controller.

    A step is accepted when $r = \|e / (\text{atol} + \text{rtol} \max(|y_0|, |y_1|))\| \le 1$.
    The next step is $h \cdot \text{clip}(\text{safety}\, r_n^{-\beta_1/k} r_{n-1}^{-\beta_2/k}
    r_{n-2}^{-\beta_3/k}, \text{factormin}, \text{factormax})$ with $\beta_1 = p + i + d$,
    $\beta_2 = -(p + 2d)$, $\beta_3 = d$ and $k$ the order of the error estimate; after a
    rejection, the plain integral controller shrinks the step. The defaults (pcoeff=0, icoeff=1)
    are the classical integral controller; for SDEs pcoeff=0.1, icoeff=0.3 are recommended.

    With `predictive=True` (Hairer & Wanner's RADAU5 strategy, also scipy's `Radau`), the growth
    is at most Gustafsson's predictive factor
    $\text{safety}\, r_n^{-1/k} \cdot (h_n / h_{n-1}) (r_{n-1} / r_n)^{1/k}$, which slows a step
    size whose error rises from step to step before the error rejects it, and a step right
    after a rejection does not grow: fewer rejected steps on stiff problems with sharp
    transients (Van der Pol, HIRES; see docs/stiff.md).

    Args:
        rtol, atol: relative and absolute tolerances.
        pcoeff, icoeff, dcoeff: proportional, integral and derivative gains (Söderlind 2003).
        dtmin, dtmax: bounds on the step size (`None`: unbounded). A step that must shrink below
            `dtmin` ends the solve with `RESULTS.dt_min_reached`, unless `force_dtmin`.
        force_dtmin: accept a step of size `dtmin` whatever its (finite) error, as diffrax does by
            default: for MCMC and other uses where a locally inaccurate step is better than a
            failed solve. Off by default, so that a tolerance the solve cannot meet is reported.
        safety, factormin, factormax: safety factor and bounds on the step's growth.
        norm: the norm of the scaled error (default RMS over all elements).
        jump_ts: times where the vector field is discontinuous: a step ends exactly there and the
            next one restarts just after it (FSAL information is re-evaluated).
        step_ts: times that steps must land on exactly.
        predictive: bound the growth by Gustafsson's predictive controller and keep the step
            from growing right after a rejection (above).
        error_order: override the order of the error estimate (default: the solver's; for SDEs
            the solver's order for the problem's noise type).
        revisit_rejected: SDEs only: how many ends of rejected steps to remember and step to
            exactly later (0 disables). Without this, where the Brownian path is sampled would
            depend on its values, biasing adaptive solutions for non-commutative noise. The
            default (`None`) is 32 for `noise="general"` and 0 for every other noise type, which
            is commutative and converges without it (Foster & Jelinčič, arXiv 2311.14201):
            revisiting costs extra steps.

    References:
        E. Hairer, S. P. Nørsett, G. Wanner, Solving ODEs I, Sec. II.4 (initial step, control);
        G. Söderlind, ACM TOMS 29 (2003) 1--26 (PID control); K. Gustafsson, ACM TOMS 20 (1994)
        496--517 (predictive control); E. Hairer, G. Wanner, Solving ODEs II, Sec. IV.8.
    """

    rtol: RealScalarLike
    atol: RealScalarLike
    pcoeff: RealScalarLike = 0.0
    icoeff: RealScalarLike = 1.0
    dcoeff: RealScalarLike = 0.0
    dtmin: RealScalarLike | None = None
    dtmax: RealScalarLike | None = None
    safety: RealScalarLike = 0.9
    factormin: RealScalarLike = 0.2
    factormax: RealScalarLike = 10.0
    norm: Callable = eqx.field(static=True, default=rms_norm)
    jump_ts: Float[ArrayLike, " j"] | None = None
    step_ts: Float[ArrayLike, " s"] | None = None
    error_order: float | None = eqx.field(static=True, default=None)
    revisit_rejected: int | None = eqx.field(static=True, default=None)
    force_dtmin: bool = eqx.field(static=True, default=False)
    predictive: bool = eqx.field(static=True, default=False)
    adaptive = True

    def revisits(self, noise: str) -> int:
        """How many rejected step ends to remember for an SDE with this noise type."""
        if self.revisit_rejected is not None:
            return self.revisit_rejected
        return 32 if noise == "general" else 0

    def __check_init__(self):
        if self.force_dtmin and self.dtmin is None:
            raise ValueError("PID: force_dtmin=True needs a dtmin.")
        if self.revisit_rejected is not None and not (isinstance(self.revisit_rejected, int) and self.revisit_rejected >= 0):
            raise ValueError(f"PID: revisit_rejected must be None or an int >= 0, got {self.revisit_rejected!r}.")
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if is_concrete(value) and float(value) < 0:
                raise ValueError(f"PID: {name} must be non-negative, got {float(value)}.")
        if is_concrete(self.rtol) and is_concrete(self.atol) and float(self.rtol) == 0 == float(self.atol):
            raise ValueError("PID: rtol and atol cannot both be zero.")
        if is_concrete(self.factormin) and is_concrete(self.factormax):
            if not 0 < float(self.factormin) <= 1 <= float(self.factormax):
                raise ValueError("PID: need 0 < factormin <= 1 <= factormax.")

    def init(self) -> PIDState:
        one = jnp.ones((), jnp.result_type(float))
        return PIDState(one, one, jnp.zeros_like(one), jnp.zeros((), bool))

    def scaled_error(self, y0, y1, y_error) -> Array:
        r"""$\|e / (\text{atol} + \text{rtol} \max(|y_0|, |y_1|))\|$; inf if anything is non-finite."""

        def leaf(a, b, e):
            scale = self.atol + self.rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)).astype(jnp.result_type(float))
            # abs first: a complex error's imaginary part counts too.
            return jnp.abs(e).astype(jnp.result_type(float)) / scale

        r = self.norm(jax.tree.map(leaf, y0, y1, y_error))
        finite = jnp.isfinite(r)
        for leaf_y in jax.tree.leaves(y1):
            finite = finite & jnp.all(jnp.isfinite(leaf_y))
        return jnp.where(finite, r, jnp.inf)

    def adapt(self, state: PIDState, h: Array, r: Array, error_order: float):
        """Accept or reject a step of size `h` with scaled error `r`; propose the next size."""
        k = self.error_order if self.error_order is not None else error_order
        accept = r <= 1
        if self.force_dtmin:
            accept = accept | (jnp.isfinite(r) & (h <= self.dtmin * (1 + 1e-6)))
        tiny = jnp.finfo(r.dtype).tiny
        r_safe = jnp.maximum(r, tiny)
        beta1 = (self.pcoeff + self.icoeff + self.dcoeff) / k
        beta2 = -(self.pcoeff + 2 * self.dcoeff) / k
        beta3 = self.dcoeff / k
        pid_factor = self.safety * r_safe**-beta1 * state.prev_error**-beta2 * state.prev_prev_error**-beta3
        if self.predictive:
            h_float = h.astype(r_safe.dtype)
            gustafsson = jnp.where(state.prev_h > 0, h_float / jnp.where(state.prev_h > 0, state.prev_h, 1)
                                   * (state.prev_error / r_safe) ** (1.0 / k), 1.0)
            pid_factor = jnp.minimum(pid_factor, self.safety * r_safe ** (-1.0 / k) * jnp.minimum(1.0, gustafsson))
            pid_factor = jnp.where(state.rejected, jnp.minimum(pid_factor, 1.0), pid_factor)
        grow = jnp.clip(pid_factor, self.factormin, self.factormax)
        shrink = jnp.clip(self.safety * r_safe ** (-1.0 / k), self.factormin, 1.0)
        shrink = jnp.where(jnp.isfinite(r), shrink, self.factormin)
        factor = jnp.where(accept, grow, shrink)
        h_next = h * factor.astype(h.dtype)
        if self.dtmax is not None:
            h_next = jnp.minimum(h_next, self.dtmax)
        if self.dtmin is not None:
            h_next = jnp.maximum(h_next, self.dtmin)
        new_state = PIDState(
            jnp.where(accept, r_safe, state.prev_error),
            jnp.where(accept, state.prev_error, state.prev_prev_error),
            jnp.where(accept, h.astype(state.prev_h.dtype), state.prev_h),
            ~accept,
        )
        return accept, h_next, new_state

    def below_dtmin(self, h: Array, accept: Array) -> Array:
        """A rejected step already at `dtmin` cannot shrink further."""
        if self.dtmin is None:
            return jnp.zeros((), bool)
        return ~accept & (h <= self.dtmin * (1 + 1e-6))


def initial_step_size(vector_field, t0, y0, args, error_order, rtol, atol, norm=rms_norm) -> Array:
    r"""Hairer's starting step: $h = \min(100 h_0, (0.01/\max(d_1, d_2))^{1/k})$.

    With $d_0 = \|y_0\|$, $d_1 = \|f(t_0, y_0)\|$ (scaled by atol + rtol |y_0|),
    $h_0 = 0.01 d_0/d_1$, and $d_2$ the scaled change of $f$ over an Euler step of $h_0$, divided
    by $h_0$. Two evaluations of the vector field.

    References:
        E. Hairer, S. P. Nørsett, G. Wanner, Solving ODEs I, 2nd ed., Sec. II.4, p. 169.
    """
    tdtype = jnp.result_type(t0)
    f0 = vector_field(t0, y0, args)

    def scaled(tree):
        return jax.tree.map(
            lambda x, y: jnp.abs(x).astype(jnp.result_type(float)) / (atol + rtol * jnp.abs(y).astype(jnp.result_type(float))),
            tree,
            y0,
        )

    d0 = norm(scaled(y0))
    d1 = norm(scaled(f0))
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = jnp.where(small, 1e-6, 0.01 * d0 / jnp.where(small, 1.0, d1)).astype(tdtype)
    y1 = jax.tree.map(lambda y, f: y + h0.astype(y.dtype) * f, y0, f0)
    f1 = vector_field(t0 + h0, y1, args)
    d2 = norm(scaled(jax.tree.map(lambda a, b: a - b, f1, f0))) / h0.astype(d1.dtype)
    dmax = jnp.maximum(d1, d2)
    h1 = jnp.where(
        dmax <= 1e-15,
        jnp.maximum(1e-6, h0 * 1e-3),
        (0.01 / jnp.where(dmax <= 1e-15, 1.0, dmax)) ** (1.0 / error_order),
    ).astype(tdtype)
    return jnp.minimum(100 * h0, h1)
