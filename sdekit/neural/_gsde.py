r"""GSDE: the geometric neural SDE of Oh, Lim & Kim (ICLR 2024)."""

import jax.numpy as jnp

import sdekit as sk

from ._base import StableModel
from ._layers import root


class GSDE(StableModel):
    r"""Geometric neural SDE (Oh, Lim & Kim 2024, Sec. 3.3; their `neuralsde_6_17`):

    $$\frac{\mathrm{d}z}{z} = \gamma(t, \tilde z)\,\mathrm{d}t + \sigma(t)\,\mathrm{d}W_t
    \quad(\text{Itô, elementwise}),\qquad \tilde z = \zeta(t, \log z, X(t)),\qquad
    \log z(t_0) = A\,X(t_0) + a.$$

    Solved in log coordinates: by Itô's formula $y = \log z$ satisfies
    $\mathrm{d}y = (\gamma - \tfrac12\sigma^2)\,\mathrm{d}t + \sigma(t)\,\mathrm{d}W_t$
    (additive noise), so $z = e^y > 0$ on every discrete path, not only for the exact solution
    (Euler--Maruyama on $z$ itself can step below zero). $\gamma$ is the tanh-clipped drift of
    `LNSDE`, fed $\log z$ (the authors' code feeds $\tanh$ of the state); $\sigma(t) \in
    [0, 1)$ as in `LNSDE`. The output is linear in $\log z(t_{\text{last}})$ (logits linear in
    $z$ would grow like $e^{t}$). `trajectory` returns $z$. Options as in `LNSDE`.

    Args:
        in_size, hidden_size, out_size, key, width, depth, method, solver, adjoint, substeps:
            as in `LNSDE`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.GSDE(1, 8, 2, key=jax.random.key(0))
        >>> z = model.trajectory(jnp.arange(5.0), jnp.ones((5, 1)), key=jax.random.key(1))
        >>> z.shape, bool((z > 0).all())
        ((5, 8), True)

    References:
        Y. Oh, D. Lim, S. Kim, "Stable Neural Stochastic Differential Equations in Analyzing
        Irregular Time Series Data", ICLR 2024 (arXiv 2402.14989), Eq. (5), Thm 3.5.
    """

    def drift(self, s, y, path):
        """$(\\gamma(t, \\tilde z) - \\sigma(t)^2/2)\\,h$ for $y = \\log z$, in index time $s$."""
        t, x, _, h = path.in_index_time(s)
        return (self.drift_net(t, y, x) - 0.5 * self.sigma(t, y.dtype) ** 2) * h

    def diffusion(self, s, y, path):
        """$\\sigma(t)\\sqrt{h}$ for $y = \\log z$ (additive), in index time $s$."""
        t, _, _, h = path.in_index_time(s)
        return self.sigma(t, y.dtype) * root(h)

    def problem(self) -> sk.SDE:
        return sk.SDE(self.drift, self.diffusion, noise="additive")

    def observe(self, y):
        """$z = e^y$."""
        return jnp.exp(y)

    def final_state(self, path, key):
        """$\\log z$ at the last observation (what the readout sees)."""
        return self.solve(path, key).ys[-1]
