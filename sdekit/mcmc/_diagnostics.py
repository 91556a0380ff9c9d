"""Effective sample size and R-hat, from numpyro (the optional extra `sdekit[mcmc]`)."""

import jax
import numpy as np
from jaxtyping import ArrayLike, PyTree


def _numpyro_diagnostics():
    try:
        from numpyro import diagnostics
    except ImportError as err:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(
            "sdekit.mcmc's diagnostics use numpyro.diagnostics: install the extra with "
            "`pip install 'sdekit[mcmc]'` (or `pip install numpyro`)."
        ) from err
    return diagnostics


def effective_sample_size(samples: PyTree[ArrayLike]) -> PyTree[np.ndarray]:
    r"""Effective sample size per component, over all chains (Geyer's initial monotone sequence
    on the chains' combined autocorrelation; Stan's estimator, as `numpyro.diagnostics`).

    Args:
        samples: leaves of shape `(chains, draws, ...)`, e.g. `sdekit.mcmc.sample(...).positions`.

    Returns:
        Leaves of shape `(...)`: the effective number of independent draws.

    Raises:
        ImportError: without numpyro (install `sdekit[mcmc]`).

    Examples:
        >>> import numpy as np, sdekit.mcmc as skm
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> 3500 < float(skm.effective_sample_size(draws)) < 4500  # independent draws: about 4000
        True
    """
    diagnostics = _numpyro_diagnostics()
    return jax.tree.map(lambda x: diagnostics.effective_sample_size(np.asarray(x, np.float64)), samples)


def rhat(samples: PyTree[ArrayLike]) -> PyTree[np.ndarray]:
    r"""Split-chain potential scale reduction $\hat R$ per component (Gelman et al.; numpyro's
    `split_gelman_rubin`): near 1 for chains that agree, above it for chains that have not mixed.

    Args:
        samples: leaves of shape `(chains, draws, ...)` (one chain is split in two).

    Returns:
        Leaves of shape `(...)`.

    Raises:
        ImportError: without numpyro (install `sdekit[mcmc]`).

    Examples:
        >>> import numpy as np, sdekit.mcmc as skm
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> abs(float(skm.rhat(draws)) - 1.0) < 0.01
        True
    """
    diagnostics = _numpyro_diagnostics()
    return jax.tree.map(lambda x: diagnostics.split_gelman_rubin(np.asarray(x, np.float64)), samples)
