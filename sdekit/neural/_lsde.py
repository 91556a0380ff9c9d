r"""LSDE: the Langevin-type neural SDE of Oh, Lim & Kim (ICLR 2024)."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

import sdekit as sk

from ._base import SeriesModel
from ._layers import root, StableDrift, TimeScale, split_key


class LSDE(SeriesModel):
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

    drift_net: StableDrift
    sigma: TimeScale

    def __init__(self, in_size: int, hidden_size: int, out_size: int, *, key: PRNGKeyArray | None = None,
                 width: int | None = None, depth: int = 2, method: str = "hermite", solver=None, adjoint=None,
                 substeps: int = 1, **fields):
        if self._configure(in_size, hidden_size, out_size, width, depth, method, solver, adjoint, substeps, fields):
            return
        k1, k2, k3, k4 = split_key(key, 4)
        self.initial = eqx.nn.Linear(in_size + 1, hidden_size, key=k1)
        self.drift_net = StableDrift(in_size + 1, hidden_size, self.width, depth, time_features=False, key=k2)
        self.sigma = TimeScale(hidden_size, self.width, key=k3)
        self.readout = eqx.nn.Linear(hidden_size, out_size, key=k4)

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
