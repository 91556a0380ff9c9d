r"""Control paths: NaN-aware interpolation of one irregularly sampled series.

`interpolate(times, values, method)` returns a `ControlPath`, a piecewise cubic
$X(t) = a_i + b_i u + c_i u^2 + d_i u^3$, $u = t - t_i$ on every interval $[t_i, t_{i+1}]$ of
the observation grid, with the analytic derivative. Each channel is interpolated through its
own observed points only (see `interpolate` for the fill rules); padding (repeated trailing
times) gives zero-length intervals that hold the last value.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int

METHODS = ("hermite", "linear", "natural_cubic")


class ControlPath(eqx.Module):
    r"""A piecewise-cubic path through one series' observations (build it with `interpolate`).

    Attributes:
        ts: the knots, shape `(L,)` (the observation times, padding repeating the last one).
        coeffs: shape `(L - 1, 4, C)`: $(a_i, b_i, c_i, d_i)$ of interval $i$ in $u = t - t_i$.
        last: the index of the last real knot (`L - 1` without padding).
        method: the interpolation method (static).

    `evaluate(t)` is continuous and held constant outside $[t_0, t_{\text{last}}]$;
    `derivative(t)` is the analytic derivative of the piece holding `t` (the right derivative
    at a knot, the left one at the last knot, zero outside the interval).
    """

    ts: Float[Array, " L"]
    coeffs: Float[Array, "L-1 4 C"]
    last: Int[Array, ""]
    method: str = eqx.field(static=True)

    def _piece(self, t):
        t0, t_end = self.ts[0], self.ts[self.last]
        inside = (t >= t0) & (t <= t_end)
        # `where`, not `clip`: at a boundary the derivative in t goes wholly to one branch.
        tc = jnp.where(t < t0, t0, jnp.where(t > t_end, t_end, t))
        i = jnp.searchsorted(self.ts, tc, side="right").astype(jnp.int32) - 1
        i = jnp.clip(i, 0, jnp.maximum(self.last - 1, 0))
        return self.coeffs[i], tc - self.ts[i], inside

    def evaluate(self, t: Float[ArrayLike, ""]) -> Float[Array, " C"]:
        """$X(t)$ (shape `(C,)`), held at the end values outside the observed interval."""
        (a, b, c, d), u, _ = self._piece(jnp.asarray(t, self.ts.dtype))
        return a + u * (b + u * (c + u * d))

    def derivative(self, t: Float[ArrayLike, ""]) -> Float[Array, " C"]:
        r"""$X'(t)$ (shape `(C,)`): the derivative of the piece holding `t`; zero outside."""
        (a, b, c, d), u, inside = self._piece(jnp.asarray(t, self.ts.dtype))
        return jnp.where(inside, b + u * (2 * c + 3 * d * u), jnp.zeros_like(b))

    def in_index_time(self, s: Float[ArrayLike, ""]):
        r"""The path in index time $s$ (knot $i$ at $s = i$, time linear in $s$ on each interval):
        returns $(t(s), X(t(s)), \mathrm{d}X/\mathrm{d}s, \mathrm{d}t/\mathrm{d}s)$, with
        $\mathrm{d}t/\mathrm{d}s = t_{i+1} - t_i$ on $[i, i+1)$ (zero on padding). No search:
        the interval is $\lfloor s \rfloor$. Used by the models, which solve in index time."""
        s = jnp.asarray(s, self.ts.dtype)
        i = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, self.ts.shape[0] - 2)
        ts = lax.stop_gradient(self.ts)  # (the knots are data: no derivative, as in `interpolate`)
        h = ts[i + 1] - ts[i]
        u = (s - i.astype(s.dtype)) * h
        a, b, c, d = self.coeffs[i]
        x = a + u * (b + u * (c + u * d))
        return ts[i] + u, x, (b + u * (2 * c + 3 * d * u)) * h, h


