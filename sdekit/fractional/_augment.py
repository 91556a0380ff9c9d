r"""`FractionalSDE`: an SDE driven by Markov-approximate fractional noise, as an ordinary SDE in
$(x, y_1, \dots, y_K)$ driven by one Brownian motion per noise component."""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

import sdekit as sk

NOISES = ("scalar", "general", "additive", "commutative")


class AugmentedState(NamedTuple):
    """The state of the augmented SDE.

    Attributes:
        x: the process $X$ (a scalar or a vector of shape `(d,)`).
        y: the OU processes, shape `(*x.shape, K)`: `y[..., k]` is $Y^k$ of each component.
        kl: $\\int_{t_0}^t \\tfrac12|u|^2 ds$ along the path (zero without a control).
    """

    x: Float[Array, "*d"]
    y: Float[Array, "*d K"]
    kl: Float[Array, ""]


class FractionalSDE(eqx.Module):
    r"""$dX_t = b(t, X_t)\,dt + s(t, X_t)\,d\hat B^H_t$ with Markov-approximate fractional noise
    $\hat B^H = \sum_k \omega_k \hat Y^k$ (`sk.brownian.FractionalBM`), written as an SDE in
    $(x, y, \mathrm{kl})$ driven by the Brownian motion $W$ that all the OU processes share:

    $$dy_k = (-\gamma_k y_k + u)\,dt + dW_t,\qquad
    dx = \Big(b + s\sum_k\omega_k(-\gamma_k y_k + u)\Big)dt + s\Big(\sum_k\omega_k\Big)dW_t,
    \qquad d\,\mathrm{kl} = \tfrac12|u|^2dt,$$

    that is $dx = b\,dt + s\sum_k \omega_k\,dy_k$. Without a control ($u = 0$) this is the prior;
    with a control $u(t, x, y)$ it is the variational posterior of Daems et al. (2024), whose
    path-space KL divergence from the prior is $\mathbb{E}\int \tfrac12|u|^2dt$ (Girsanov) and is
    carried in `kl`. For type I the OU processes start from their stationary law
    (`initial_state` draws it), so $x$ is driven by $\sum_k\omega_k(Y^k_t - Y^k_0)$.

    Each component of $X$ has its own fractional noise (independent components, one Brownian
    motion each): $X$ is a scalar (noise `"scalar"`, a scalar $W$) or a vector of shape `(d,)`
    (noise `"general"`, $W$ of shape `(d,)`). When $s$ does not depend on $x$, pass
    `noise="additive"` to allow the additive-noise solvers (`shark`, `sra1`, ...).

    Args:
        drift: $b(t, x, \text{args})$, shaped like $x$.
        diffusion: $s(t, x, \text{args})$, shaped like $x$ (elementwise).
        fbm: the `sk.brownian.FractionalBM` (kind, speeds, weights; its `horizon` should be the
            length of the solve).
        control: optional $u(t, x, y, \text{args})$, shaped like $x$ (e.g. an equinox MLP).
        noise: the noise type given to `sk.SDE`: `"scalar"` (default) for a scalar $x$,
            `"general"` (or `"commutative"`) for a vector $x$; `"additive"` for either when $s$
            does not depend on $x$.
        calculus: `"ito"` or `"stratonovich"` (they differ only when $s$ depends on $x$).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> from sdekit import fractional as skf
        >>> fbm = sk.brownian.FractionalBM(0.7, kind="type1", horizon=1.0)
        >>> model = skf.FractionalSDE(lambda t, x, a: -x, lambda t, x, a: jnp.ones_like(x), fbm)
        >>> key_y, key_w = jax.random.split(jax.random.key(0))
        >>> z0 = model.initial_state(jnp.array(0.0), key_y)      # type I: stationary y0
        >>> tree = sk.BrownianTree(key_w, 0.0, 1.0, shape=(), tol=2**-8)
        >>> sol = sk.solve(model.as_sde(), sk.solvers.euler_maruyama(), 0.0, 1.0, z0,
        ...                dt0=2**-6, brownian=tree)
        >>> sol.ys.x.shape, sol.ys.y.shape
        ((1,), (1, 5))
    """

    drift: Callable
    diffusion: Callable
    fbm: sk.brownian.FractionalBM
    control: Callable | None = None
    noise: str = eqx.field(static=True, default="scalar")
    calculus: str = eqx.field(static=True, default="ito")

    def __check_init__(self):
        if not isinstance(self.fbm, sk.brownian.FractionalBM):
            raise TypeError(f"FractionalSDE: fbm must be an sk.brownian.FractionalBM, got {type(self.fbm).__name__}.")
        if self.noise not in NOISES:
            raise ValueError(f"FractionalSDE: noise must be one of {NOISES}, got {self.noise!r}.")

    def as_sde(self) -> sk.SDE:
        """The augmented `sk.SDE` on `AugmentedState`. The speeds and weights are computed here
        once (not at every step) and held as arrays of the SDE, so gradients with respect to the
        Hurst index flow through every adjoint."""
        fbm = self.fbm
        parts = _Parts(self.drift, self.diffusion, self.control, fbm.gamma, fbm.omega)
        return sk.SDE(_AugmentedDrift(parts), _AugmentedDiffusion(parts, self.noise),
                      noise=self.noise, calculus=self.calculus)

    def initial_state(self, x0: Float[ArrayLike, "*d"], key=None) -> AugmentedState:
        """The augmented initial state: $y_0 = 0$ (type II) or $y_0 \\sim N(0, \\Sigma)$,
        $\\Sigma_{ij} = 1/(\\gamma_i+\\gamma_j)$, independently per component (type I, needs
        `key`); `kl` starts at 0."""
        x0 = jnp.asarray(x0)
        if x0.ndim > 1:
            raise ValueError(f"FractionalSDE: x0 must be a scalar or a vector, got shape {x0.shape}.")
        k = self.fbm.n_ou
        if self.fbm.kind == "type2":
            y0 = jnp.zeros((*x0.shape, k), x0.dtype)
        else:
            if key is None:
                raise ValueError("FractionalSDE.initial_state: type I starts from the stationary law; pass key=.")
            chol = jnp.linalg.cholesky(self.fbm.stationary_covariance()).astype(x0.dtype)
            normals = jax.random.normal(key, (*x0.shape, k), x0.dtype)
            y0 = normals @ chol.T
        return AugmentedState(x0, y0, jnp.zeros((), x0.dtype))

    def brownian_shape(self, x0: Float[ArrayLike, "*d"]) -> tuple:
        """The shape of the Brownian motion $W$ to build the `sk.BrownianTree` with: `x0`'s."""
        return tuple(jnp.shape(x0))

    def noise_value(self, y: Float[Array, "*d K"], y0: Float[Array, "*d K"] | None = None) -> Float[Array, "*d"]:
        r"""The approximate fractional noise $\hat B^H = \sum_k\omega_k(y_k - y_{0,k})$ along
        saved states `y` (type II: `y0` may be omitted, it is 0)."""
        y = y if y0 is None else y - jnp.broadcast_to(y0, y.shape)
        return y @ self.fbm.omega.astype(y.dtype)


