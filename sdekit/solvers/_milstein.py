"""Milstein's method, Itô and Stratonovich, with the diffusion's derivative by forward-mode AD."""

import functools

import jax

from ..terms import contract, sum_channel_jvps
from ._base import EmptyState, LinearDense, SDEFacts, Solver, linear_interpolate

_NOISE = ("additive", "scalar", "diagonal", "commutative")


def _init(problem, t0, y0, args):
    return EmptyState()


def _derivative_terms(problem, t0, y0, args, w, ito: bool, h):
    r"""$\tfrac12 \sum_{j,k} (\partial g_k)[g_j] (\Delta W_j \Delta W_k - \delta_{jk} h)$, with the
    $\delta_{jk} h$ part for Itô only. The double sum is one jvp: the derivative of
    $y \mapsto g(y)\Delta W$ along $g\Delta W$ (exact for commutative noise, where the Lévy areas
    cancel)."""
    g = problem.diffusion(t0, y0, args)
    g_w = contract(g, w, y0)
    _, both = jax.jvp(lambda z: contract(problem.diffusion(t0, z, args), w, z), (y0,), (g_w,))
    if not ito:
        return g_w, jax.tree.map(lambda b: 0.5 * b, both)
    if all(gi.shape == yi.shape for gi, yi in zip(jax.tree.leaves(g), jax.tree.leaves(y0))):
        # Diagonal or scalar noise: the sum over j of (dg_j)[g_j] is the jvp of g along g.
        _, diag = jax.jvp(lambda z: problem.diffusion(t0, z, args), (y0,), (g,))
    else:
        diag = sum_channel_jvps(lambda z: problem.diffusion(t0, z, args), y0, g)
    return g_w, jax.tree.map(lambda b, d: 0.5 * (b - h.astype(b.dtype) * d), both, diag)


def _step(ito: bool, problem, t0, t1, y0, args, inc, state):
    h = inc.dt
    f0 = problem.drift(t0, y0, args)
    g_w, correction = _derivative_terms(problem, t0, y0, args, inc.W, ito, h)
    y1 = jax.tree.map(lambda y, f, n, c: y + h.astype(y.dtype) * f + n + c, y0, f0, g_w, correction)
    return y1, None, LinearDense(y0, y1), state


@functools.cache
def milstein(calculus: str = "ito") -> Solver:
    r"""Milstein's method: Euler--Maruyama plus the first iterated-integral correction,
    $y_1 = y_0 + f h + g\Delta W + \tfrac12 \sum_{j,k} (\partial g_k)[g_j]
    (\Delta W_j \Delta W_k - \delta_{jk} h)$ (Itô; Stratonovich drops the $h$ term).

    Strong order 1.0 and weak order 1.0 for scalar, diagonal, commutative and additive noise
    (with commutative noise the Lévy areas cancel, so only W is needed; `"diagonal"` noise is
    taken to mean each $g_i$ depends on $y_i$ alone, which makes it commutative). Not for general
    (non-commutative) noise, where it would only reach order 0.5. Per step: one drift, one
    diffusion evaluation and one or (Itô, commutative noise) m+1 Jacobian-vector products of
    the diffusion; no Jacobian is formed. No error estimate.

    Args:
        calculus: `"ito"` (default, as for `milstein_general` and `sk.SDE`) or `"stratonovich"`:
            which solution it converges to. `sk.solve` refuses a problem of the other calculus.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> gbm = sk.SDE(lambda t, y, a: 0.1 * y, lambda t, y, a: 0.3 * y, noise="diagonal")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(), tol=2**-10)
        >>> inc = tree.increment(0.0, 0.01)
        >>> y1, _, _, _ = sk.solvers.milstein().step(gbm, 0.0, 0.01, jnp.array(1.0), None, inc, None)
        >>> bool(jnp.isfinite(y1))
        True

    References:
        G. N. Milstein, Theory Probab. Appl. 19 (1975) 557--562; Kloeden & Platen (1992),
        Secs. 10.3 and 10.5 (commutative noise).
    """
    if calculus not in ("ito", "stratonovich"):
        raise ValueError(f"milstein: calculus must be 'ito' or 'stratonovich', got {calculus!r}.")
    orders = tuple((n, 1.0) for n in _NOISE)
    return Solver(
        name=f"milstein({calculus})",
        init=_init,
        step=functools.partial(_step, calculus == "ito"),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        sde=SDEFacts(calculus=calculus, strong_order=orders, weak_order=orders),
    )
