r"""The augmented systems that `Backsolve` integrates backwards, and the time-reversed tree.

For parameters $\theta$ (the floating-point leaves of the problem and of `args`) and a loss
$L$ of the saved states, the adjoint $a(t) = \partial L/\partial y(t)$ and the running
parameter gradient $\bar\theta(t)$ satisfy, backwards in time,

- ODE (Chen et al. 2018): $\dot y = f$, $\dot a = -a^\top \partial_y f$,
  $\dot{\bar\theta} = -a^\top \partial_\theta f$;
- Stratonovich SDE (Li et al. 2020): the same with $f\,dt$ replaced by
  $b\,dt + \sigma \circ dW$, all three components driven by the **same** Brownian path.

Every vector-Jacobian product is one `jax.vjp`; no Jacobian is formed except the diffusion's
columns (one vjp per Brownian channel, see `AdjointDiffusion`).
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._solve import brownian_zeros
from ..brownian import Increment
from ..terms import stratonovich_drift


def _neg(tree):
    return jax.tree.map(jnp.negative, tree)


def _vjp(fn, y, diff, a):
    """`(fn(y, diff), a^T d fn/dy, a^T d fn/d diff)`."""
    out, pullback = jax.vjp(fn, y, diff)
    a_y, a_diff = pullback(a)
    return out, a_y, a_diff


class AdjointODE(eqx.Module):
    r"""$(y, a, \bar\theta) \mapsto (f, -a^\top \partial_y f, -a^\top \partial_\theta f)$ in
    the original time $t$ (the solve integrates it from the later to the earlier time). The
    parameters arrive as the backward solve's `args` (traced, never closure constants)."""

    static: Any

    def __call__(self, t, z, diff):
        y, a, _ = z

        def f(y_, d_):
            problem, args = eqx.combine(d_, self.static)
            return problem.vector_field(t, y_, args)

        fy, a_y, a_diff = _vjp(f, y, diff, a)
        return fy, _neg(a_y), _neg(a_diff)


def _stratonovich(problem, ito: bool):
    return stratonovich_drift(problem) if ito else problem


class AdjointDrift(eqx.Module):
    r"""Drift of the augmented Stratonovich SDE in reversed time $\tau = -t$:
    $(-b, a^\top \partial_y b, a^\top \partial_\theta b)$ at $t = -\tau$ ($b$: the Stratonovich
    drift, converted from Itô when needed)."""

    static: Any
    ito: bool = eqx.field(static=True)

    def __call__(self, tau, z, diff):
        y, a, _ = z

        def b(y_, d_):
            problem, args = eqx.combine(d_, self.static)
            return _stratonovich(problem, self.ito).drift(-tau, y_, args)

        by, a_y, a_diff = _vjp(b, y, diff, a)
        return _neg(by), a_y, a_diff


class AdjointDiffusion(eqx.Module):
    r"""Diffusion of the augmented SDE in reversed time, in the general-noise form: leaf shapes
    `(*leaf.shape, m)` for the $m$ flattened Brownian channels. Column $j$ is
    $(\sigma e_j, -a^\top \partial_y(\sigma e_j), -a^\top \partial_\theta(\sigma e_j))$: one vjp
    per channel (vmapped). Driven by the reversed increments $\tilde W = -W_{t-h,t}$, the sign
    of the time reversal is carried by the noise, so the diffusion keeps its sign."""

    static: Any
    w_template: Any  # zeros with the structure of the forward Brownian motion

    def __call__(self, tau, z, diff):
        y, a, _ = z
        flat, unravel = ravel_pytree(self.w_template)

        def column(e):
            def g_e(y_, d_):
                problem, args = eqx.combine(d_, self.static)
                return problem.noise_term(-tau, y_, args, unravel(e))

            gy, a_y, a_diff = _vjp(g_e, y, diff, a)
            return gy, _neg(a_y), _neg(a_diff)

        return jax.vmap(column, out_axes=-1)(jnp.eye(flat.shape[0], dtype=flat.dtype))


class ReversedTree(eqx.Module):
    r"""A `BrownianTree` seen in reversed time $\tau = -t$, flattened to one channel vector.

    Over $[\tau, \tau + h]$ (that is $t \in [-\tau - h, -\tau]$) it returns the increment of
    the path run backwards, $\tilde W = -W_{t-h, t}$, $\tilde H = H_{t-h,t}$,
    $\tilde K = -K_{t-h,t}$ (as `BrownianTree.reversed_increment`), with `dt = h > 0`, so that
    the forward SDE solvers step the adjoint system backwards over the very path the forward
    solve used. Only what `sk.solve`'s noise source and checks read is provided.
    """

    tree: Any

    @property
    def t0(self):
        return -self.tree.t1

    @property
    def t1(self):
        return -self.tree.t0

    @property
    def tol(self):
        return self.tree.tol

    @property
    def levy(self):
        return self.tree.levy

    @property
    def shape(self):
        return (self._size(),)

    @property
    def dtype(self):
        return self._flat_dtype()

    def _template(self):
        return brownian_zeros(self.tree)

    def _size(self):
        return sum(x.size for x in jax.tree.leaves(self._template()))

    def _flat_dtype(self):
        return ravel_pytree(self._template())[0].dtype

    def cursor(self):
        return self.tree.cursor()

    def with_on_error(self, on_error):
        return ReversedTree(self.tree.with_on_error(on_error))

    def _flip(self, inc, dt):
        flat = lambda x: None if x is None else ravel_pytree(x)[0]  # noqa: E731
        neg = lambda x: None if x is None else -x  # noqa: E731
        return Increment(dt, neg(flat(inc.W)), flat(inc.H), neg(flat(inc.K)))

    def increment(self, s, t, cursor=None):
        if cursor is None:
            return self._flip(self.tree.increment(-t, -s), t - s)
        inc, cursor = self.tree.increment(-t, -s, cursor=cursor)
        return self._flip(inc, t - s), cursor

    def grid_increments(self, ts):
        incs = self.tree.grid_increments(-ts[::-1])
        # Step k of the reversed grid is step n-1-k of the tree's grid.
        incs = jax.tree.map(lambda x: x[::-1], incs)
        flat = jax.vmap(lambda i: self._flip(i, i.dt))(incs)
        return flat._replace(dt=ts[1:] - ts[:-1])
