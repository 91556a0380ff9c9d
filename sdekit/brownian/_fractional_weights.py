r"""Closed forms behind the Markov approximation of fractional Brownian motion (MA-fBM).

Fractional Brownian motion $B^H$ is approximated by $\hat B_t = \sum_k \omega_k Y^k_t$, a
combination of Ornstein–Uhlenbeck processes $dY^k = -\gamma_k Y^k\,dt + dW_t$ that share one
Brownian motion $W$. The weights minimise the mean-squared error over a horizon $T$,

$$\mathcal{E}(\omega) = \frac{1}{T}\int_0^T \mathbb{E}\big(B^H_t - \hat B_t\big)^2 dt
= \frac{1}{T}\big(\omega^\top A\omega - 2 b^\top\omega + c\big),\qquad \omega^\star = A^{-1}b,$$

with $A_{ij} = \int_0^T \mathbb{E}[\hat Y^i_t \hat Y^j_t]\,dt$, $b_k = \int_0^T \mathbb{E}[B^H_t
\hat Y^k_t]\,dt$, $c = \int_0^T \mathbb{E}[(B^H_t)^2]\,dt$. Here $\hat Y = Y$ started at 0
for type II (Riemann–Liouville, $B^H_t = \Gamma(H+\tfrac12)^{-1}\int_0^t (t-u)^{H-1/2}dW_u$)
and $\hat Y_t = Y_t - Y_0$ with $Y$ stationary for type I (Mandelbrot–Van Ness,
$B^H_t = \Gamma(H+\tfrac12)^{-1}\int_{-\infty}^t [(t-u)_+^{H-1/2} - (-u)_+^{H-1/2}]dW_u$,
whose variance is $t^{2H}/(\Gamma(2H+1)\sin\pi H)$). With $a = H + \tfrac12$ and $P, Q$ the
regularised lower and upper incomplete gamma functions:

- type II: $A_{ij} = \big(T - (1 - e^{-(\gamma_i+\gamma_j)T})/(\gamma_i+\gamma_j)\big)/(\gamma_i+\gamma_j)$,
  $b_k = T\gamma_k^{-a}P(a, \gamma_kT) - a\gamma_k^{-a-1}P(a+1, \gamma_kT)$,
  $c = T^{2H+1}/(2H(2H+1)\Gamma(a)^2)$;
- type I: $A_{ij} = \big(2T - (1-e^{-\gamma_iT})/\gamma_i - (1-e^{-\gamma_jT})/\gamma_j\big)/(\gamma_i+\gamma_j)$,
  $b_k = 2T\gamma_k^{-a} - T^a/(\gamma_k\Gamma(a+1)) + (e^{-\gamma_kT} - Q(a,\gamma_kT)e^{\gamma_kT})\gamma_k^{-a-1}$,
  $c = T^{2H+1}/((2H+1)\Gamma(2H+1)\sin\pi H)$.

$Q(a, z)e^{z}$ overflows as written for large $z$; `upper_gamma_times_exp` evaluates it by
Legendre's continued fraction there.

Reference: Daems, Opper, Crevecoeur, Birdal, "Variational Inference for SDEs Driven by
Fractional Noise", ICLR 2024 (arXiv 2310.12975), section 3 and appendix; Harms & Stefanovits
(2019) for the OU representation of the fractional kernels.
"""

import functools

import jax
import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaincc, gammaln

#: Below this argument $Q(a, z)e^z$ is evaluated directly; above, by the continued fraction.
_SWITCH = 10.0
#: Continued-fraction terms: at $z \ge 10$ and $a \le 1.5$ forty terms reach float64 rounding.
_CF_TERMS = 40


def speeds(n_ou: int, gamma_max, dtype) -> jax.Array:
    r"""The geometric grid $\gamma_k = \gamma_{\max}^{(2k - K - 1)/(K - 1)}$, $k = 1..K$: from
    $1/\gamma_{\max}$ to $\gamma_{\max}$ (a single OU process has speed 1)."""
    gamma_max = jnp.asarray(gamma_max, dtype)
    if n_ou == 1:
        return jnp.ones((1,), dtype)
    return gamma_max ** jnp.linspace(-1.0, 1.0, n_ou, dtype=dtype)


@jax.jit
def upper_gamma_times_exp(a, z):
    r"""$Q(a, z)\,e^{z}$, the regularised upper incomplete gamma function times $e^z$, for $z > 0$.

    Directly for $z < 10$; for $z \ge 10$ by the continued fraction
    $\Gamma(a, z) = e^{-z}z^a / (z + 1 - a - \tfrac{1\cdot(1-a)}{z + 3 - a - \tfrac{2(2-a)}{z + 5 - a - \dots}})$
    (modified Lentz, a fixed number of terms), which never forms $e^{z}$. Differentiable in
    both arguments (the branch not taken sees a clamped argument, so its gradient is finite).
    """
    small = jnp.minimum(z, _SWITCH)
    large = jnp.maximum(z, _SWITCH)
    direct = gammaincc(a, small) * jnp.exp(small)
    return jnp.where(z < _SWITCH, direct, _continued_fraction(a, large))


def _continued_fraction(a, z):
    tiny = jnp.asarray(jnp.finfo(jnp.result_type(z)).tiny * 1e4, jnp.result_type(z))
    a = jnp.broadcast_to(a, jnp.shape(z)).astype(jnp.result_type(z))
    b = z + 1 - a
    d = 1 / b
    init = (b, jnp.full_like(b, 1 / tiny), d, d)
    terms = jnp.arange(1, _CF_TERMS + 1, dtype=b.dtype)
    h = jax.lax.scan(functools.partial(_lentz_term, a=a, tiny=tiny), init, terms)[0][3]
    return jnp.exp(a * jnp.log(z) - gammaln(a)) * h


