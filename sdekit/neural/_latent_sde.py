r"""The latent SDE of Li, Wong, Chen & Duvenaud (2020), trained by its evidence lower bound."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

import sdekit as sk

from ._index_time import grid_time, solve_sde
from ._layers import control_path, root, split_key, time_features


class PosteriorDrift(eqx.Module):
    r"""$f(t, z, c) = \mathrm{MLP}(\sin t, \cos t, z, c)$ (softplus hidden layers)."""

    mlp: eqx.nn.MLP

    def __call__(self, t, z, context):
        return self.mlp(jnp.concatenate([time_features(t).astype(z.dtype), z, context]))


class PriorDrift(eqx.Module):
    r"""$h(t, z) = \mathrm{MLP}(\sin t, \cos t, z)$ (softplus hidden layers)."""

    mlp: eqx.nn.MLP

    def __call__(self, t, z):
        return self.mlp(jnp.concatenate([time_features(t).astype(z.dtype), z]))


class DiagonalDiffusion(eqx.Module):
    r"""$g_i(z_i) = \mathrm{sigmoid}(v_i^\top \mathrm{softplus}(w_i z_i + b_i) + c_i)$: one small
    network per latent dimension, each seeing only its own coordinate, so $g$ is diagonal
    (as in torchsde's `latent_sde_lorenz`), positive and bounded."""

    w: Float[Array, "latent width"]
    b: Float[Array, "latent width"]
    v: Float[Array, "latent width"]
    c: Float[Array, " latent"]

    def __init__(self, latent_size, width, *, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.w = jax.random.normal(k1, (latent_size, width))
        self.b = jax.random.normal(k2, (latent_size, width))
        self.v = jax.random.normal(k3, (latent_size, width)) / jnp.sqrt(width)
        self.c = jnp.zeros(latent_size)

    def __call__(self, t, z):
        hidden = jax.nn.softplus(self.w * z[:, None] + self.b)
        return jax.nn.sigmoid(jnp.sum(self.v * hidden, axis=1) + self.c)


class _Fields(eqx.Module):
    """What the vector fields read in index time: the grid, the context per interval and
    whether the interval is observed (posterior drift) or a forecast (prior drift)."""

    ts: Float[Array, " M"]
    context: Float[Array, "M-1 hidden"]
    observed: Array


class LatentSDE(eqx.Module):
    r"""Latent SDE (Li, Wong, Chen & Duvenaud 2020) for irregularly sampled series.

    A GRU run backwards in time over $(t - t_0, y, \text{mask})$ (missing values as zeros with
    their mask) gives a context $c_i$ summarising the observations from $t_i$ on, and from
    $c_0$ the posterior $q(z_0) = N(\mu, \mathrm{diag}\,s^2)$. Latent paths solve, in Itô form,

    $$\mathrm{d}z = f(t, z, c(t))\,\mathrm{d}t + g(z) \odot \mathrm{d}W_t
    \quad\text{(posterior)},\qquad \mathrm{d}z = h(t, z)\,\mathrm{d}t + g(z) \odot
    \mathrm{d}W_t\quad\text{(prior)},$$

    sharing the diagonal diffusion $g$ (`DiagonalDiffusion`), with $c(t)$ the context of the
    next observation after $t$. Observations are $y_i \sim N(W_d z(t_i) + b_d,
    \mathrm{diag}\,\sigma_{\text{obs}}^2)$ on the observed entries. The evidence lower bound

    $$\log p(y) \ge E_q\Big[\sum_i \log p(y_i \mid z(t_i))\Big] - \mathrm{KL}(q(z_0)\,\|\,p(z_0))
    - E_q\int_{t_0}^{t_{\text{last}}} \tfrac12\,\big|(f - h)/g\big|^2\,\mathrm{d}t$$

    is estimated from one posterior path: the path KL (Girsanov) is integrated as an extra
    state, $\mathrm{d}\kappa = \tfrac12 |(f - h)/g|^2\,\mathrm{d}t$, solved with $z$ on the
    observation grid in index time (see `sdekit.neural`; padding adds nothing). Solved by
    Euler--Maruyama by default; the solves save the latent state at every observation, so
    the adjoint is `sk.adjoint.Checkpointed()` (default) or `sk.adjoint.Backsolve()` (not
    `Reversible`, which keeps only the final state).

    Args:
        in_size: data channels C (without time).
        hidden_size: GRU state and context size.
        latent_size: dimension of $z$.
        key: PRNG key for the parameters.
        out_size: optional: a linear head on $z(t_{\text{last}})$, so that `model(times,
            values, key=key)` gives logits/outputs (classification or regression); without
            it, use `negative_elbo` and `sample`.
        width: width of the drift networks (default `hidden_size`).
        method, solver, adjoint, substeps: as in `LNSDE` (`method` is used only for the
            checks of the series).

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.LatentSDE(1, 8, 3, key=jax.random.key(0))
        >>> times = jnp.arange(6.0)
        >>> values = jnp.sin(times)[:, None].at[2].set(jnp.nan)
        >>> loss, aux = eqx.filter_jit(model.negative_elbo)(times, values, key=jax.random.key(1))
        >>> sorted(aux)
        ['kl0', 'kl_path', 'nll']
        >>> eqx.filter_jit(model.sample)(times, values, jnp.array([2.0, 7.5]), key=jax.random.key(2)).shape
        (2, 1)

    References:
        X. Li, T.-K. L. Wong, R. T. Q. Chen, D. Duvenaud, "Scalable Gradients for Stochastic
        Differential Equations", AISTATS 2020 (arXiv 2001.01328), Sec. 5 and App. 9.6;
        torchsde `examples/latent_sde_lorenz.py`.
    """

    encoder: eqx.nn.GRUCell
    to_q0: eqx.nn.Linear
    posterior: eqx.Module
    prior: eqx.Module
    diffusion_net: eqx.Module
    decoder: eqx.nn.Linear
    obs_log_std: Float[Array, " C"]
    p0_mean: Float[Array, " latent"]
    p0_log_std: Float[Array, " latent"]
    head: eqx.nn.Linear | None
    in_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    latent_size: int = eqx.field(static=True)
    out_size: int | None = eqx.field(static=True)
    width: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    solver: object = eqx.field(static=True)
    adjoint: object = eqx.field(static=True)
    substeps: int = eqx.field(static=True)

    def __init__(self, in_size: int, hidden_size: int, latent_size: int, *, key: PRNGKeyArray | None = None,
                 out_size: int | None = None, width: int | None = None, method: str = "linear", solver=None,
                 adjoint=None, substeps: int = 1, **fields):
        for name, value in (("in_size", in_size), ("hidden_size", hidden_size), ("latent_size", latent_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LatentSDE: {name} must be a positive int, got {value!r}.")
        self.in_size, self.hidden_size, self.latent_size, self.out_size = in_size, hidden_size, latent_size, out_size
        self.width = hidden_size if width is None else width
        self.method, self.solver, self.substeps = method, solver, substeps
        self.adjoint = sk.adjoint.Checkpointed() if adjoint is None else adjoint
        if fields:  # a copy through dataclasses.replace
            for name, value in fields.items():
                setattr(self, name, value)
            return
        keys = split_key(key, 7)
        softplus = jax.nn.softplus
        self.encoder = eqx.nn.GRUCell(2 * in_size + 1, hidden_size, key=keys[0])
        self.to_q0 = eqx.nn.Linear(hidden_size, 2 * latent_size, key=keys[1])
        self.posterior = PosteriorDrift(eqx.nn.MLP(2 + latent_size + hidden_size, latent_size, self.width, 2,
                                                   activation=softplus, key=keys[2]))
        self.prior = PriorDrift(eqx.nn.MLP(2 + latent_size, latent_size, self.width, 2, activation=softplus,
                                           key=keys[3]))
        self.diffusion_net = DiagonalDiffusion(latent_size, self.width, key=keys[4])
        self.decoder = eqx.nn.Linear(latent_size, in_size, key=keys[5])
        self.obs_log_std = jnp.full(in_size, jnp.log(0.1))
        self.p0_mean = jnp.zeros(latent_size)
        self.p0_log_std = jnp.zeros(latent_size)
        self.head = None if out_size is None else eqx.nn.Linear(latent_size, out_size, key=keys[6])

    # ------------------------------------------------------------------ the pieces

    def encode(self, times, values):
        """The contexts `(L, hidden)` (backward GRU; padding skipped), the index of the last
        observation, and the posterior mean and log-std of $z_0$."""
        path = control_path(times, values, self.in_size, self.method)  # (checks the series)
        last = path.last
        dtype = self.decoder.weight.dtype
        observed = ~jnp.isnan(values)
        inputs = jnp.concatenate([(times - times[0])[:, None], jnp.where(observed, values, 0), observed.astype(dtype)],
                                 axis=1)
        index = jnp.arange(times.shape[0], dtype=jnp.int32)

        def step(state, x):
            i, row = x
            new = self.encoder(row, state)
            new = jnp.where(i <= last, new, state)
            return new, new

        h0 = jnp.zeros(self.hidden_size, dtype)
        _, contexts = jax.lax.scan(step, h0, (index, inputs), reverse=True)
        mean, log_std = jnp.split(self.to_q0(contexts[0]), 2)
        return contexts, last, mean, log_std

    def drift(self, s, y, fields: _Fields):
        """Posterior (or, past the last observation, prior) drift of $z$ and the KL integrand,
        in index time $s$."""
        t, h, i = grid_time(fields.ts, s)
        z = y["z"]
        g = self.diffusion_net(t, z)
        prior = self.prior(t, z)
        post = self.posterior(t, z, fields.context[i])
        f = jnp.where(fields.observed[i], post, prior)
        u = (f - prior) / g
        return {"z": f * h, "kl": 0.5 * jnp.sum(u**2) * h}

    def diffusion(self, s, y, fields: _Fields):
        t, h, _ = grid_time(fields.ts, s)
        return {"z": self.diffusion_net(t, y["z"]) * root(h), "kl": jnp.zeros((), y["kl"].dtype)}

    def _latent_path(self, grid, contexts, last, obs_times, z0, key):
        """Solve the augmented SDE along `grid` (non-decreasing times), saving at every knot."""
        first_after = jnp.searchsorted(obs_times, grid[:-1], side="right").astype(jnp.int32)
        context = contexts[jnp.minimum(first_after, last)]
        fields = _Fields(grid, context, grid[:-1] < obs_times[last])
        y0 = {"z": z0, "kl": jnp.zeros((), z0.dtype)}
        shape = {"z": jax.ShapeDtypeStruct(z0.shape, z0.dtype), "kl": jax.ShapeDtypeStruct((), z0.dtype)}
        knots = jnp.arange(grid.shape[0], dtype=z0.dtype)
        sde = sk.SDE(self.drift, self.diffusion, noise="diagonal")
        return solve_sde(sde, y0, grid, key=key, solver=self.solver, adjoint=self.adjoint, substeps=self.substeps,
                         saveat=sk.SaveAt(ts=knots), brownian_shape=shape, args=fields).ys

    def _prepare(self, times, values):
        if isinstance(self.adjoint, sk.adjoint.Reversible):
            raise ValueError("LatentSDE saves the latent state at every observation: use sk.adjoint.Checkpointed() "
                             "or sk.adjoint.Backsolve(), not Reversible (it keeps only the final state).")
        dtype = self.decoder.weight.dtype
        return jnp.asarray(times).astype(dtype), jnp.asarray(values).astype(dtype)

    # ------------------------------------------------------------------ public

    def negative_elbo(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"], *, key: PRNGKeyArray,
                      kl_weight: float = 1.0) -> tuple[Float[Array, ""], dict]:
        r"""$-\text{ELBO}$ of one series from one posterior sample: the Gaussian negative
        log-likelihood of the observed entries plus `kl_weight` times
        $\mathrm{KL}(q(z_0)\|p(z_0))$ + the path KL. Returns `(loss, {"nll", "kl0",
        "kl_path"})` (nats, summed over the series)."""
        times, values = self._prepare(times, values)
        contexts, last, mean, log_std = self.encode(times, values)
        key_z0, key_path = jax.random.split(key)
        z0 = mean + jnp.exp(log_std) * jax.random.normal(key_z0, mean.shape, mean.dtype)
        ys = self._latent_path(times, contexts, last, times, z0, key_path)
        predicted = jax.vmap(self.decoder)(ys["z"])
        observed = ~jnp.isnan(values) & (jnp.arange(times.shape[0], dtype=jnp.int32) <= last)[:, None]
        std = jnp.exp(self.obs_log_std)[None]
        residual = jnp.where(observed, values - predicted, 0) / std
        nll_terms = 0.5 * residual**2 + self.obs_log_std[None] + 0.5 * jnp.log(2 * jnp.pi).astype(std.dtype)
        nll = jnp.sum(jnp.where(observed, nll_terms, 0))
        kl0 = gaussian_kl(mean, log_std, self.p0_mean, self.p0_log_std)
        kl_path = ys["kl"][-1]
        return nll + kl_weight * (kl0 + kl_path), {"nll": nll, "kl0": kl0, "kl_path": kl_path}

    def sample(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"],
               predict_times: Float[ArrayLike, " P"], *, key: PRNGKeyArray) -> Float[Array, "P C"]:
        """One posterior sample of the decoded mean at `predict_times` (any order): the
        posterior SDE up to the last observation (interpolation), the prior after it
        (forecasting); times before the first observation get the initial state. `jax.vmap`
        over keys for uncertainty bands (the observation noise, `exp(obs_log_std)`, is not
        added)."""
        times, values = self._prepare(times, values)
        predict = jnp.asarray(predict_times).astype(times.dtype)
        contexts, last, mean, log_std = self.encode(times, values)
        key_z0, key_path = jax.random.split(key)
        z0 = mean + jnp.exp(log_std) * jax.random.normal(key_z0, mean.shape, mean.dtype)
        merged = jnp.concatenate([times, jnp.maximum(predict, times[0])])
        order = jnp.argsort(merged, stable=True)
        grid = merged[order]
        position = jnp.argsort(order)[times.shape[0]:]
        ys = self._latent_path(grid, contexts, last, times, z0, key_path)
        return jax.vmap(self.decoder)(ys["z"][position])

    def __call__(self, times: Float[ArrayLike, " L"], values: Float[ArrayLike, "L C"], *, key: PRNGKeyArray
                 ) -> Float[Array, " out"]:
        """The head (`out_size`) on one posterior sample of $z(t_{\\text{last}})$."""
        if self.head is None:
            raise TypeError("This LatentSDE has no head: build it with out_size=... to call it, or use "
                            "negative_elbo / sample.")
        times, values = self._prepare(times, values)
        contexts, last, mean, log_std = self.encode(times, values)
        key_z0, key_path = jax.random.split(key)
        z0 = mean + jnp.exp(log_std) * jax.random.normal(key_z0, mean.shape, mean.dtype)
        ys = self._latent_path(times, contexts, last, times, z0, key_path)
        return self.head(ys["z"][-1])


def gaussian_kl(mean_q, log_std_q, mean_p, log_std_p) -> Array:
    r"""$\mathrm{KL}(N(\mu_q, s_q^2)\,\|\,N(\mu_p, s_p^2))$ summed over dimensions."""
    var_ratio = jnp.exp(2 * (log_std_q - log_std_p))
    return jnp.sum(0.5 * (var_ratio + ((mean_q - mean_p) / jnp.exp(log_std_p)) ** 2 - 1) - (log_std_q - log_std_p))
