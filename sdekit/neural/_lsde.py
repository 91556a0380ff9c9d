r"""LSDE: the Langevin-type neural SDE of Oh, Lim & Kim (ICLR 2024)."""

import sdekit as sk

from ._base import StableModel
from ._layers import root


class LSDE(StableModel):
    r"""Langevin-type neural SDE (Oh, Lim & Kim 2024, Sec. 3.1; their `neuralsde_2_16`):

    $$\mathrm{d}z = \gamma(\tilde z)\,\mathrm{d}t + \sigma(t)\,\mathrm{d}W_t,\qquad
    \tilde z = \zeta(z, X(t)),\qquad z(t_0) = A\,X(t_0) + a,$$

    additive noise (Itô and Stratonovich coincide); output $W_o z(t_{\text{last}}) + b_o$. The
    drift is autonomous in $z$ (no time features: $\zeta$ mixes $z$ and the control path
    $X(t)$ linearly, then a tanh-clipped MLP), and $\sigma(t) \in [0, 1)$ is a time-only,
    sigmoid-scaled network (`TimeScale`), so the SDE is a Langevin-type SDE with a unique
    strong solution. Options, solving and padding as in `LNSDE`.

    Args:
        in_size, hidden_size, out_size, key, width, depth, method, solver, adjoint, substeps:
            as in `LNSDE`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.LSDE(1, 8, 2, key=jax.random.key(0))
        >>> model(jnp.arange(5.0), jnp.ones((5, 1)), key=jax.random.key(1)).shape
        (2,)

    References:
        Y. Oh, D. Lim, S. Kim, "Stable Neural Stochastic Differential Equations in Analyzing
        Irregular Time Series Data", ICLR 2024 (arXiv 2402.14989), Eq. (3), Thm 3.1.
    """

    time_features = False  # zeta without (sin t, cos t): the drift is autonomous

    def drift(self, s, z, path):
        """$\\gamma(\\tilde z)\\,h$ in index time $s$."""
        t, x, _, h = path.in_index_time(s)
        return self.drift_net(t, z, x) * h

    def diffusion(self, s, z, path):
        """$\\sigma(t)\\sqrt{h}$ in index time $s$ (no dependence on $z$)."""
        t, _, _, h = path.in_index_time(s)
        return self.sigma(t, z.dtype) * root(h)

    def problem(self) -> sk.SDE:
        return sk.SDE(self.drift, self.diffusion, noise="additive")
