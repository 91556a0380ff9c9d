r"""The naive neural SDE baseline: unconstrained MLP drift and diffusion."""

import equinox as eqx
import jax

import sdekit as sk

from ._base import SeriesModel
from ._layers import root, StableDrift


class NeuralSDE(SeriesModel):
    r"""Naive neural SDE (the baseline of Oh, Lim & Kim 2024, after Tzen & Raginsky 2019 and
    Jia & Benson 2019):

    $$\mathrm{d}z = f(t, \tilde z)\,\mathrm{d}t + g(z) \odot \mathrm{d}W_t,\qquad
    \tilde z = \zeta(t, z, X(t)),\qquad z(t_0) = A\,X(t_0) + a,$$

    Itô, diagonal noise; $f$ is the MLP of `LNSDE` without the tanh clipping and $g(z) =
    \mathrm{sigmoid}(\mathrm{MLP}(z))$ a nonlinear diffusion of the state: none of the stable
    classes' structure (existence of strong solutions and stability are not guaranteed). The
    data enter through $X(t)$ as in the stable classes. Options as in `LNSDE`.

    Args:
        in_size, hidden_size, out_size, key, width, depth, method, solver, adjoint, substeps:
            as in `LNSDE`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.NeuralSDE(1, 8, 2, key=jax.random.key(0))
        >>> model(jnp.arange(5.0), jnp.ones((5, 1)), key=jax.random.key(1)).shape
        (2,)

    References:
        B. Tzen, M. Raginsky, arXiv 1905.09883 (2019); J. Jia, A. Benson, NeurIPS 2019; Y. Oh,
        D. Lim, S. Kim, ICLR 2024 (arXiv 2402.14989), Sec. 2.
    """

    drift_net: StableDrift
    diffusion_net: eqx.nn.MLP

    def init_networks(self, drift_key, diffusion_key):
        self.drift_net = StableDrift(self.in_size + 1, self.hidden_size, self.width, self.depth, clip=False,
                                     key=drift_key)
        self.diffusion_net = eqx.nn.MLP(self.hidden_size, self.hidden_size, self.width, max(self.depth - 1, 1),
                                        activation=jax.nn.relu, final_activation=jax.nn.sigmoid, key=diffusion_key)

    def drift(self, s, z, path):
        """$f(t, \\tilde z)\\,h$ in index time $s$."""
        t, x, _, h = path.in_index_time(s)
        return self.drift_net(t, z, x) * h

    def diffusion(self, s, z, path):
        """$g(z)\\sqrt{h}$ in index time $s$."""
        _, _, _, h = path.in_index_time(s)
        return self.diffusion_net(z) * root(h)

    def problem(self) -> sk.SDE:
        return sk.SDE(self.drift, self.diffusion, noise="diagonal")
