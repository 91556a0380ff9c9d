r"""The neural controlled differential equation of Kidger et al. (2020)."""

import equinox as eqx
import jax

import sdekit as sk

from ._base import SeriesModel


class NeuralCDE(SeriesModel):
    r"""Neural CDE (Kidger, Morrill, Foster & Lyons 2020):

    $$\mathrm{d}z = f_\theta(z)\,\mathrm{d}X_t,\quad\text{i.e.}\quad
    \frac{\mathrm{d}z}{\mathrm{d}t} = f_\theta(z)\,X'(t),\qquad z(t_0) = A\,X(t_0) + a,$$

    with $f_\theta(z) = \tanh(\mathrm{MLP}(z))$ reshaped to a `(hidden, C + 1)` matrix (the
    final tanh as in the paper) and $X$ the control path with time as channel 0. Solved as an
    `sk.ODE` along the observation grid in index time, where $\mathrm{d}z/\mathrm{d}s =
    f_\theta(z)\,\mathrm{d}X/\mathrm{d}s$ (a CDE does not change under a change of time), by
    the midpoint method by default (one step per observation interval, two evaluations: at the
    start and the middle of the interval); padding has $\mathrm{d}X/\mathrm{d}s = 0$. The call
    takes `key` like the SDE models and does not use it.

    Args:
        in_size, hidden_size, out_size, key, width, depth, method, adjoint, substeps: as in
            `LNSDE` (`depth`: linear layers of $f_\theta$, default 2).
        solver: an `sk.solvers` ODE solver (default `midpoint()`, or `reversible_heun()` under
            `sk.adjoint.Reversible()`).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.NeuralCDE(1, 8, 2, key=jax.random.key(0))
        >>> model(jnp.arange(5.0), jnp.ones((5, 1)), key=None).shape
        (2,)

    References:
        P. Kidger, J. Morrill, J. Foster, T. Lyons, "Neural Controlled Differential Equations
        for Irregular Time Series", NeurIPS 2020 (arXiv 2005.08926), Eq. (4).
    """

    field: eqx.nn.MLP

    n_networks = 1

    def init_networks(self, field_key):
        self.field = eqx.nn.MLP(self.hidden_size, self.hidden_size * (self.in_size + 1), self.width,
                                max(self.depth - 1, 1), activation=jax.nn.relu, final_activation=jax.nn.tanh,
                                key=field_key)

    def vector_field(self, s, z, path):
        """$f_\\theta(z)\\,\\mathrm{d}X/\\mathrm{d}s$ in index time $s$."""
        _, _, dx_ds, _ = path.in_index_time(s)
        return self.field(z).reshape(self.hidden_size, self.in_size + 1) @ dx_ds

    def problem(self) -> sk.ODE:
        return sk.ODE(self.vector_field)
