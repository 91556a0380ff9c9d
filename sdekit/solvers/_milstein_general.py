r"""Milstein's method for general (non-commutative) noise, with the tree's space-space Lévy area."""

import functools

import jax
import jax.numpy as jnp

from ..terms import contract, sum_channel_jvps
from ._base import EmptyState, LinearDense, SDEFacts, Solver, linear_interpolate


def _init(problem, t0, y0, args):
    return EmptyState()


def _iterated_integrals(inc, ito: bool, name: str):
    r"""$c_{jk} = \int_s^t W^j_{s,r}\,dW^k_r$: $\tfrac12 W_j W_k + A_{jk}$ (Stratonovich), minus
    $\tfrac12 h\,\delta_{jk}$ (Itô)."""
    if inc.A is None:
        raise ValueError(
            f"{name} needs the space-space Lévy area A of each increment, but the increment has A=None: "
            "build the tree with sk.BrownianTree(key, t0, t1, shape=(m,), tol=..., levy='space-time', area=True)."
        )
    w, a = inc.W, inc.A
    if not (isinstance(w, jax.Array) and w.ndim == 1 and a.shape == (*w.shape, w.shape[0])):
        raise ValueError(
            f"{name} needs the Brownian motion to be one array of shape (m,) (general-noise form: the diffusion "
            f"returns (*y.shape, m) per state leaf), got W of shape {jnp.shape(w)}."
        )
    c = 0.5 * (w[:, None] * w[None, :]) + a
    if ito:
        c = c - (0.5 * inc.dt.astype(c.dtype)) * jnp.eye(w.shape[0], dtype=c.dtype)
    return c


def _step(ito: bool, name: str, problem, t0, t1, y0, args, inc, state):
    h = inc.dt
    c = _iterated_integrals(inc, ito, name)
    f0 = problem.drift(t0, y0, args)
    g = problem.diffusion(t0, y0, args)
    g_w = contract(g, inc.W, y0)
    # Channel j: sum_k (dg_k)[g_j] c_jk, the derivative of y -> g(y) c_j along the j-th column of g.
    correction = sum_channel_jvps(lambda z: problem.diffusion(t0, z, args), y0, g,
                                  lambda gz, j, z: contract(gz, c[j], z))
    y1 = jax.tree.map(lambda y, f, n, k: y + h.astype(y.dtype) * f + n + k, y0, f0, g_w, correction)
    return y1, None, LinearDense(y0, y1), state


@functools.cache
def milstein_general(calculus: str = "ito") -> Solver:
    r"""Milstein's method for general noise, with the space-space Lévy area of the Brownian tree:

    $$y_1 = y_0 + f h + g\,\Delta W + \sum_{j,k} (\partial g_k)[g_j]\, J_{jk}, \qquad
    J_{jk} = \tfrac12 \Delta W_j \Delta W_k + A_{jk} \;(- \tfrac12 h\,\delta_{jk} \text{ for Itô}),$$

    with $g_k$ the $k$-th column of the diffusion, $J_{jk} = \int W^j_{s,r}\,dW^k_r$ and $A$ the
    increment's Lévy area (`BrownianTree(..., levy="space-time", area=True)`). Strong order 1.0
    for general (non-commutative) and commutative noise, against the solution driven by the
    tree's path; the tree's area is within $O(\sqrt{\mathrm{tol}})$ of the true Lévy area, so for
    order 1 against the true SDE take `tol` of order $h^2$. (Without the area term, i.e. plain
    Milstein or Euler--Maruyama, non-commutative noise gives order 0.5.) Weak order 1.0.

    Per step: one drift and one diffusion evaluation and $m$ Jacobian-vector products of the
    diffusion (vmapped over the $m$ noise channels; no Jacobian is formed), plus the area's cost
    in the tree ($O(h/\mathrm{tol})$ leaves per step). The Brownian motion must be one array of
    shape `(m,)`, with the diffusion returning `(*leaf.shape, m)` per state leaf. No error estimate.

    Args:
        calculus: `"ito"` (default, as for `milstein` and `sk.SDE`) or `"stratonovich"`: which
            solution it converges to. `sk.solve` refuses a problem of the other calculus.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> B1, B2 = jnp.array([[0.0, 0.5], [0.0, 0.0]]), jnp.array([[0.0, 0.0], [0.5, 0.0]])
        >>> sde = sk.SDE(lambda t, y, a: -y, lambda t, y, a: jnp.stack([B1 @ y, B2 @ y], -1),
        ...              noise="general", calculus="stratonovich")
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-12,
        ...                        levy="space-time", area=True)
        >>> sol = sk.solve(sde, sk.solvers.milstein_general("stratonovich"), 0.0, 1.0, jnp.ones(2),
        ...                controller=sk.StepTo(jnp.linspace(0.0, 1.0, 33)), brownian=tree)
        >>> sol.ys.shape
        (1, 2)

    References:
        Kloeden & Platen (1992), Sec. 10.3 (the scheme, eq. 10.3.3 and its Stratonovich form);
        Clark & Cameron (1980) (without the area, order 1/2 is the best possible).
    """
    if calculus not in ("ito", "stratonovich"):
        raise ValueError(f"milstein_general: calculus must be 'ito' or 'stratonovich', got {calculus!r}.")
    name = f"milstein_general({calculus})"
    orders = (("commutative", 1.0), ("general", 1.0))
    return Solver(
        name=name,
        init=_init,
        step=functools.partial(_step, calculus == "ito", name),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None,
        interpolation_order=1,
        fevals_per_step=1,
        sde=SDEFacts(calculus=calculus, strong_order=orders, weak_order=orders, levy_area="space-space"),
    )
