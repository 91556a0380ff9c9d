r"""Noise schedules: the forward marginal $q(x_t \mid x_0) = N(\alpha_t x_0, \sigma_t^2 I)$.

Every schedule gives $\alpha(t)$, $\sigma(t)$, the half log-SNR $\lambda(t) = \log(\alpha/\sigma)$
and its inverse, the forward SDE whose marginals these are, and the prior at its start time.
Numbers are traced leaves (a schedule can be differentiated or vmapped over); the time domain
`[t_min, t_max]` is where grids start and end by default.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

import sdekit as sk

Time = Float[ArrayLike, ""]


class Schedule(eqx.Module):
    r"""Base of the noise schedules. Subclasses define `log_alpha` and `sigma` (or `log_snr`).

    Methods:
        alpha(t), sigma(t): the marginal's scale and noise level.
        log_snr(t): $\lambda(t) = \log(\alpha_t / \sigma_t)$, decreasing in $t$.
        t_of_log_snr(lam): the inverse of `log_snr`.
        forward_sde(): the Itô SDE $dx = f(t)x\,dt + g(t)\,dW$ with these marginals.
        prior(key, shape): $\sigma(t_{max})\,z$, the standard starting sample.
    """

    def log_alpha(self, t: Time) -> Array:
        raise NotImplementedError

    def alpha(self, t: Time) -> Array:
        return jnp.exp(self.log_alpha(t))

    def sigma(self, t: Time) -> Array:
        raise NotImplementedError

    def log_snr(self, t: Time) -> Array:
        return self.log_alpha(t) - jnp.log(self.sigma(t))

    def t_of_log_snr(self, lam: Float[ArrayLike, ""]) -> Array:
        raise NotImplementedError

    @property
    def t_min(self) -> float:
        """Where samplers stop by default (the least noisy time used)."""
        raise NotImplementedError

    @property
    def t_max(self) -> float:
        """Where samplers start by default (the prior's time)."""
        raise NotImplementedError

    @property
    def t_zero(self) -> float | None:
        """The time at which $\\sigma = 0$ (the data), where a grid may end; `None` if unreachable."""
        return None

    def drift_coefficient(self, t: Time) -> Array:
        r"""$f(t) = \frac{d}{dt}\log\alpha_t$."""
        return jax.jvp(self.log_alpha, (t,), (jnp.ones_like(t),))[1]

    def diffusion_squared(self, t: Time) -> Array:
        r"""$g^2(t) = \frac{d\sigma_t^2}{dt} - 2 f(t) \sigma_t^2$."""
        sigma, dsigma = jax.jvp(self.sigma, (t,), (jnp.ones_like(t),))
        return 2 * sigma * dsigma - 2 * self.drift_coefficient(t) * sigma**2

    def derivatives(self, t: Time) -> tuple[Array, Array]:
        r"""$(\dot\alpha_t, \dot\sigma_t)$."""
        one = jnp.ones_like(t)
        return jax.jvp(self.alpha, (t,), (one,))[1], jax.jvp(self.sigma, (t,), (one,))[1]

    def forward_sde(self) -> sk.SDE:
        r"""The forward (noising) SDE $dx = f(t)x\,dt + g(t)\,dW$ (Itô, additive noise).

        Examples:
            >>> import jax, jax.numpy as jnp, sdekit as sk, sdekit.diffusion as skd
            >>> sched = skd.VP.linear()
            >>> sde = sched.forward_sde()
            >>> float(sde.diffusion(0.5, jnp.zeros(1), None)[0] ** 2)  # beta(0.5) = 0.1 + 0.5 * 19.9
            10.05...
        """
        return sk.SDE(_ForwardDrift(self), _ForwardDiffusion(self), noise="additive", calculus="ito")

    def prior(self, key, shape, dtype=None, t: Time | None = None) -> Array:
        r"""A sample of $N(0, \sigma(t)^2 I)$ at `t` (default `t_max`): the sampler's $x_T$."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        t = self.t_max if t is None else t
        return self.sigma(jnp.asarray(t, dtype)).astype(dtype) * jax.random.normal(key, shape, dtype)


class _ForwardDrift(eqx.Module):
    schedule: Schedule

    def __call__(self, t, x, args):
        return self.schedule.drift_coefficient(t).astype(x.dtype) * x


class _ForwardDiffusion(eqx.Module):
    schedule: Schedule

    def __call__(self, t, x, args):
        return jnp.sqrt(self.schedule.diffusion_squared(t)).astype(x.dtype) * jnp.ones_like(x)


def _vp_sigma(log_alpha):
    # sigma = sqrt(1 - alpha^2), accurate where alpha is near 1.
    return jnp.sqrt(-jnp.expm1(2 * log_alpha))


def _vp_log_snr(log_alpha):
    return log_alpha - 0.5 * jnp.log(-jnp.expm1(2 * log_alpha))


def _vp_log_alpha_of_log_snr(lam):
    # alpha^2 = 1 / (1 + e^{-2 lambda})
    return -0.5 * jnp.logaddexp(0.0, -2 * lam)


class VP(Schedule):
    r"""Variance-preserving schedules: $\alpha_t^2 + \sigma_t^2 = 1$ (DDPM, Song et al.).

    Build one with `VP.linear()`, `VP.cosine()` or `VP.discrete(betas)`.
    """

    def sigma(self, t):
        return _vp_sigma(self.log_alpha(t))

    def log_snr(self, t):
        return _vp_log_snr(self.log_alpha(t))

    @staticmethod
    def linear(beta_min: float = 0.1, beta_max: float = 20.0) -> "VPLinear":
        r"""$\beta(t) = \beta_{min} + t(\beta_{max} - \beta_{min})$ on $[10^{-3}, 1]$ (Song et al. 2021).

        Examples:
            >>> import sdekit.diffusion as skd
            >>> sched = skd.VP.linear()
            >>> round(float(sched.alpha(1.0)), 5), round(float(sched.t_of_log_snr(sched.log_snr(0.3))), 6)
            (0.00657, 0.3)
        """
        return VPLinear(jnp.asarray(beta_min, float), jnp.asarray(beta_max, float))

    @staticmethod
    def cosine(s: float = 0.008) -> "VPCosine":
        r"""$\bar\alpha(t) = \cos^2(\frac{t+s}{1+s}\frac{\pi}{2}) / \bar\alpha(0)$ (Nichol & Dhariwal 2021),
        on $[10^{-3}, 0.9946]$ ($\lambda \ge -5.1$, as DPM-Solver clips it)."""
        return VPCosine(jnp.asarray(s, float))

    @staticmethod
    def discrete(betas: Float[ArrayLike, " n"]) -> "VPDiscrete":
        r"""A DDPM table $\beta_1..\beta_N$ (e.g. Stable Diffusion's): $\bar\alpha_n = \prod_{i\le n}(1-\beta_i)$
        at $t_n = n/N$, with $\log\alpha$ piecewise linear in $t$ between them (DPM-Solver's
        convention), on $[1/N, 1]$. A network trained on integer steps takes $N t - 1$.
        """
        betas = jnp.asarray(betas, float)
        if betas.ndim != 1 or betas.shape[0] < 2:
            raise ValueError(f"VP.discrete needs a 1-D table of at least two betas; got shape {betas.shape}.")
        return VPDiscrete(0.5 * jnp.cumsum(jnp.log1p(-betas)))


class VPLinear(VP):
    beta_min: Array
    beta_max: Array

    def log_alpha(self, t):
        b0, b1 = self.beta_min, self.beta_max
        return -0.25 * t**2 * (b1 - b0) - 0.5 * t * b0

    def t_of_log_snr(self, lam):
        b0, b1 = self.beta_min, self.beta_max
        big_l = jnp.logaddexp(0.0, -2 * lam)
        return 2 * big_l / (jnp.sqrt(b0**2 + 2 * (b1 - b0) * big_l) + b0)

    @property
    def t_min(self):
        return 1e-3

    @property
    def t_max(self):
        return 1.0


class VPCosine(VP):
    s: Array

    def log_alpha(self, t):
        s = self.s
        return jnp.log(jnp.cos((t + s) / (1 + s) * math.pi / 2)) - jnp.log(jnp.cos(s / (1 + s) * math.pi / 2))

    def t_of_log_snr(self, lam):
        s = self.s
        log_alpha = _vp_log_alpha_of_log_snr(lam) + jnp.log(jnp.cos(s / (1 + s) * math.pi / 2))
        return 2 * (1 + s) / math.pi * jnp.arccos(jnp.exp(log_alpha)) - s

    @property
    def t_min(self):
        return 1e-3

    @property
    def t_max(self):
        return 0.9946


class VPDiscrete(VP):
    log_alphas: Array  # at t_n = n / N, n = 1..N

    def _times(self):
        n = self.log_alphas.shape[0]
        return jnp.arange(1, n + 1, dtype=self.log_alphas.dtype) / n

    def log_alpha(self, t):
        # Piecewise linear, extended linearly beyond the table's ends (DPM-Solver's interpolation).
        ts, la = self._times(), self.log_alphas
        t = jnp.asarray(t, la.dtype)
        i = jnp.clip(jnp.searchsorted(ts, t) - 1, 0, ts.shape[0] - 2)
        slope = (la[i + 1] - la[i]) / (ts[i + 1] - ts[i])
        return la[i] + slope * (t - ts[i])

    def t_of_log_snr(self, lam):
        # Exact inverse: lambda fixes log alpha (VP), and log alpha is piecewise linear in t.
        ts, la = self._times(), self.log_alphas
        target = _vp_log_alpha_of_log_snr(jnp.asarray(lam, la.dtype))
        rev_la, rev_t = la[::-1], ts[::-1]  # log alpha decreases along the table
        i = jnp.clip(jnp.searchsorted(rev_la, target) - 1, 0, ts.shape[0] - 2)
        slope = (rev_t[i + 1] - rev_t[i]) / (rev_la[i + 1] - rev_la[i])
        return rev_t[i] + slope * (target - rev_la[i])

    @property
    def t_min(self):
        return 1.0 / self.log_alphas.shape[0]

    @property
    def t_max(self):
        return 1.0


class VE(Schedule):
    r"""Variance exploding: $\alpha = 1$, $\sigma(t) = \sigma_{min}(\sigma_{max}/\sigma_{min})^t$ on $[0, 1]$
    (Song et al. 2021; CIFAR-10 used $\sigma_{min} = 0.01$, $\sigma_{max} = 50$). $\sigma = 0$ is
    reached as $t \to -\infty$ (`t_zero`), where a grid may end.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> sched = skd.VE(0.01, 50.0)
        >>> round(float(sched.sigma(1.0)), 4), round(float(sched.t_of_log_snr(sched.log_snr(0.4))), 6)
        (50.0, 0.4)
    """

    sigma_min: Array
    sigma_max: Array

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"VE needs 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}.")
        self.sigma_min, self.sigma_max = jnp.asarray(sigma_min, float), jnp.asarray(sigma_max, float)

    def log_alpha(self, t):
        return jnp.zeros_like(jnp.asarray(t, self.sigma_min.dtype))

    def sigma(self, t):
        return self.sigma_min * jnp.exp(t * jnp.log(self.sigma_max / self.sigma_min))

    def log_snr(self, t):
        return -jnp.log(self.sigma_min) - t * jnp.log(self.sigma_max / self.sigma_min)

    def t_of_log_snr(self, lam):
        return (-lam - jnp.log(self.sigma_min)) / jnp.log(self.sigma_max / self.sigma_min)

    @property
    def t_min(self):
        return 0.0

    @property
    def t_max(self):
        return 1.0

    @property
    def t_zero(self):
        return -math.inf


class EDM(Schedule):
    r"""Karras et al. (2022): $\alpha = 1$, $\sigma = t$ on $[\sigma_{min}, \sigma_{max}]$; the
    probability-flow ODE is $dx/d\sigma = (x - D(x; \sigma))/\sigma$. `sigma_data` sets the EDM
    preconditioning (`preconditioning(t)`); grids may end at $\sigma = 0$.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> sched = skd.EDM()
        >>> float(sched.sigma(3.0)), float(sched.t_of_log_snr(sched.log_snr(3.0)))
        (3.0, 3.0)
    """

    sigma_min: Array
    sigma_max: Array
    sigma_data: Array

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, sigma_data: float = 0.5):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"EDM needs 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}.")
        self.sigma_min, self.sigma_max = jnp.asarray(sigma_min, float), jnp.asarray(sigma_max, float)
        self.sigma_data = jnp.asarray(sigma_data, float)

    def log_alpha(self, t):
        return jnp.zeros_like(jnp.asarray(t, self.sigma_min.dtype))

    def sigma(self, t):
        return jnp.asarray(t, self.sigma_min.dtype)

    def log_snr(self, t):
        return -jnp.log(self.sigma(t))

    def t_of_log_snr(self, lam):
        return jnp.exp(-lam)

    def preconditioning(self, t: Time) -> tuple[Array, Array, Array, Array]:
        r"""EDM's $(c_{skip}, c_{out}, c_{in}, c_{noise})$ at $\sigma = t$: $D = c_{skip}x + c_{out}F(c_{in}x, c_{noise})$."""
        s, sd = self.sigma(t), self.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / jnp.sqrt(s**2 + sd**2)
        c_in = 1 / jnp.sqrt(s**2 + sd**2)
        return c_skip, c_out, c_in, 0.25 * jnp.log(s)

    @property
    def t_min(self):
        return self.sigma_min

    @property
    def t_max(self):
        return self.sigma_max

    @property
    def t_zero(self):
        return 0.0


class Flow(Schedule):
    r"""Rectified flow / linear stochastic interpolant: $\alpha = 1 - t$, $\sigma = t$ on $[0, 1]$;
    the data at $t = 0$ (`t_zero`), pure noise at $t = 1$. Models usually predict the velocity
    $\dot\alpha x_0 + \dot\sigma \epsilon = \epsilon - x_0$.

    Examples:
        >>> import sdekit.diffusion as skd
        >>> sched = skd.Flow()
        >>> float(sched.alpha(0.25)), float(sched.t_of_log_snr(sched.log_snr(0.25)))
        (0.75, 0.25)
    """

    def log_alpha(self, t):
        return jnp.log1p(-t)

    def alpha(self, t):
        return 1 - jnp.asarray(t)

    def sigma(self, t):
        return jnp.asarray(t)

    def log_snr(self, t):
        return jnp.log1p(-t) - jnp.log(t)

    def t_of_log_snr(self, lam):
        return jax.nn.sigmoid(-lam)

    @property
    def t_min(self):
        return 0.0

    @property
    def t_max(self):
        return 1.0

    @property
    def t_zero(self):
        return 0.0
