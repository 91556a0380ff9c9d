"""`sdekit.neural.interpolate`: exactness, fill rules, padding, batching, gradients, errors.

References are independent: `numpy.interp` (linear), scipy's natural `CubicSpline` and
`CubicHermiteSpline` with the backward secants as knot slopes (hermite), each through the
channel's observed points only.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.interpolate as si

from sdekit import neural as skn

METHODS = ["linear", "hermite", "natural_cubic"]


def _series(rng, length=9):
    times = np.cumsum(rng.uniform(0.2, 1.5, length))
    return times - times[0] + 0.3


@functools.partial(jax.jit, static_argnames="method")
def _build(times, values, method):
    return skn.interpolate(times, values, method)


@functools.partial(jax.jit, static_argnames="what")
def _at(path, ts, what):
    return jax.vmap(getattr(path, what))(ts)


def _eval(path, ts, what="evaluate"):
    """The path (or its derivative) at `ts`, compiled once per path structure and query count."""
    return np.asarray(_at(path, jnp.asarray(ts, path.ts.dtype), what))


@pytest.mark.parametrize("method", METHODS)
def test_exact_on_linear_functions_with_nans_and_padding(method, x64):
    """Degree 1 is reproduced exactly (value and derivative) between each channel's first and
    last observation, on irregular times, with NaNs at the start, in the middle, at the end and
    padding; outside, the first/last observed values are held and the derivative is zero. In
    float64 to 1e-11 (float32 paths, padded and vmapped, are checked in
    test_padding_vmap_and_index_time and test_gradients_are_finite)."""
    dtype = jnp.dtype(jnp.float64)
    rng = np.random.default_rng(0)
    real = _series(rng, 9)
    times = np.concatenate([real, np.full(3, real[-1])])  # padded to 12
    alpha, beta = np.array([1.0, -2.0, 0.5]), np.array([0.7, 1.3, -0.4])
    values = alpha + beta * times[:, None]
    values[[0, 1], 0] = np.nan  # leading gap
    values[[3, 4, 6], 1] = np.nan  # interior gaps
    values[[7, 8], 2] = np.nan  # trailing gap
    values[9:] = np.nan  # padding
    path = _build(jnp.asarray(times, dtype), jnp.asarray(values, dtype), method)
    tol = 1e-4 if dtype == jnp.float32 else 1e-11
    for c in range(3):
        obs = ~np.isnan(values[:9, c])
        first, last = real[obs][0], real[obs][-1]
        inside = np.linspace(first, last, 41)
        np.testing.assert_allclose(_eval(path, inside)[:, c], alpha[c] + beta[c] * inside, atol=tol * 10, rtol=tol)
        np.testing.assert_allclose(_eval(path, inside[:-1], "derivative")[:, c], beta[c], atol=tol * 10, rtol=tol)
        outside = np.concatenate([np.linspace(0.0, first, 5, endpoint=False), np.linspace(last + 1e-3, last + 5, 5)])
        held = np.where(outside < first, alpha[c] + beta[c] * first, alpha[c] + beta[c] * last)
        np.testing.assert_allclose(_eval(path, outside)[:, c], held, atol=tol * 10, rtol=tol)
        np.testing.assert_array_equal(_eval(path, outside[1:], "derivative")[:, c], 0.0)
    # The time channel the models add is linear: exact too.
    assert path.coeffs.dtype == dtype


def _with_gaps(rng, length=10, channels=2):
    times = _series(rng, length)
    values = rng.normal(size=(length, channels))
    values[[2, 5, 6], 0] = np.nan
    values[[0, 8, 9], 1] = np.nan
    return times, values


def test_linear_matches_numpy_interp(x64):
    rng = np.random.default_rng(1)
    times, values = _with_gaps(rng)
    path = _build(jnp.asarray(times), jnp.asarray(values), "linear")
    query = np.linspace(times[0] - 1, times[-1] + 1, 97)
    for c in range(2):
        obs = ~np.isnan(values[:, c])
        np.testing.assert_allclose(_eval(path, query)[:, c], np.interp(query, times[obs], values[obs, c]), atol=1e-12)


def test_natural_cubic_matches_scipy_and_is_natural(x64):
    rng = np.random.default_rng(2)
    times, values = _with_gaps(rng)
    path = _build(jnp.asarray(times), jnp.asarray(values), "natural_cubic")
    second = jax.vmap(jax.jacfwd(path.derivative))
    for c in range(2):
        obs = ~np.isnan(values[:, c])
        spline = si.CubicSpline(times[obs], values[obs, c], bc_type="natural")
        query = np.linspace(times[obs][0], times[obs][-1], 101)
        np.testing.assert_allclose(_eval(path, query)[:, c], spline(query), atol=1e-10)
        np.testing.assert_allclose(_eval(path, query[:-1], "derivative")[:, c], spline(query[:-1], 1), atol=1e-9)
        ends = jnp.asarray([times[obs][0], times[obs][-1]])
        np.testing.assert_allclose(np.asarray(second(ends))[:, c], 0.0, atol=1e-9)
    # C2 at the interior knots: second derivatives from the left and the right agree.
    knots = jnp.asarray(times[3:7])
    left, right = second(knots - 1e-7), second(knots + 1e-7)
    np.testing.assert_allclose(np.asarray(left), np.asarray(right), atol=1e-5)


def test_hermite_is_the_backward_difference_hermite_spline(x64):
    rng = np.random.default_rng(3)
    times, values = _with_gaps(rng)
    path = _build(jnp.asarray(times), jnp.asarray(values), "hermite")
    for c in range(2):
        obs = ~np.isnan(values[:, c])
        t, y = times[obs], values[obs, c]
        secants = np.diff(y) / np.diff(t)
        slopes = np.concatenate([secants[:1], secants])  # knot i: the secant of the interval ending there
        reference = si.CubicHermiteSpline(t, y, slopes)
        query = np.linspace(t[0], t[-1], 101)
        np.testing.assert_allclose(_eval(path, query)[:, c], reference(query), atol=1e-10)
        np.testing.assert_allclose(_eval(path, query[:-1], "derivative")[:, c], reference(query[:-1], 1), atol=1e-9)


def test_hermite_is_causal_up_to_the_next_observation(x64):
    """The piece on [t_i, t_{i+1}] depends on y_{i-1}, y_i, y_{i+1} only."""
    rng = np.random.default_rng(4)
    times, values = _series(rng, 8), rng.normal(size=(8, 1))
    changed = values.copy()
    changed[5:] += 3.0
    a = _build(jnp.asarray(times), jnp.asarray(values), "hermite")
    b = _build(jnp.asarray(times), jnp.asarray(changed), "hermite")
    query = np.linspace(times[0], times[4], 50)
    np.testing.assert_array_equal(_eval(a, query), _eval(b, query))
    assert not np.allclose(_eval(a, [times[4] + 0.1]), _eval(b, [times[4] + 0.1]))


@pytest.mark.parametrize("method", [m if m == "hermite" else pytest.param(m, marks=pytest.mark.slow) for m in METHODS])
def test_padding_vmap_and_index_time(method):
    """A padded series is the unpadded one (held after its end); a vmapped batch of series of
    different lengths is each series on its own; `in_index_time` is the path at t(s)."""
    rng = np.random.default_rng(5)
    series = []
    for length in (6, 9):
        times = _series(rng, length)
        values = rng.normal(size=(length, 2))
        values[1, 0] = np.nan
        series.append((times, values))
    padded_t = np.stack([np.concatenate([t, np.full(9 - len(t), t[-1])]) for t, _ in series])
    padded_v = np.stack([np.concatenate([v, np.full((9 - len(v), 2), np.nan)]) for _, v in series])
    batch = jax.jit(jax.vmap(lambda t, v: skn.interpolate(t, v, method)))(jnp.asarray(padded_t), jnp.asarray(padded_v))
    for b, (times, values) in enumerate(series):
        alone = _build(jnp.asarray(times), jnp.asarray(values), method)
        one = jax.tree.map(lambda x: x[b], batch)
        assert one.coeffs.dtype == alone.coeffs.dtype == jnp.float32  # x64 off: float32 in, float32 out
        query = np.linspace(times[0] - 0.5, times[-1] + 2, 60)
        np.testing.assert_allclose(_eval(one, query), _eval(alone, query), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(_eval(one, query, "derivative"), _eval(alone, query, "derivative"), rtol=1e-5,
                                   atol=1e-5)
        s = jnp.linspace(0.0, 8.0, 33)
        t, x, dxds, h = _at(one, s, "in_index_time")
        np.testing.assert_allclose(np.asarray(x), _eval(one, np.asarray(t)), rtol=1e-5, atol=1e-5)
        inside = np.asarray(s) < len(times) - 1
        padding = np.asarray(s) >= len(times) - 1 if len(times) < 9 else np.zeros(len(s), bool)
        np.testing.assert_allclose(np.asarray(dxds)[inside], (_eval(one, np.asarray(t), "derivative")
                                                               * np.asarray(h)[:, None])[inside], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(h)[padding], 0.0)  # padding: no time passes


def test_channels_with_one_or_no_observation(x64):
    times = jnp.array([0.0, 1.0, 2.0, 3.0])
    values = jnp.array([[jnp.nan, jnp.nan, 1.0], [2.0, jnp.nan, 2.0], [jnp.nan, jnp.nan, 3.0], [jnp.nan] * 3])
    path = _build(times, values, "natural_cubic")
    out = _eval(path, np.linspace(-1, 4, 11))
    np.testing.assert_array_equal(out[:, 0], 2.0)  # one observation: constant
    np.testing.assert_array_equal(out[:, 1], 0.0)  # none: zero


@pytest.mark.parametrize("method", METHODS)
def test_gradients_are_finite(method):
    rng = np.random.default_rng(6)
    times, values = _with_gaps(rng)
    times, values = jnp.asarray(times, jnp.float32), jnp.asarray(values, jnp.float32)
    query = jnp.linspace(times[0] - 0.5, times[-1] + 0.5, 23)

    def loss(v, q):
        path = skn.interpolate(times, v, method)
        return jnp.sum(jax.vmap(path.evaluate)(q) ** 2) + jnp.sum(jax.vmap(path.derivative)(q) ** 2)

    grad_v, grad_q = jax.jit(jax.grad(loss, argnums=(0, 1)))(values, query)
    observed = ~jnp.isnan(values)
    assert bool(jnp.all(jnp.isfinite(jnp.where(observed, grad_v, 0.0))))
    assert bool(jnp.all(jnp.where(observed, True, grad_v == 0.0)))
    assert bool(jnp.all(jnp.isfinite(grad_q)))


def test_bad_input():
    good_t, good_v = jnp.arange(4.0), jnp.ones((4, 2))
    with pytest.raises(ValueError, match="method"):
        skn.interpolate(good_t, good_v, "cubic")
    with pytest.raises(ValueError, match="shape"):
        skn.interpolate(good_t, jnp.ones((5, 2)))
    with pytest.raises(ValueError, match="shape"):
        skn.interpolate(good_t[:, None], good_v)
    with pytest.raises(Exception, match="strictly increasing"):
        skn.interpolate(jnp.array([0.0, 2.0, 1.0, 3.0]), good_v)
    with pytest.raises(Exception, match="strictly increasing"):  # a repeat before the end is not padding
        jax.jit(skn.interpolate)(jnp.array([0.0, 1.0, 1.0, 3.0]), good_v)
    with pytest.raises(Exception, match="all NaN"):
        jax.vmap(skn.interpolate)(jnp.stack([good_t, good_t]), jnp.stack([good_v, jnp.full((4, 2), jnp.nan)]))