def _lentz_term(carry, n, a, tiny):
    b, c, d, h = carry
    an = -n * (n - a)
    b = b + 2
    d = an * d + b
    d = jnp.where(jnp.abs(d) < tiny, tiny, d)
    c = b + an / c
    c = jnp.where(jnp.abs(c) < tiny, tiny, c)
    d = 1 / d
    return (b, c, d, h * d * c), None


def gram(kind: str, gamma, horizon):
    r"""$A_{ij} = \int_0^T \mathbb{E}[\hat Y^i_t \hat Y^j_t]\,dt$ (see the module docstring)."""
    gi, gj = gamma[:, None], gamma[None, :]
    s = gi + gj
    if kind == "type2":
        return (horizon + jnp.expm1(-s * horizon) / s) / s
    return (2 * horizon + jnp.expm1(-gi * horizon) / gi + jnp.expm1(-gj * horizon) / gj) / s


def cross(kind: str, gamma, hurst, horizon):
    r"""$b_k = \int_0^T \mathbb{E}[B^H_t \hat Y^k_t]\,dt$ (see the module docstring)."""
    a = hurst + 0.5
    z = gamma * horizon
    if kind == "type2":
        return horizon * gamma ** (-a) * gammainc(a, z) - a * gamma ** (-a - 1) * gammainc(a + 1, z)
    rest = (jnp.exp(-z) - upper_gamma_times_exp(a, z)) * gamma ** (-a - 1)
    return 2 * horizon * gamma ** (-a) - horizon**a / (gamma * jnp.exp(gammaln(a + 1))) + rest


def variance_integral(kind: str, hurst, horizon):
    r"""$c = \int_0^T \mathbb{E}[(B^H_t)^2]\,dt$."""
    return horizon ** (2 * hurst + 1) / (2 * hurst + 1) * variance_scale(kind, hurst)


def variance_scale(kind: str, hurst):
    r"""$\mathrm{Var}(B^H_t)/t^{2H}$: $1/(2H\Gamma(H+\tfrac12)^2)$ (type II) or
    $1/(\Gamma(2H+1)\sin\pi H)$ (type I)."""
    if kind == "type2":
        return 1 / (2 * hurst * jnp.exp(2 * gammaln(hurst + 0.5)))
    return 1 / (jnp.exp(gammaln(2 * hurst + 1)) * jnp.sin(jnp.pi * hurst))


@functools.partial(jax.jit, static_argnums=0)
def fit(kind: str, gamma, hurst, horizon):
    """`(omega, error)`: the optimal weights and their approximation error, in one program."""
    omega = optimal_weights(kind, gamma, hurst, horizon)
    return omega, approximation_error(kind, gamma, omega, hurst, horizon)


def optimal_weights(kind: str, gamma, hurst, horizon):
    r"""$\omega^\star = A^{-1}b$. $A$ is a Gram matrix, but with many speeds it is so
    ill-conditioned (condition number $4\cdot10^4$ at $K = 8$, $10^{10}$ at $K = 16$ with
    $\gamma_{\max} = 20$) that a Cholesky factorisation can fail in rounding; LU still returns
    weights whose error $\mathcal{E}$ is near optimal, since $\mathcal{E}$ is flat along the
    ill-determined directions."""
    return jnp.linalg.solve(gram(kind, gamma, horizon), cross(kind, gamma, hurst, horizon))


@functools.partial(jax.jit, static_argnums=0)
def approximation_error(kind: str, gamma, omega, hurst, horizon):
    r"""$(\omega^\top A\omega - 2b^\top\omega + c)/T$, the time-averaged mean-squared error
    """
    A = gram(kind, gamma, horizon)
    b = cross(kind, gamma, hurst, horizon)
    c = variance_integral(kind, hurst, horizon)
    return (omega @ A @ omega - 2 * b @ omega + c) / horizon


def ou_covariance(kind: str, gamma, s, t):
    r"""$\mathrm{Cov}(\hat Y^i_s, \hat Y^j_t)$ as a $K\times K$ matrix.

    Type II ($Y_0 = 0$): $e^{-\gamma_j(t-s)}(1 - e^{-(\gamma_i+\gamma_j)s})/(\gamma_i+\gamma_j)$ for
    $s \le t$. Type I (stationary $Y$, $\hat Y_t = Y_t - Y_0$): with
    $C_{ij}(s, t) = e^{-\gamma_j (t-s)}/(\gamma_i+\gamma_j)$ for $s\le t$ (and symmetric),
    $C(s,t) - C(s,0) - C(0,t) + C(0,0)$.
    """
    if kind == "type2":
        lo, hi = jnp.minimum(s, t), jnp.maximum(s, t)
        gi, gj = gamma[:, None], gamma[None, :]
        total = gi + gj
        # The later time's index carries the decay e^{-gamma (hi - lo)}.
        later = jnp.where(s <= t, gj, gi)
        return jnp.exp(-later * (hi - lo)) * (-jnp.expm1(-total * lo)) / total

    def stationary(u, v):
        gi, gj = gamma[:, None], gamma[None, :]
        later = jnp.where(u <= v, gj, gi)
        return jnp.exp(-later * jnp.abs(v - u)) / (gi + gj)

    zero = jnp.zeros_like(s)
    return stationary(s, t) - stationary(s, zero) - stationary(zero, t) + stationary(zero, zero)


@functools.partial(jax.jit, static_argnums=0)
def covariance_matrix(kind: str, gamma, omega, ts):
    r"""$\omega^\top C(t_i, t_j)\,\omega$ over a grid of times."""
    one = lambda s, t: omega @ ou_covariance(kind, gamma, s, t) @ omega  # noqa: E731
    return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(ts, ts)
