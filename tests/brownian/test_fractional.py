"""Markov-approximate fractional Brownian motion: weights against quadrature of their defining
integrals, covariances against the exact fBM's, convergence in n_ou, H = 1/2, gradients in H."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import sdekit as sk
from sdekit.brownian import _fractional_weights as weights

QUAD = {"epsabs": 1e-15, "epsrel": 1e-13, "limit": 400}


# ---------------------------------------------------------------- the defining integrals, by quad
def _second_moment_ou(kind, gi, gj, t):
    """E[Yhat^i_t Yhat^j_t] written from the OU definitions."""
    if kind == "type2":  # int_0^t e^{-gi (t-u)} e^{-gj (t-u)} du
        return integrate.quad(lambda v: np.exp(-(gi + gj) * v), 0, t, **QUAD)[0]
    # Y_t - Y_0 = int_{-inf}^t [e^{-g (t-u)} - 1_{u<0} e^{g u}] dW_u
    inside = integrate.quad(lambda v: np.exp(-(gi + gj) * v), 0, t, **QUAD)[0]
    past = integrate.quad(lambda w: (np.exp(-gi * (t + w)) - np.exp(-gi * w)) * (np.exp(-gj * (t + w)) - np.exp(-gj * w)),
                          0, np.inf, **QUAD)[0]
    return inside + past


def _cross_moment(kind, hurst, g, t):
    """E[B^H_t Yhat_t], B^H from its kernel (normalised by 1/Gamma(H + 1/2))."""
    a = hurst - 0.5
    # u in (0, t), v = t - u: kernel v^a (algebraic weight handles the singularity) times e^{-g v}
    inside = integrate.quad(lambda v: np.exp(-g * v), 0, t, weight="alg", wvar=(a, 0.0), **QUAD)[0]
    if kind == "type2":
        return inside / special.gamma(hurst + 0.5)

    # u = -w < 0: kernels [(t + w)^a - w^a] and [e^{-g (t + w)} - e^{-g w}]; the w^a part near 0
    # with the algebraic weight.
    y_kernel = lambda w: np.exp(-g * (t + w)) - np.exp(-g * w)  # noqa: E731
    outside = integrate.quad(lambda w: (t + w) ** a * y_kernel(w), 0, np.inf, **QUAD)[0]
    outside -= integrate.quad(y_kernel, 0, 1, weight="alg", wvar=(a, 0.0), **QUAD)[0]
    outside -= integrate.quad(lambda w: w**a * y_kernel(w), 1, np.inf, **QUAD)[0]
    return (inside + outside) / special.gamma(hurst + 0.5)


def _quadrature_weights(kind, hurst, gamma, horizon):
    k = len(gamma)
    A = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            A[i, j] = A[j, i] = integrate.quad(lambda t: _second_moment_ou(kind, gamma[i], gamma[j], t), 0, horizon, **QUAD)[0]
    b = np.array([integrate.quad(lambda t: _cross_moment(kind, hurst, g, t), 0, horizon, **QUAD)[0] for g in gamma])
    return A, b, np.linalg.solve(A, b)


def _exact_covariance(kind, hurst, s, t):
    """The exact fBM covariance: closed form for type I (Mandelbrot–Van Ness / Gamma(H + 1/2),
    variance t^{2H} / (Gamma(2H + 1) sin(pi H))), quadrature of the kernel product for type II."""
    if kind == "type1":
        v = 1 / (special.gamma(2 * hurst + 1) * np.sin(np.pi * hurst))
        return v / 2 * (s ** (2 * hurst) + t ** (2 * hurst) - abs(t - s) ** (2 * hurst))
    lo, hi = min(s, t), max(s, t)
    # v = lo - u: v^a (hi - lo + v)^a, the algebraic weight at v = 0 (and at v = lo - hi = 0 on the diagonal)
    a = hurst - 0.5
    if hi == lo:
        return lo ** (2 * hurst) / (2 * hurst) / special.gamma(hurst + 0.5) ** 2
    value = integrate.quad(lambda v: (hi - lo + v) ** a, 0, lo, weight="alg", wvar=(a, 0.0), **QUAD)[0]
    return value / special.gamma(hurst + 0.5) ** 2


TIMES = np.array([0.1, 0.3, 0.55, 0.8, 1.0])


def _covariance_error(kind, hurst, n_ou, gamma_max=20.0):
    fbm = sk.brownian.FractionalBM(hurst, kind=kind, n_ou=n_ou, gamma_max=gamma_max, horizon=1.0)
    approx = np.asarray(fbm.covariance_matrix(TIMES))
    exact = np.array([[_exact_covariance(kind, hurst, s, t) for t in TIMES] for s in TIMES])
    return np.max(np.abs(approx - exact)) / np.max(np.abs(exact))


# ---------------------------------------------------------------- tests
def test_default_speeds_are_the_geometric_grid():
    fbm = sk.brownian.FractionalBM(0.3)
    np.testing.assert_allclose(fbm.gamma, [0.05, 0.05**0.5, 1.0, 20**0.5, 20.0], rtol=1e-6)
    assert sk.brownian.FractionalBM(0.3, n_ou=1).gamma.shape == (1,)


@pytest.mark.parametrize("kind", ["type1", "type2"])
@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.8])
def test_weights_equal_quadrature_of_the_defining_integrals(x64, kind, hurst):
    fbm = sk.brownian.FractionalBM(hurst, kind=kind, n_ou=3, gamma_max=8.0, horizon=1.3)
    gamma = np.asarray(fbm.gamma)
    A, b, omega = _quadrature_weights(kind, hurst, gamma, 1.3)
    np.testing.assert_allclose(weights.gram(kind, fbm.gamma, fbm.horizon), A, rtol=1e-11, atol=0)
    np.testing.assert_allclose(weights.cross(kind, fbm.gamma, fbm.hurst, fbm.horizon), b, rtol=1e-11, atol=0)
    np.testing.assert_allclose(fbm.omega, omega, rtol=1e-10, atol=1e-10)
    # The error is the mean-squared distance: c by quadrature of the exact variance.
    c = integrate.quad(lambda t: _exact_covariance(kind, hurst, t, t), 0, 1.3, **QUAD)[0]
    np.testing.assert_allclose(fbm.error(), (omega @ A @ omega - 2 * b @ omega + c) / 1.3, rtol=1e-9, atol=1e-13)


# The covariance's largest relative gap on [0.1, 1] at K = 16, gamma_max = 20: the representation
# cannot resolve time scales much shorter than 1 / gamma_max or longer than gamma_max, which
# costs type I (stationary start, long memory) most at H = 0.8 (measured 0.05, 0.005, 0.18 for
# type I; 0.028, 6e-8, 5e-4 for type II).
COVARIANCE_BOUND = {("type1", 0.2): 0.07, ("type1", 0.5): 0.01, ("type1", 0.8): 0.25,
                    ("type2", 0.2): 0.04, ("type2", 0.5): 1e-6, ("type2", 0.8): 2e-3}


@pytest.mark.parametrize("kind", ["type1", "type2"])
def test_error_falls_as_n_ou_grows_and_covariance_approaches_exact(x64, kind):
    for hurst in (0.2, 0.5, 0.8):
        errors = [float(sk.brownian.FractionalBM(hurst, kind=kind, n_ou=k).error()) for k in (2, 4, 8, 16)]
        assert all(e1 < e0 for e0, e1 in zip(errors, errors[1:]) if e0 > 1e-13), (hurst, errors)
        cov_errors = [_covariance_error(kind, hurst, k) for k in (2, 16)]
        assert cov_errors[1] < cov_errors[0], (hurst, cov_errors)
        assert cov_errors[1] < COVARIANCE_BOUND[kind, hurst], (hurst, cov_errors)
    # With a wider speed range the long-memory case closes in too.
    assert _covariance_error(kind, 0.8, 16, gamma_max=1e3) < 0.06


def test_exact_covariance_method_matches_the_closed_form(x64):
    fbm = sk.brownian.FractionalBM(0.3, kind="type1")
    assert float(fbm.exact_variance(1.0)) == pytest.approx(1.383, abs=1e-3)  # the reference value
    np.testing.assert_allclose(fbm.exact_covariance(0.4, 0.9), _exact_covariance("type1", 0.3, 0.4, 0.9), rtol=1e-12)
    fbm2 = sk.brownian.FractionalBM(0.3, kind="type2")
    np.testing.assert_allclose(fbm2.exact_variance(0.7), _exact_covariance("type2", 0.3, 0.7, 0.7), rtol=1e-12)
    with pytest.raises(ValueError, match="type I only"):
        fbm2.exact_covariance(0.4, 0.9)


def test_half_recovers_brownian_motion(x64):
    times = [0.1, 0.5, 1.0]
    # Type II at H = 1/2 is W itself; the optimum reaches it quickly.
    brownian = np.minimum.outer(times, times)
    fbm = sk.brownian.FractionalBM(0.5, kind="type2", n_ou=8)
    assert float(fbm.error()) < 1e-8
    np.testing.assert_allclose(fbm.covariance_matrix(np.array(times)), brownian, atol=1e-4)
    assert float(fbm.covariance(0.5, 1.0)) == pytest.approx(0.5, abs=1e-4)
    # Type I (stationary OU increments) converges to W as the slowest speed goes to zero.
    gaps = []
    for n_ou, gamma_max in [(4, 20.0), (16, 1e2), (16, 1e3)]:
        fbm = sk.brownian.FractionalBM(0.5, kind="type1", n_ou=n_ou, gamma_max=gamma_max)
        gaps.append(np.max(np.abs(np.asarray(fbm.covariance_matrix(np.array(times))) - brownian)))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.02, gaps
    assert float(sk.brownian.FractionalBM(0.5, kind="type1").exact_variance(0.7)) == pytest.approx(0.7, rel=1e-12)


def test_upper_gamma_times_exp_is_stable_and_accurate(x64):
    a = np.array([0.55, 1.0, 1.45])[:, None]
    z = np.array([0.5, 3.0, 9.999, 10.0, 10.001, 25.0, 200.0, 600.0])[None, :]
    a, z = np.broadcast_arrays(a, z)
    value = weights.upper_gamma_times_exp(jnp.asarray(a), jnp.asarray(z))
    np.testing.assert_allclose(value, special.gammaincc(a, z) * np.exp(z), rtol=1e-12)
    # Far beyond exp's range: the asymptotic series z^{a-1} / Gamma(a) (1 + (a-1)/z + (a-1)(a-2)/z^2 + ...).
    big = np.array([5e3, 1e5])
    series = big ** (0.3 - 1) / special.gamma(0.3) * (1 + (0.3 - 1) / big + (0.3 - 1) * (0.3 - 2) / big**2
                                                      + (0.3 - 1) * (0.3 - 2) * (0.3 - 3) / big**3)
    np.testing.assert_allclose(weights.upper_gamma_times_exp(jnp.asarray(0.3), jnp.asarray(big)), series, rtol=1e-12)
    # d/da against finite differences of scipy's Q (both branches).
    h = 1e-6
    fd = (special.gammaincc(a + h, z) - special.gammaincc(a - h, z)) / (2 * h) * np.exp(z)
    grad = jax.vmap(jax.grad(weights.upper_gamma_times_exp))(jnp.asarray(a.ravel()), jnp.asarray(z.ravel()))
    np.testing.assert_allclose(grad, fd.ravel(), rtol=1e-6)


def test_upper_gamma_times_exp_stays_finite_in_float32():
    z = jnp.array([5.0, 50.0, 500.0, 5000.0], jnp.float32)
    value = weights.upper_gamma_times_exp(jnp.float32(0.8), z)
    assert value.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(value)))
    np.testing.assert_allclose(value[:2], special.gammaincc(0.8, np.array([5.0, 50.0])) * np.exp([5.0, 50.0]), rtol=1e-5)


@pytest.mark.parametrize("kind", ["type1", "type2"])
def test_gradients_in_hurst_match_finite_differences(x64, kind):
    def weights_and_error(h):
        fbm = sk.brownian.FractionalBM(h, kind=kind, horizon=2.0)
        return fbm.omega, fbm.error()

    jacobian = jax.jit(jax.jacrev(weights_and_error))
    for h in (0.25, 0.7):
        # A's condition number (~1e3) puts ~1e-13 of rounding into omega: a step of 1e-4 keeps
        # the difference quotient's rounding and truncation both near 1e-8.
        step = 1e-4
        (w_plus, e_plus), (w_minus, e_minus) = weights_and_error(h + step), weights_and_error(h - step)
        d_omega, d_error = jacobian(jnp.asarray(h))
        np.testing.assert_allclose(d_omega, (w_plus - w_minus) / (2 * step), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(d_error, (e_plus - e_minus) / (2 * step), rtol=1e-6, atol=1e-9)


def test_works_under_jit_with_a_traced_hurst_and_in_both_dtypes(dtype):
    @jax.jit
    def weights_of(h):
        return sk.brownian.FractionalBM(h, kind="type1").omega

    w = weights_of(jnp.asarray(0.3, dtype))
    assert w.dtype == dtype and bool(jnp.all(jnp.isfinite(w)))
    with jax.enable_x64(True):
        reference = np.asarray(weights_of(jnp.asarray(0.3, jnp.float64)))
    # float32: A's condition number (~1e3 at K = 5) costs about three digits.
    np.testing.assert_allclose(w, reference, rtol=0, atol=1e-3 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"hurst": 0.0}, "hurst must be in"),
    ({"hurst": 1.0}, "hurst must be in"),
    ({"hurst": -0.2}, "hurst must be in"),
    ({"hurst": 0.5, "n_ou": 0}, "n_ou must be an integer"),
    ({"hurst": 0.5, "n_ou": 2.0}, "n_ou must be an integer"),
    ({"hurst": 0.5, "gamma_max": 1.0}, "gamma_max must be > 1"),
    ({"hurst": 0.5, "gamma_max": 0.5}, "gamma_max must be > 1"),
    ({"hurst": 0.5, "horizon": 0.0}, "horizon must be > 0"),
    ({"hurst": 0.5, "kind": "type3"}, "kind must be one of"),
    ({"hurst": 0.5, "kind": "I"}, "kind must be one of"),
])
def test_bad_input_is_refused(kwargs, match):
    hurst = kwargs.pop("hurst")
    with pytest.raises(ValueError, match=match):
        sk.brownian.FractionalBM(hurst, **kwargs)