def interpolate(
    times: Float[ArrayLike, " L"],
    values: Float[ArrayLike, "L C"],
    method: str = "hermite",
) -> ControlPath:
    r"""Interpolate one irregularly sampled, possibly padded series with missing values.

    Methods (each exact on linear functions, $X(t) = \alpha + \beta t$):

    - `"linear"`: piecewise linear through the observed points (continuous; exact on degree 1).
    - `"hermite"`: backward-difference cubic Hermite (Kidger et al. 2021, as diffrax's
      `backward_hermite_coefficients`): on $[t_i, t_{i+1}]$ the cubic through $y_i, y_{i+1}$
      whose slope is the secant of the previous interval at $t_i$ and its own secant at
      $t_{i+1}$ (the first interval uses its own secant at both ends). $C^1$; exact on degree 1
      only (not on quadratics); the piece on $[t_i, t_{i+1}]$ depends only on
      $y_{i-1}, y_i, y_{i+1}$, so $X$ up to $t_{i+1}$ is known once $y_{i+1}$ is observed.
    - `"natural_cubic"`: the natural cubic spline ($C^2$, $X'' = 0$ at both ends), from the
      tridiagonal system for the knots' second derivatives solved by a scan (Thomas'
      algorithm); exact on degree 1 (the end conditions exclude quadratics).

    Fill rules, per channel: the channel is interpolated through its own observed (non-NaN)
    points only, so a missing interior point is interpolated over from the neighbouring
    observations of that channel by the method; before the first observation the path holds
    the first observed value, after the last one the last observed value; a channel with one
    observation is that constant, and a channel with none is zero. Padding: times that repeat
    the last time after the end (and their values, NaN or not) are ignored and hold the last
    value.

    Everything is vectorised (a `searchsorted` and a scan over the knots, no Python loop over
    time), so `jit`, `vmap` (over a batch of series) and gradients go through.

    Args:
        times: increasing observation times, shape `(L,)`; padding repeats the last time.
        values: shape `(L, C)`, NaN where missing.
        method: `"hermite"` (default), `"linear"` or `"natural_cubic"`.

    Returns:
        A `ControlPath` with `.evaluate(t)` and `.derivative(t)`.

    Raises:
        ValueError: for mismatched shapes or an unknown method (at trace time).
        equinox's runtime error (under `jit`/`vmap` too): times that are NaN or not strictly
            increasing before the padding, or a series with no observation at all.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> ts = jnp.array([0.0, 1.0, 2.5, 4.0, 4.0])          # the last time repeated: padding
        >>> ys = jnp.array([[0.0], [jnp.nan], [5.0], [8.0], [jnp.nan]])   # y = 2t, one missing
        >>> X = skn.interpolate(ts, ys, method="linear")
        >>> X.evaluate(1.0), X.derivative(3.0), X.evaluate(9.0)
        (Array([2.], dtype=float32), Array([2.], dtype=float32), Array([8.], dtype=float32))

    References:
        P. Kidger, J. Morrill, J. Foster, T. Lyons, "Neural Controlled Differential Equations
        for Irregular Time Series", NeurIPS 2020; J. Morrill, P. Kidger, L. Yang, T. Lyons,
        "Neural Controlled Differential Equations for Online Prediction Tasks", 2021
        (backward Hermite); C. de Boor, A Practical Guide to Splines (1978), Ch. IV.
    """
    if method not in METHODS:
        raise ValueError(f"interpolate: method must be one of {METHODS}, got {method!r}.")
    times, values = jnp.asarray(times), jnp.asarray(values)
    if times.ndim != 1:
        raise ValueError(f"interpolate: times must have shape (L,), got {times.shape}.")
    if values.ndim != 2 or values.shape[0] != times.shape[0]:
        raise ValueError(
            f"interpolate: values must have shape (L, C) with L = len(times) = {times.shape[0]}, got {values.shape}."
        )
    if times.shape[0] == 0:
        raise ValueError("interpolate: the series has no time points.")
    dtype = np.promote_types(_float(times.dtype), _float(values.dtype))
    times, values = times.astype(dtype), values.astype(dtype)
    if times.shape[0] == 1:  # one knot: a zero-length interval (padding) holds it
        times, values = jnp.concatenate([times, times]), jnp.concatenate([values, values])
    last = _checked_last(times, values)
    times = lax.stop_gradient(times)
    coeffs = jax.vmap(lambda y: _channel(times, y, last, method), in_axes=1, out_axes=2)(values)
    return ControlPath(times, coeffs, last, method)


def _float(dtype):
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def last_knot(times):
    """The index of the last real knot of a series whose padding repeats its last time."""
    index = jnp.arange(1, times.shape[0], dtype=jnp.int32)
    return jnp.max(jnp.where(jnp.diff(times) > 0, index, 0))


def check_observed(values, last):
    """`values` with a run-time check that some value up to knot `last` is observed."""
    real = jnp.arange(values.shape[0], dtype=jnp.int32) <= last
    empty = ~jnp.any(real[:, None] & ~jnp.isnan(values))
    return eqx.error_if(values, empty, "interpolate: the series has no observed value (all NaN).")


def _checked_last(times, values):
    """The index of the last real knot (padding repeats it), with run-time checks attached."""
    steps = jnp.diff(times)
    rising = steps > 0
    last = last_knot(times)
    bad_times = jnp.any(jnp.isnan(times)) | jnp.any(steps < 0) | (jnp.sum(rising, dtype=jnp.int32) != last)
    last = eqx.error_if(
        last, bad_times,
        "interpolate: times must be strictly increasing (padding may only repeat the last time at the end), "
        "and not NaN.",
    )
    real = jnp.arange(times.shape[0], dtype=jnp.int32) <= last
    empty = ~jnp.any(real[:, None] & ~jnp.isnan(values))
    return eqx.error_if(last, empty, "interpolate: the series has no observed value (all NaN).")



