r"""`BrownianTree`: one PRNG key fixes a whole Brownian path and its Lévy areas."""

import copy
from typing import Literal

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp

from .._typing import Array, Key, PyTree, RealScalarLike, is_traced
from . import _cursor, _hash, _path_area, _pieces, _primitive, _validate
from ._cursor import BrownianCursor
from ._increment import Increment
from ._spec import TreeSpec

Levy = Literal["increment", "space-time", "space-time-time"]

_QUERY_ERROR = (
    "Invalid BrownianTree query: a time outside the tree's [t0, t1], s > t (use "
    "reversed_increment for backward time) or a NaN time. Build the tree with on_error='nan' "
    "(or use tree.with_on_error('nan')) to get NaN increments instead."
)


class BrownianTree(eqx.Module):
    r"""Single-seed virtual Brownian tree with exact bridges, a cursor and a grid path.

    The interval $[t_0, t_1]$ is rescaled to [0, 1] and split dyadically down to
    `depth` $= \lceil \log_2((t_1 - t_0)/\mathrm{tol}) \rceil$ levels, so leaves are at
    most `tol` wide. Each node's values (W, H, K) come from its parent by the exact
    midpoint rule, with normals that are a function of (key, level, index) only; inside
    a leaf, a query time uses the exact any-point bridge with the leaf's own normals.
    Hence the path is deterministic and continuous, queries may come in any order, and
    **queries at least `tol` apart are exact in joint law** (two queries in one leaf are
    each exact, but not jointly). Memory is O(1) (the key); a query costs
    O(depth) without a cursor and amortised O(1) levels with one.

    With `area=True` increments also carry a space-space Lévy area `A` that is a function of
    the path: every leaf gets Foster's approximation from its exact (W, H) and its own
    normals, and an interval's area is the Chen product of its leaves (a partial leaf is
    split consistently), so areas satisfy Chen's relation exactly across resolutions and
    query orders, as strong order 1 on non-commutative noise needs. This costs
    O((t - s)/tol) leaf evaluations per query, and the area differs from the true Lévy
    area by $O(\sqrt{(t-s)\,\mathrm{tol}})$: take `tol` about the square of the step
    for strong order 1 against the true SDE (see `sdekit.brownian._path_area`). W, H and K
    are the same as without `area`.

    Increments are computed relative to the deepest common ancestor of $s$ and $t$, from
    pieces that lie inside $[s, t]$ (never as differences of absolute path values), so a
    short interval's W, H and K are accurate to a few ulps of their own size wherever
    it lies (intervals shorter than one leaf are differenced within the leaf).

    Derivatives. A Brownian path is not differentiable in time, so the random parts of every
    query (W, H, K, A, the returned cursor; `evaluate`, `reversed_increment`,
    `grid_increments` and `area_normals` alike) have derivative **exactly zero** in the query
    times, the grid and the tree's own `t0`/`t1` (when traced), in forward and reverse mode,
    under `jit` and `vmap`: they are computed under `lax.stop_gradient`. `dt` $= t - s$ is
    deterministic and keeps its derivative (1 in $t$, -1 in $s$), as a step's drift term
    $f\,dt$ needs. (Differentiating the bridge formulas instead gave NaN at leaf ends, such as
    dyadic times and the tree's ends, and no reverse mode through the descent's loops.) So the
    gradient of a solve with respect to its times holds the driving noise's increments fixed.

    Invalid queries. Concrete (non-traced) times are checked when called and raise
    `ValueError`. Traced times (under `jit`, `vmap`, in a loop) are checked at run time: with
    `on_error="raise"` (default) a query with $s > t$, a time outside $[t_0, t_1]$ or a NaN
    time raises a run-time error through `equinox.error_if` (under `vmap`, if any lane is
    bad; `EQX_ON_ERROR=nan` makes it NaN instead); with `on_error="nan"` its W, H, K and A
    are NaN (on the bad steps only, for a grid) and nothing raises. `with_on_error` gives
    the same tree with the other policy. Backward-in-time increments use
    `reversed_increment`.

    Args:
        key: a PRNG key (`jax.random.key` or `jax.random.PRNGKey`).
        t0: start of the interval (may be traced).
        t1: end of the interval (may be traced; then pass `depth`).
        shape: a tuple of ints, or a pytree of `jax.ShapeDtypeStruct` (one independent
            path per leaf, each with its own dtype).
        tol: static; leaves are at most `tol` wide.
        levy: `"increment"` (W), `"space-time"` (W, H) or `"space-time-time"`
            (W, H, K).
        area: static; also give each increment the path-consistent space-space Lévy area
            `A` (needs `levy="space-time"` or `"space-time-time"`, and a Brownian
            dimension as each shape leaf's last axis: `A` has shape `(*shape, m)` with
            `m = shape[-1]`).
        dtype: float dtype of the path when `shape` is a tuple (default: jax's default
            float).
        on_error: `"raise"` (default) or `"nan"`, the policy for invalid traced query
            times (see above).
        depth: optional static depth override (required when t0/t1 are traced).

    Attributes:
        t0, t1: the interval, as arrays of the time dtype (float64 when x64 is on, so
            float64 times are never truncated).
        tol, levy, depth: as above (static).

    Raises:
        TypeError, ValueError: for a bad key, shape, dtype, levy, tol or interval.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import sdekit.brownian as skb
        >>> tree = skb.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-10,
        ...                         levy="space-time")
        >>> inc = tree.increment(0.25, 0.5)
        >>> inc.W.shape, inc.H.shape, inc.K is None
        ((2,), (2,), True)
        >>> w = tree.evaluate(0.5) - tree.evaluate(0.25)
        >>> bool(jnp.allclose(w, inc.W, atol=1e-6))
        True
        >>> cur = tree.cursor()
        >>> inc2, cur = tree.increment(0.25, 0.5, cursor=cur)
        >>> bool((inc2.W == inc.W).all())
        True

    References:
        Jelinčič, Foster, Kidger (2024), "Single-seed generation of Brownian paths and
        integrals for adaptive and high order SDE solvers", arXiv 2405.06464.
        Foster (2020), DPhil thesis, Thms 6.1.4 and 6.1.6.
    """

    t0: Array
    t1: Array
    _seeds: tuple
    tol: float = eqx.field(static=True)
    levy: str = eqx.field(static=True)
    area: bool = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    on_error: str = eqx.field(static=True)
    _leaves: tuple = eqx.field(static=True)
    _treedef: object = eqx.field(static=True)
    _tuple_shape: bool = eqx.field(static=True)
    _tdtype: object = eqx.field(static=True)

    def __init__(
        self,
        key: Key,
        t0: RealScalarLike,
        t1: RealScalarLike,
        *,
        shape: tuple[int, ...] | PyTree[jax.ShapeDtypeStruct],
        tol: float,
        levy: Levy = "increment",
        area: bool = False,
        dtype=None,
        on_error: Literal["raise", "nan"] = "raise",
        depth: int | None = None,
    ):
        key = _validate.check_key(key)
        _validate.check_levy(levy)
        _validate.check_on_error(on_error)
        leaves, treedef, tuple_shape = _validate.check_shape(shape, dtype)
        self.tol, self.depth = _validate.check_tol_depth(tol, t0, t1, depth)
        self._tdtype = _validate.time_dtype(t0, t1, leaves)
        self.t0 = jnp.asarray(t0, self._tdtype)
        self.t1 = jnp.asarray(t1, self._tdtype)
        self.levy = levy
        self.area = _validate.check_area(area, levy, leaves)
        self.on_error = on_error
        self._leaves = leaves
        self._treedef = treedef
        self._tuple_shape = tuple_shape
        keys = [key] if len(leaves) == 1 else [jax.random.fold_in(key, j) for j in range(len(leaves))]
        self._seeds = tuple(_hash.seed_words(k) for k in keys)

    # ------------------------------------------------------------------ static facts

    @property
    def spec(self) -> TreeSpec:
        """What the Brownian engine reads of this tree: its interval, seeds, depth, components,
        shape leaves and error policy (see `TreeSpec`)."""
        return TreeSpec(
            t0=self.t0,
            t1=self.t1,
            seeds=self._seeds,
            depth=self.depth,
            n=_validate.LEVY_COMPONENTS[self.levy],
            leaves=self._leaves,
            time_dtype=self._tdtype,
            on_error=self.on_error,
            treedef=self._treedef,
            tuple_shape=self._tuple_shape,
        )

    @property
    def shape(self):
        """The path's shape: the tuple given, or the pytree of `ShapeDtypeStruct`."""
        if self._tuple_shape:
            return self._leaves[0][0]
        sds = [jax.ShapeDtypeStruct(s, d) for s, d in self._leaves]
        return jax.tree.unflatten(self._treedef, sds)

    @property
    def dtype(self):
        """The path's dtype (tuple shapes) or a pytree of dtypes."""
        if self._tuple_shape:
            return self._leaves[0][1]
        return jax.tree.unflatten(self._treedef, [d for _, d in self._leaves])

    def with_on_error(self, on_error: Literal["raise", "nan"]) -> "BrownianTree":
        """The same tree (the same path) with another policy for invalid traced queries.

        For a caller that has its own policy, such as a solve with `throw=False` that reports
        bad input through its result code (`"nan"`), or one that wants the error (`"raise"`).

        Args:
            on_error: `"raise"` or `"nan"` (see the class docstring).

        Returns:
            A `BrownianTree` equal to this one but for `on_error`.
        """
        _validate.check_on_error(on_error)
        if on_error == self.on_error:
            return self
        tree = copy.copy(self)
        object.__setattr__(tree, "on_error", on_error)  # a static field: equinox modules are frozen
        return tree

    # ------------------------------------------------------------------ queries

    def cursor(self) -> BrownianCursor:
        """An empty cursor, to carry through sequential `increment` calls.

        Returns:
            A `BrownianCursor` (a pytree of fixed-shape arrays).
        """
        return _cursor.empty_cursor(self.spec)

    def increment(self, s: RealScalarLike, t: RealScalarLike, *, cursor: BrownianCursor | None = None):
        r"""The increment over $[s, t]$, $t_0 \le s \le t \le t_1$.

        One descent serves both endpoints: the shared prefix is walked once. With a
        cursor, the descent restarts from the deepest common ancestor of the cursor's
        point and $s$, then of $s$ and $t$; the values are bitwise those of a fresh
        descent.

        Args:
            s: start time.
            t: end time.
            cursor: optional `BrownianCursor` from `cursor()` or a previous call.

        Returns:
            `Increment(dt, W, H, K, A)` without a cursor; `(Increment, BrownianCursor)`
            with one (the cursor then holds $t$). `A` is `None` unless `area=True`; its
            cost is O((t - s)/tol) leaves, walked with a private cursor.
        """
        s, t = jnp.asarray(s, self._tdtype), jnp.asarray(t, self._tdtype)
        # The random parts have zero time derivatives (see the class docstring): computed from
        # times, interval and cursor out of differentiation.
        tree, fs, ft, cur = lax.stop_gradient((self, s, t, cursor))
        fs, ft = tree._query_times(fs, ft)
        inc, cur = _increment_core(tree.spec, fs, ft, cur)
        if self.area:
            inc = inc._replace(A=_path_area.increment_area(tree.spec, fs, ft))
        # `dt` is deterministic: differentiable as the plain difference it is.
        inc = inc._replace(dt=t - s)
        return inc if cursor is None else (inc, cur)

    def reversed_increment(
        self, s: RealScalarLike, t: RealScalarLike, *, cursor: BrownianCursor | None = None
    ):
        r"""The increment of the path run backward from $s$ to $t \le s$.

        For the backward path $\tilde W_r = W_{s-r} - W_s$ on $[0, s - t]$:
        $\tilde W = -W_{t,s}$, $\tilde H = H_{t,s}$, $\tilde K = -K_{t,s}$ (the bridge is
        unchanged, and the weight of K changes sign), $\tilde A = -A_{t,s}$ (the
        reversed path's signature is the inverse), with `dt = t - s <= 0`. This is the
        noise a backward (adjoint) solve over the same path sees.

        Args:
            s: start time (the later one).
            t: end time, `t <= s`.
            cursor: optional cursor, as in `increment`.

        Returns:
            As `increment`.
        """
        out = self.increment(t, s, cursor=cursor)
        inc, cur = (out, None) if cursor is None else out
        neg = lambda x: None if x is None else jax.tree.map(jnp.negative, x)  # noqa: E731
        rev = Increment(-inc.dt, neg(inc.W), inc.H, neg(inc.K), neg(inc.A))
        return rev if cursor is None else (rev, cur)

    def evaluate(self, t: RealScalarLike) -> PyTree[Array]:
        """The path's value $W_t - W_{t_0}$ (same structure as `shape`)."""
        return self.increment(self.t0, t).W

    def area_normals(self, s: RealScalarLike) -> PyTree[Array]:
        """Standard normals for `space_space_area`, owned by the leaf containing `s`.

        They come from the tree's node randomness (a separate stream from the path's), so
        repeated queries of a step starting at `s` see the same Lévy area, and steps
        starting in different leaves (at least `tol` apart) independent ones.

        Args:
            s: the start time of the increment.

        Returns:
            A pytree like `shape` with leaves of shape `(*shape, shape[-1])`.
        """
        s = lax.stop_gradient(jnp.asarray(s, self._tdtype))
        k = _cursor.leaf_index(lax.stop_gradient(self).spec.position(s), self.depth)
        spec = self.spec
        out = []
        for j, (shape, _) in enumerate(spec.leaves):
            if len(shape) == 0:
                raise ValueError("area_normals needs a Brownian dimension axis (last axis).")
            out.append(_path_area.leaf_area_normals(spec, j, k))
        return spec.unflatten(out)

    def grid_increments(self, ts: Array) -> Increment:
        """All increments over a grid, built level by level with vectorised operations.

        Equal to `increment(ts[i], ts[i+1])` for every i to float rounding: the same
        normals and formulas in the same order, but XLA contracts multiply-adds into FMAs
        differently in the vectorised build, so about half the values differ in the last
        bit. This is the fast path for fixed-step solvers; choose `tol` close to the step
        (the build draws about `2**depth + (depth - log2(N)) * N` nodes for N steps).
        With `area=True` it also draws all `2**depth` leaves once and folds each step's
        leaves (one loop over the longest step's leaves, all steps at once), so then `tol`
        sets the cost.

        Under `jax.vmap` over keys (the tree built inside the vmapped function, so that
        `t0`, `t1` and the grid are shared, as `sample_paths` does), the trees' grids are
        built together with the path axis inside, as for one tree of shape
        `(paths, *shape)`: each path's increments are still its own tree's, and the build
        is faster than a plain vmap. Batched grids or intervals (trees vmapped in
        from outside carry batched `t0` and `t1`) fall back to the plain vmap.

        Args:
            ts: a 1-d array of non-decreasing times in $[t_0, t_1]$ (static length
                `N + 1`, traced values).

        Returns:
            An `Increment` whose leaves have a leading axis of length N; invalid grids
            follow the `on_error` policy.
        """
        ts = jnp.asarray(ts, self._tdtype)
        if ts.ndim != 1 or ts.shape[0] < 2:
            raise ValueError(f"ts must be 1-d with at least 2 times, got shape {ts.shape}.")
        tree, fts = lax.stop_gradient((self, ts))  # zero time derivatives, as in `increment`
        if not is_traced((fts, tree.t0, tree.t1)):
            tree._check_concrete(fts[:-1], fts[1:])
        else:
            fts = tree._checked(fts, tree.spec.bad(fts[:-1], fts[1:]))
        inc = _primitive.grid_increments(tree.spec, fts)
        if self.area:
            inc = inc._replace(A=_path_area.grid_increment_area(tree.spec, fts))
        return inc._replace(dt=ts[1:] - ts[:-1])

    # ------------------------------------------------------------------ internals

    def _check_concrete(self, s, t):
        import numpy as np

        s, t = np.asarray(s), np.asarray(t)
        t0, t1 = float(self.t0), float(self.t1)
        if np.any(np.isnan(s)) or np.any(np.isnan(t)):
            raise ValueError("Brownian query times must not be NaN.")
        if np.any((s < t0) | (s > t1) | (t < t0) | (t > t1)):
            raise ValueError(
                f"Brownian query [{s}, {t}] lies outside the tree's interval [{t0}, {t1}]."
            )
        if np.any(s > t):
            raise ValueError(
                f"Brownian increment needs s <= t, got s={s}, t={t}; use "
                "reversed_increment for backward time."
            )

    def _query_times(self, s, t):
        """Scalar query times in the time dtype, checked: concrete ones now (`ValueError`),
        traced ones at run time under the "raise" policy (`_checked`)."""
        s = jnp.asarray(s, self._tdtype)
        t = jnp.asarray(t, self._tdtype)
        if s.shape != () or t.shape != ():
            raise ValueError(
                f"increment takes scalar times, got shapes {s.shape} and {t.shape}; "
                "use jax.vmap or grid_increments for many."
            )
        if not is_traced((s, t, self.t0, self.t1)):
            self._check_concrete(s, t)
            return s, t
        return self._checked((s, t), self.spec.bad(s, t))

    def _checked(self, times, bad):
        """`times` (a pytree), under the "raise" policy with the run-time check attached.

        The check is on the query's times, which every output depends on, so it runs whenever
        any output is used, and it is a small conditional ahead of the build: on the outputs, it
        sat between the grid build and a vmapped scan over it, kept XLA from cancelling their
        transposes, and cost a tenth of a vmapped Euler-Maruyama solve's run time."""
        if self.on_error == "nan":
            return times
        return eqx.error_if(times, jnp.any(bad), _QUERY_ERROR)


# Jitted core: eager calls compile once per tree structure instead of dispatching every small op
# and loop; under an outer jit it is inlined.


@eqx.filter_jit
def _increment_core(spec: TreeSpec, s, t, cursor):
    if cursor is None:
        # The barrier stops XLA specialising the descent on the empty cursor's constants,
        # so fresh and cursor descents compile alike (FMA contraction is per fusion).
        cursor = lax.optimization_barrier(_cursor.empty_cursor(spec))
    us, ut = spec.position(s), spec.position(t)
    us = jnp.minimum(us, ut)
    pieces, cursor = _cursor.increment_pieces(spec, cursor, us, ut)
    return _pieces.finish(spec, t - s, pieces, spec.bad(s, t)), cursor
