r"""LNSDE: the neural SDE with linear multiplicative noise of Oh, Lim & Kim (ICLR 2024)."""

import sdekit as sk

from ._base import StableModel
from ._layers import root


class LNSDE(StableModel):
    r"""Linear-noise neural SDE (Oh, Lim & Kim 2024, Sec. 3.2; their `neuralsde_4_17`):

    $$\mathrm{d}z = \gamma(t, \tilde z)\,\mathrm{d}t + \sigma(t) \odot z\,\mathrm{d}W_t,\qquad
    \tilde z = \zeta(t, z, X(t)),\qquad z(t_0) = A\,X(t_0) + a,$$

    Itô, diagonal noise; the output is $W_o z(t_{\text{last}}) + b_o$. $X$ is the control path
    of the observations with time as its first channel (`sdekit.neural.interpolate`);
    $\zeta$ mixes $(\sin t, \cos t, z)$ and $X(t)$ linearly; $\gamma$ is an MLP clipped by
    $\tanh$; $\sigma(t) \in [0, 1)$ is a time-only network scaled by a learnable sigmoid (see
    `StableDrift`, `TimeScale`: the stabilisers of the authors' code that are kept). With
    bounded $\gamma$ and $\sigma$ the SDE has a unique strong solution, and the linear noise
    gives the paper's robustness bounds. Solved on the observation grid (Euler--Maruyama by
    default, $\mathrm{d}t$ = the observation spacing, as in the paper's code; see
    `sdekit.neural` for index time and padding).

    Args:
        in_size: data channels C (without time: the model adds the time channel).
        hidden_size: dimension of $z$.
        out_size: number of classes (logits) or regression targets.
        key: PRNG key for the parameters.
        width: width of the drift network (default `hidden_size`).
        depth: linear layers of the drift network after $\zeta$ (default 2).
        method: interpolation of the control path (`"hermite"`, `"linear"`, `"natural_cubic"`).
        solver: an `sk.solvers` SDE solver; default Euler--Maruyama, or reversible Heun under
            `sk.adjoint.Reversible()` (the SDE is converted to Stratonovich form for
            Stratonovich solvers).
        adjoint: `sk.adjoint.Checkpointed()` (default), `Reversible()` or `Backsolve()`.
        substeps: solver steps per observation interval (default 1).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sdekit import neural as skn
        >>> model = skn.LNSDE(2, 8, 3, key=jax.random.key(0))
        >>> times = jnp.array([0.0, 1.0, 2.0, 2.0])                      # padded to length 4
        >>> values = jnp.array([[0.1, 1.0], [jnp.nan, 0.5], [0.3, 0.0], [jnp.nan, jnp.nan]])
        >>> model(times, values, key=jax.random.key(1)).shape
        (3,)

    References:
        Y. Oh, D. Lim, S. Kim, "Stable Neural Stochastic Differential Equations in Analyzing
        Irregular Time Series Data", ICLR 2024 (arXiv 2402.14989), Eq. (4), Thm 3.3.
    """

    def drift(self, s, z, path):
        """$\\gamma(t, \\tilde z)\\,h$ in index time $s$ (`path` is the control path)."""
        t, x, _, h = path.in_index_time(s)
        return self.drift_net(t, z, x) * h

    def diffusion(self, s, z, path):
        """$\\sigma(t) \\odot z\\,\\sqrt{h}$ in index time $s$."""
        t, _, _, h = path.in_index_time(s)
        return self.sigma(t, z.dtype) * z * root(h)

    def problem(self) -> sk.SDE:
        return sk.SDE(self.drift, self.diffusion, noise="diagonal")
