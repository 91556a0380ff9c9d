r"""A Gaussian-mixture data law, whose every diffusion quantity is exact: the reference problem
for testing samplers without a trained network."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._model import Model
from ._schedules import Schedule


class GaussianMixture(eqx.Module):
    r"""$p_0 = \sum_k \pi_k N(\mu_k, \Sigma_k)$ in $\mathbb{R}^d$; under a schedule
    $p_t = \sum_k \pi_k N(\alpha_t\mu_k, \alpha_t^2\Sigma_k + \sigma_t^2 I)$, so the denoiser
    $E[x_0 \mid x_t]$, the score and the log-density are closed-form.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit.diffusion as skd
        >>> gm = skd.GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.0], [1.0]]), 0.1 * jnp.ones((2, 1, 1)))
        >>> model = gm.model(skd.EDM())
        >>> x0 = skd.sample(model, skd.samplers.heun(), skd.EDM().prior(jax.random.key(0), (512, 1)),
        ...                 skd.time_grid(skd.EDM(), 32, "karras", zero_end=True))
        >>> round(float(jnp.mean(jnp.abs(x0))), 1)
        1.0
    """

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covs: Float[Array, "k d d"]

    def __check_init__(self):
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covs.shape != (k, d, d):
            raise ValueError(f"GaussianMixture: weights (k,), means (k, d), covs (k, d, d); got "
                             f"{self.weights.shape}, {self.means.shape}, {self.covs.shape}.")

    def _components(self, alpha, sigma):
        d = self.means.shape[1]
        covs = alpha**2 * self.covs + sigma**2 * jnp.eye(d, dtype=self.covs.dtype)[None]
        return alpha * self.means, covs

    def _log_terms(self, x, alpha, sigma):
        r"""Per component: log(weight x density) at `x`, the Cholesky factor L of its covariance
        C and $L^{-1}(x - \alpha\mu_k)$."""
        means, covs = self._components(alpha, sigma)
        chol = jnp.linalg.cholesky(covs)
        diff = x[None, :] - means
        sol = jax.vmap(lambda l, r: jax.scipy.linalg.solve_triangular(l, r, lower=True))(chol, diff)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)
        d = self.means.shape[1]
        log_pdf = -0.5 * (jnp.sum(sol**2, axis=1) + logdet + d * jnp.log(2 * jnp.pi))
        return jnp.log(self.weights) + log_pdf, chol, sol

    def log_prob(self, x: Float[ArrayLike, "... d"], alpha=1.0, sigma=0.0) -> Array:
        r"""$\log p(x)$ of the law $\sum_k\pi_k N(\alpha\mu_k, \alpha^2\Sigma_k + \sigma^2 I)$ (default: the data)."""
        x = jnp.asarray(x)
        f = lambda v: jax.scipy.special.logsumexp(self._log_terms(v, alpha, sigma)[0])
        return jnp.vectorize(f, signature="(d)->()")(x)

    def denoise(self, x: Float[ArrayLike, "... d"], alpha, sigma) -> Array:
        r"""$E[x_0 \mid x_t = x] = \sum_k w_k(x)[\mu_k + \alpha\Sigma_k C_k^{-1}(x - \alpha\mu_k)]$."""

        def one(v):
            logw, chol, sol = self._log_terms(v, alpha, sigma)
            w = jax.nn.softmax(logw)
            # C^{-1} (x - alpha mu) = L^{-T} sol: the factor already made, no second factorisation.
            cinv_diff = jax.vmap(lambda l, r: jax.scipy.linalg.solve_triangular(l, r, lower=True, trans="T"))(chol, sol)
            post = self.means + alpha * jnp.einsum("kij,kj->ki", self.covs, cinv_diff)
            return jnp.sum(w[:, None] * post, axis=0)

        return jnp.vectorize(one, signature="(d)->(d)")(jnp.asarray(x))

    def sample(self, key, n: int) -> Float[Array, "n d"]:
        """`n` exact draws from the data law."""
        k_comp, k_norm = jax.random.split(key)
        comp = jax.random.choice(k_comp, self.weights.shape[0], (n,), p=self.weights)
        z = jax.random.normal(k_norm, (n, self.means.shape[1]), self.means.dtype)
        chol = jnp.linalg.cholesky(self.covs)[comp]
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol, z)

    def model(self, schedule: Schedule) -> Model:
        """The exact denoiser as an `skd.Model` (`prediction="x0"`) of `schedule`; `x` is `(..., d)`."""
        return Model(_ExactDenoiser(self, schedule), schedule, prediction="x0")


class _ExactDenoiser(eqx.Module):
    mixture: GaussianMixture
    schedule: Schedule

    def __call__(self, x, t, args):
        alpha, sigma = self.schedule.alpha(t).astype(x.dtype), self.schedule.sigma(t).astype(x.dtype)
        return self.mixture.denoise(x, alpha, sigma).astype(x.dtype)