def _channel(times, y, last, method):
    """Coefficients `(L - 1, 4)` of one channel on the grid's intervals: the method's pieces
    through the channel's observed points, re-expanded about each grid knot."""
    n = times.shape[0]
    index = jnp.arange(n, dtype=jnp.int32)
    observed = ~jnp.isnan(y) & (index <= last)
    k = jnp.sum(observed, dtype=jnp.int32)
    order = jnp.argsort(~observed, stable=True)  # observed points first, in time order
    k_last = jnp.maximum(k - 1, 0)
    ot, oy = times[order], jnp.where(observed[order], y[order], 0)
    # The compacted points, padded by repeating the last observed one (zero-length intervals).
    ot = jnp.where(index < k, ot, ot[k_last])
    oy = jnp.where(index < k, oy, oy[k_last])
    pieces = _PIECES[method](ot, oy, index[:-1] < k - 1)
    start = times[:-1]
    p = jnp.clip(jnp.searchsorted(ot, start, side="right").astype(jnp.int32) - 1, 0, jnp.maximum(k - 2, 0))
    a, b, c, d = pieces[p].T
    u = start - ot[p]
    shifted = jnp.stack([a + u * (b + u * (c + u * d)), b + u * (2 * c + 3 * d * u), c + 3 * d * u, d], axis=-1)
    zero = jnp.zeros_like(shifted)
    before = zero.at[:, 0].set(oy[0])
    after = zero.at[:, 0].set(oy[k_last])
    out = jnp.where((start < ot[0])[:, None], before, shifted)
    out = jnp.where((start >= ot[k_last])[:, None], after, out)
    return jnp.where(k == 0, zero, out)


def _secants(t, y, real):
    h = jnp.diff(t)
    safe = jnp.where(real, h, 1)
    return h, safe, jnp.where(real, jnp.diff(y) / safe, 0)


def _linear(t, y, real):
    _, _, s = _secants(t, y, real)
    zero = jnp.zeros_like(s)
    return jnp.stack([y[:-1], s, zero, zero], axis=-1)


def _hermite(t, y, real):
    _, h, s = _secants(t, y, real)
    m0 = jnp.concatenate([s[:1], s[:-1]])  # the previous interval's secant at the left knot
    c = jnp.where(real, 2 * (s - m0) / h, 0)
    d = jnp.where(real, (m0 - s) / h**2, 0)
    return jnp.stack([y[:-1], jnp.where(real, m0, 0), c, d], axis=-1)


def _natural_cubic(t, y, real):
    h_raw, h, s = _secants(t, y, real)
    hr = jnp.where(real, h_raw, 0)
    # Row r (knot r) couples M_{r-1}, M_r, M_{r+1}; rows without two real neighbours are M_r = 0.
    interior = jnp.concatenate([jnp.zeros(1, bool), real[1:] & real[:-1], jnp.zeros(1, bool)])
    h_left = jnp.concatenate([jnp.zeros(1, h.dtype), hr])
    h_right = jnp.concatenate([hr, jnp.zeros(1, h.dtype)])
    s_left = jnp.concatenate([jnp.zeros(1, s.dtype), s])
    s_right = jnp.concatenate([s, jnp.zeros(1, s.dtype)])
    lower = jnp.where(interior, h_left, 0)
    diag = jnp.where(interior, 2 * (h_left + h_right), 1)
    upper = jnp.where(interior, h_right, 0)
    rhs = jnp.where(interior, 6 * (s_right - s_left), 0)
    m = _thomas(lower, diag, upper, rhs)
    m0, m1 = m[:-1], m[1:]
    b = s - h * (2 * m0 + m1) / 6
    c = m0 / 2
    d = (m1 - m0) / (6 * h)
    zero = jnp.zeros_like(s)
    return jnp.stack([y[:-1], jnp.where(real, b, 0), jnp.where(real, c, zero), jnp.where(real, d, zero)], axis=-1)


def _thomas(lower, diag, upper, rhs):
    """Solve a tridiagonal system (diagonally dominant: no pivoting) with two scans."""

    def forward(carry, row):
        c_prev, d_prev = carry
        a, b, c, d = row
        denom = b - a * c_prev
        c_new, d_new = c / denom, (d - a * d_prev) / denom
        return (c_new, d_new), (c_new, d_new)

    zero = jnp.zeros((), diag.dtype)
    _, (cp, dp) = lax.scan(forward, (zero, zero), (lower, diag, upper, rhs))

    def backward(x_next, row):
        c, d = row
        x = d - c * x_next
        return x, x

    _, x = lax.scan(backward, zero, (cp, dp), reverse=True)
    return x


_PIECES = {"linear": _linear, "hermite": _hermite, "natural_cubic": _natural_cubic}
