r"""`FractionalBM`: Markov-approximate fractional Brownian motion (MA-fBM) from OU processes."""

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Float, RealScalarLike, is_traced
from . import _fractional_weights as _w

KINDS = ("type1", "type2")


class FractionalBM(eqx.Module):
    r"""Fractional Brownian motion $B^H$ approximated by $K$ Ornstein–Uhlenbeck processes that
    share one Brownian motion (Daems et al., ICLR 2024).

    $$\hat B^H_t = \sum_{k=1}^K \omega_k \hat Y^k_t,\qquad dY^k_t = -\gamma_k Y^k_t\,dt + dW_t,$$

    with speeds on the geometric grid $\gamma_k = \gamma_{\max}^{(2k-K-1)/(K-1)}$ (from
    $1/\gamma_{\max}$ to $\gamma_{\max}$) and the weights $\omega = A^{-1}b$ that minimise
    $\frac1T\int_0^T \mathbb{E}(B^H_t - \hat B^H_t)^2dt$ (closed forms in
    `sdekit.brownian._fractional_weights`). Two kinds of fBM:

    - `"type2"`, Riemann–Liouville: $B^H_t = \frac{1}{\Gamma(H+1/2)}\int_0^t (t-u)^{H-1/2}dW_u$,
      $Y^k_0 = 0$ and $\hat Y^k = Y^k$. Variance $t^{2H}/(2H\,\Gamma(H+\tfrac12)^2)$.
    - `"type1"`, Mandelbrot–Van Ness with the same $1/\Gamma(H+\tfrac12)$ normalisation:
      stationary $Y_0 \sim N(0, \Sigma)$, $\Sigma_{ij} = 1/(\gamma_i+\gamma_j)$, and
      $\hat Y^k_t = Y^k_t - Y^k_0$. Stationary increments; variance
      $t^{2H}/(\Gamma(2H+1)\sin \pi H)$ (exactly $t$ at $H = \tfrac12$). Divide by the square
      root of that constant for unit-variance fBM.

    Everything is a differentiable function of `hurst` (a JAX scalar): learn it, e.g., as
    `FractionalBM(jax.nn.sigmoid(raw), ...)` inside the loss. $H = \tfrac12$ is Brownian motion
    for both kinds and the approximation reaches it as $K$ and $\gamma_{\max}$ grow, with no
    special case in the code: for type II the error is $3\cdot10^{-9}$ at $K = 8$; for type I
    (where $Y_t - Y_0 \to W_t$ only as $\gamma \to 0$) it is $3\cdot10^{-3}$ at $K = 16$ and
    $10^{-4}$ with $\gamma_{\max} = 10^3$. At fixed $\gamma_{\max}$ the error levels off as $K$
    grows (time scales outside $[1/\gamma_{\max}, \gamma_{\max}]$ are not represented). The
    fastest speed bounds a fixed step: keep $\gamma_{\max}\,dt < 0.5$ (`max_step`).

    Args:
        hurst: the Hurst index $H \in (0, 1)$ (a JAX scalar, traced or not).
        kind: `"type1"` (Mandelbrot–Van Ness) or `"type2"` (Riemann–Liouville).
        n_ou: the number $K \ge 1$ of OU processes.
        gamma_max: the largest speed, $> 1$ (the smallest is its inverse).
        horizon: the time horizon $T > 0$ over which the weights are optimised (the solve's
            length, usually).

    Raises:
        ValueError: `hurst` outside (0, 1), `n_ou < 1`, `gamma_max <= 1`, `horizon <= 0`, or an
            unknown `kind` (values are checked when they are concrete).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> fbm = sk.brownian.FractionalBM(jnp.array(0.7), kind="type2", n_ou=5, gamma_max=20.0)
        >>> [round(float(g), 3) for g in fbm.gamma]
        [0.05, 0.224, 1.0, 4.472, 20.0]
        >>> exact = float(fbm.exact_variance(1.0))              # 1 / (2H Gamma(H + 1/2)^2)
        >>> round(exact, 4), round(float(fbm.covariance(1.0, 1.0)), 4)
        (0.8473, 0.8459)

    References:
        M. Daems, M. Opper, G. Crevecoeur, T. Birdal, "Variational Inference for SDEs Driven by
        Fractional Noise", ICLR 2024 (arXiv 2310.12975). P. Harms, D. Stefanovits, "Affine
        representations of fractional processes with applications in mathematical finance",
        Stochastic Processes and their Applications 129 (2019).
    """

    hurst: Float[Array, ""]
    horizon: Float[Array, ""]
    gamma_max: Float[Array, ""]
    kind: str = eqx.field(static=True)
    n_ou: int = eqx.field(static=True)

    def __init__(
        self,
        hurst: RealScalarLike,
        *,
        kind: str = "type1",
        n_ou: int = 5,
        gamma_max: RealScalarLike = 20.0,
        horizon: RealScalarLike = 1.0,
    ):
        if kind not in KINDS:
            raise ValueError(f"FractionalBM: kind must be one of {KINDS}, got {kind!r}.")
        if isinstance(n_ou, bool) or not isinstance(n_ou, numbers.Integral) or n_ou < 1:
            raise ValueError(f"FractionalBM: n_ou must be an integer >= 1, got {n_ou!r}.")
        _check_open(hurst, "hurst", 0.0, 1.0, "in (0, 1)")
        _check_open(gamma_max, "gamma_max", 1.0, None, "> 1")
        _check_open(horizon, "horizon", 0.0, None, "> 0")
        hurst = jnp.asarray(hurst)
        if not jnp.issubdtype(hurst.dtype, jnp.floating):
            hurst = hurst.astype(jnp.asarray(0.0).dtype)
        self.hurst = hurst
        self.horizon = jnp.asarray(horizon, hurst.dtype)
        self.gamma_max = jnp.asarray(gamma_max, hurst.dtype)
        self.kind = kind
        self.n_ou = int(n_ou)

    @property
    def gamma(self) -> Float[Array, " K"]:
        r"""The OU speeds $\gamma_k$, geometric from $1/\gamma_{\max}$ to $\gamma_{\max}$."""
        return _w.speeds(self.n_ou, self.gamma_max, self.hurst.dtype)

    @property
    def omega(self) -> Float[Array, " K"]:
        r"""The optimal weights $\omega = A^{-1}b$ (differentiable in `hurst`)."""
        return _w.fit(self.kind, self.gamma, self.hurst, self.horizon)[0]

    @property
    def max_step(self) -> Float[Array, ""]:
        r"""$0.5/\gamma_{\max}$: the largest fixed step that keeps explicit solvers stable."""
        return 0.5 / self.gamma_max

    def error(self, omega: Float[Array, " K"] | None = None) -> Float[Array, ""]:
        r"""$\frac1T\int_0^T\mathbb{E}(B^H_t - \hat B_t)^2dt = (\omega^\top A\omega - 2b^\top\omega + c)/T$
        for the optimal weights (or the given ones)."""
        if omega is None:
            return _w.fit(self.kind, self.gamma, self.hurst, self.horizon)[1]
        return _w.approximation_error(self.kind, self.gamma, omega, self.hurst, self.horizon)

    def covariance(self, s: RealScalarLike, t: RealScalarLike) -> Float[Array, ""]:
        r"""$\mathrm{Cov}(\hat B_s, \hat B_t) = \omega^\top C(s, t)\,\omega$ of the approximate
        process, from the OU covariances $C_{ij}(s,t) = \mathrm{Cov}(\hat Y^i_s, \hat Y^j_t)$."""
        s, t = self._times(s, t)
        omega = self.omega
        return omega @ _w.ou_covariance(self.kind, self.gamma, s, t) @ omega

    def covariance_matrix(self, ts: Float[Array, " n"]) -> Float[Array, "n n"]:
        r"""$\mathrm{Cov}(\hat B_{t_i}, \hat B_{t_j})$ over a grid of times (vectorised `covariance`)."""
        return _w.covariance_matrix(self.kind, self.gamma, self.omega, jnp.asarray(ts, self.hurst.dtype))

    def ou_covariance(self, s: RealScalarLike, t: RealScalarLike) -> Float[Array, "K K"]:
        r"""$\mathrm{Cov}(\hat Y^i_s, \hat Y^j_t)$ ($\hat Y = Y - Y_0$ for type I)."""
        return _w.ou_covariance(self.kind, self.gamma, *self._times(s, t))

    def stationary_covariance(self) -> Float[Array, "K K"]:
        r"""$\Sigma_{ij} = 1/(\gamma_i+\gamma_j)$: the law of $Y_0$ for type I."""
        g = self.gamma
        return 1 / (g[:, None] + g[None, :])

    def exact_variance(self, t: RealScalarLike) -> Float[Array, ""]:
        r"""$\mathrm{Var}(B^H_t)$ of the exact fBM of this kind (normalised as above)."""
        (t,) = self._times(t)
        return _w.variance_scale(self.kind, self.hurst) * jnp.abs(t) ** (2 * self.hurst)

    def exact_covariance(self, s: RealScalarLike, t: RealScalarLike) -> Float[Array, ""]:
        r"""$\mathrm{Cov}(B^H_s, B^H_t)$ of the exact type-I fBM:
        $\frac{V}{2}(s^{2H} + t^{2H} - |t-s|^{2H})$ with $V = 1/(\Gamma(2H+1)\sin\pi H)$.

        Raises:
            ValueError: for type II, whose covariance
                $\Gamma(H+\tfrac12)^{-2}\int_0^{s\wedge t}(s-u)^{H-1/2}(t-u)^{H-1/2}du$ has no
                elementary closed form (a hypergeometric function; integrate it numerically).
        """
        if self.kind != "type1":
            raise ValueError(
                "exact_covariance is closed-form for type I only; the Riemann–Liouville (type II) "
                "covariance is an integral (use exact_variance, or quadrature)."
            )
        s, t = self._times(s, t)
        h2 = 2 * self.hurst
        v = _w.variance_scale(self.kind, self.hurst)
        return v / 2 * (jnp.abs(s) ** h2 + jnp.abs(t) ** h2 - jnp.abs(t - s) ** h2)

    def _times(self, *ts):
        return tuple(jnp.asarray(t, self.hurst.dtype) for t in ts)


def _check_open(value, name, low, high, says):
    if is_traced(value):
        return
    try:
        v = float(np.asarray(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"FractionalBM: {name} must be a real scalar, got {value!r}.") from error
    if not (v > low and (high is None or v < high)):
        raise ValueError(f"FractionalBM: {name} must be {says}, got {v}.")