class _Parts(eqx.Module):
    drift: Callable
    diffusion: Callable
    control: Callable | None
    gamma: Array
    omega: Array

    def control_value(self, t, z: AugmentedState, args):
        if self.control is None:
            return None
        return jnp.asarray(self.control(t, z.x, z.y, args), z.x.dtype)


class _AugmentedDrift(eqx.Module):
    parts: _Parts

    def __call__(self, t, z: AugmentedState, args):
        p = self.parts
        gamma = jnp.broadcast_to(p.gamma.astype(z.y.dtype), z.y.shape)
        omega = p.omega.astype(z.y.dtype)
        u = p.control_value(t, z, args)
        dy = -gamma * z.y if u is None else u[..., None] - gamma * z.y
        s = p.diffusion(t, z.x, args)
        dx = p.drift(t, z.x, args) + s * (dy @ omega)
        kl = jnp.zeros_like(z.kl) if u is None else 0.5 * jnp.sum(u**2)
        return AugmentedState(dx, dy, kl)


class _AugmentedDiffusion(eqx.Module):
    parts: _Parts
    noise: str = eqx.field(static=True)

    def __call__(self, t, z: AugmentedState, args):
        p = self.parts
        if z.x.ndim == 1 and self.noise == "scalar":
            raise ValueError("FractionalSDE: a vector x has one Brownian motion per component; "
                             "pass noise='general' (or 'additive'/'commutative').")
        total = jnp.sum(p.omega).astype(z.x.dtype)
        gx = p.diffusion(t, z.x, args) * total
        if z.x.ndim == 0:
            return AugmentedState(gx, jnp.ones_like(z.y), jnp.zeros_like(z.kl))
        d = z.x.shape[0]
        eye = jnp.eye(d, dtype=z.x.dtype)
        gy = jnp.broadcast_to(eye[:, None, :], (*z.y.shape, d))
        return AugmentedState(eye * gx[:, None], gy, jnp.zeros((d,), z.kl.dtype))

