"""Problem descriptions: what is solved, separate from how."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp


__all__ = ["ODE", "SDE", "Split", "UnderdampedLangevin", "split_parts", "NOISE_TYPES", "CALCULI", "contract", "sum_channel_jvps", "stratonovich_drift", "time_reversed", "as_written"]


def __dir__():
    # Only the public names (not the modules this one imports).
    return __all__


class ODE(eqx.Module):
    r"""An ordinary differential equation $\mathrm{d}y/\mathrm{d}t = f(t, y, \text{args})$.

    Args:
        vector_field: any callable `f(t, y, args)` returning a pytree with the structure, shapes
            and dtypes of `y`: a plain function or an equinox module (whose arrays are then
            traced parameters: new values do not recompile and can be differentiated).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> ode = sk.ODE(lambda t, y, args: {"x": y["v"], "v": -y["x"]})
        >>> sol = sk.solve(ode, sk.solvers.tsit5(), 0.0, 3.14159265, {"x": jnp.array(1.0),
        ...                "v": jnp.array(0.0)}, dt0=0.01)
        >>> round(float(sol.ys["x"][-1]), 4)
        -1.0
    """

    vector_field: Callable


class Split(eqx.Module):
    r"""A vector field split into a non-stiff and a stiff part, $f = f_E + f_I$, for IMEX solvers.

    `sk.ODE(sk.Split(explicit, implicit))` is an ordinary `sk.ODE` whose vector field is the sum,
    so every solver, adjoint and check works on it unchanged; IMEX methods such as
    `sk.solvers.kencarp4()` treat `explicit` explicitly and only `implicit` by Newton's method
    (its Jacobian alone is formed). Both parts have the signature `f(t, y, args)` and return a
    pytree like `y`.

    Args:
        explicit: the non-stiff part $f_E(t, y, \text{args})$ (e.g. slow reactions, advection).
        implicit: the stiff part $f_I(t, y, \text{args})$ (e.g. fast relaxation, diffusion).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> field = sk.Split(lambda t, y, a: jnp.cos(t) * jnp.ones_like(y), lambda t, y, a: -1000.0 * y)
        >>> sol = sk.solve(sk.ODE(field), sk.solvers.kencarp4(), 0.0, 1.0, jnp.zeros(2),
        ...                controller=sk.PID(rtol=1e-5, atol=1e-9))
        >>> [round(float(v), 6) for v in sol.ys[-1]]  # y ~ cos(t) / 1000
        [0.000541, 0.000541]
    """

    explicit: Callable
    implicit: Callable

    def __call__(self, t, y, args):
        return jax.tree.map(lambda a, b: a + b, self.explicit(t, y, args), self.implicit(t, y, args))


def split_parts(problem: ODE):
    r"""`(explicit, implicit, direction)` of an ODE as a solver's `step` sees it.

    For `sk.ODE(sk.Split(f_E, f_I))` the two parts (in the solve's time variable $\tau = \pm t$
    when integrating backwards); for any other ODE `explicit` is `None` and `implicit` is the
    whole vector field. `direction` is the $\pm 1$ of a time-reversed solve, or `None`.
    """
    field = problem.vector_field
    direction = None
    if isinstance(field, _TimeReversed):
        direction, field = field.direction, field.vector_field
    if not isinstance(field, Split):
        return None, problem.vector_field, direction
    if direction is None:
        return field.explicit, field.implicit, None
    return _TimeReversed(field.explicit, direction), _TimeReversed(field.implicit, direction), direction


NOISE_TYPES = ("additive", "scalar", "diagonal", "commutative", "general")
CALCULI = ("ito", "stratonovich")


class SDE(eqx.Module):
    r"""A stochastic differential equation $dy = f(t, y)\,dt + g(t, y)\,dW_t$.

    The product $g\,dW$ is fixed by shapes, leaf by leaf of the state $y$:

    - `"diagonal"`: $W$ has the structure of $y$; $g(t, y)$ has it too; the product is
      elementwise (each component driven by its own Brownian motion).
    - `"scalar"`: $W$ is a scalar ($m = 1$); $g$ has the structure of $y$.
    - `"commutative"` / `"general"`: $W$ is one array of shape `(m,)`; each leaf of $g$ has shape
      `(*leaf.shape, m)` and is contracted with $W$. Commutative noise means
      $\sum_k g_{kj}\,\partial_k g_{il} = \sum_k g_{kl}\,\partial_k g_{ij}$ (not checked).
    - `"additive"`: $g$ does not depend on $y$ (either form above).

    Args:
        drift: $f(t, y, \text{args})$, with the structure, shapes and dtypes of $y$.
        diffusion: $g(t, y, \text{args})$, shaped as above.
        noise: one of `"additive"`, `"scalar"`, `"diagonal"`, `"commutative"`, `"general"`;
            solvers declare which they support, and `sk.solve` refuses a mismatch.
        calculus: `"ito"` or `"stratonovich"` (for additive noise the two coincide).

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> gbm = sk.SDE(lambda t, y, a: 0.05 * y, lambda t, y, a: 0.2 * y, noise="diagonal")
        >>> gbm.noise_term(0.0, jnp.ones(2), None, jnp.array([0.1, -0.1]))
        Array([ 0.02, -0.02], dtype=float32)
    """

    drift: Callable
    diffusion: Callable
    noise: str = eqx.field(static=True, default="diagonal")
    calculus: str = eqx.field(static=True, default="ito")

    def __check_init__(self):
        if self.noise not in NOISE_TYPES:
            raise ValueError(f"SDE: noise must be one of {NOISE_TYPES}, got {self.noise!r}.")
        if self.calculus not in CALCULI:
            raise ValueError(f"SDE: calculus must be one of {CALCULI}, got {self.calculus!r}.")

    def noise_term(self, t, y, args, dW):
        r"""$g(t, y)\,dW$ (or $g\,H$ etc.: any Brownian quantity with the structure of $W$)."""
        return contract(self.diffusion(t, y, args), dW, y)

    @property
    def vector_field(self):
        raise TypeError("An SDE has no single vector field: use an SDE solver (e.g. sk.solvers.euler_maruyama()).")


class UnderdampedLangevin(SDE):
    r"""The underdamped (kinetic) Langevin diffusion with potential $f$:

    $$dx = v\,dt,\qquad dv = -\gamma v\,dt - u\,\nabla f(x)\,dt + \sqrt{2\gamma u}\,dW_t,$$

    whose stationary law has density $\propto e^{-f(x) - |v|^2/(2u)}$: the position's marginal is
    the target $\propto e^{-f}$. The state is the pair `(x, v)` (each any pytree of arrays, of one
    structure); the Brownian motion $W$ has the structure and shapes of `x` (build the tree with
    `shape=x.shape`, or a pytree of `jax.ShapeDtypeStruct` like `x`).

    It is an additive-noise `sk.SDE`, so every additive-noise solver (`shark()`, `sra1()`, ...)
    solves it as it is (for an array `x`: its diffusion is then a dense $d \times d$ block, fine for
    comparisons); the Langevin methods `sk.solvers.align()`, `should()` and `quicsort()` use its
    structure (exact Ornstein--Uhlenbeck parts, one or two gradients a step) and solve only it.

    Args:
        grad_f: $\nabla f(x, \text{args})$, returning a pytree like `x`.
        gamma: the friction $\gamma > 0$: a scalar, an array broadcastable to each leaf of `x`,
            or a pytree like `x` of such arrays.
        u: the inverse mass $u > 0$, as `gamma`.

    Examples:
        >>> import jax, jax.numpy as jnp, sdekit as sk
        >>> uld = sk.UnderdampedLangevin(lambda x, args: x, gamma=2.0, u=1.0)  # f = |x|^2 / 2
        >>> tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(3,), tol=2**-8,
        ...                        levy="space-time-time")
        >>> sol = sk.solve(uld, sk.solvers.quicsort(), 0.0, 1.0, (jnp.ones(3), jnp.zeros(3)),
        ...                dt0=0.1, brownian=tree)
        >>> sol.ys[0].shape, sol.ys[1].shape
        ((1, 3), (1, 3))
    """

    def __init__(self, grad_f: Callable, gamma=1.0, u=1.0):
        self.drift = _LangevinDrift(grad_f, _as_array(gamma), _as_array(u))
        self.diffusion = _LangevinDiffusion(self.drift.gamma, self.drift.u)
        self.noise = "additive"
        self.calculus = "ito"

    @property
    def grad_f(self) -> Callable:
        return self.drift.grad_f

    @property
    def gamma(self):
        return self.drift.gamma

    @property
    def u(self):
        return self.drift.u

    def with_grad_f(self, grad_f: Callable) -> "UnderdampedLangevin":
        """The same diffusion with another gradient function (e.g. closure-converted)."""
        return UnderdampedLangevin(grad_f, self.gamma, self.u)

    def parameters(self, x):
        r"""`(gamma, u)` as pytrees like `x`, each leaf broadcast to its leaf's shape and dtype.

        Raises:
            ValueError: if `gamma` or `u` is neither broadcastable to every leaf of `x` nor a
                pytree like `x` of broadcastable arrays.
        """
        return _per_leaf(self.gamma, x, "gamma"), _per_leaf(self.u, x, "u")


def _as_array(p):
    return jax.tree.map(lambda a: a if isinstance(a, jax.Array) else jnp.asarray(a), p)


def _per_leaf(param, x, name):
    x_leaves, treedef = jax.tree.flatten(x)
    if jax.tree.structure(param) == treedef:
        p_leaves = jax.tree.leaves(param)
    elif len(jax.tree.leaves(param)) == 1:
        p_leaves = jax.tree.leaves(param) * len(x_leaves)
    else:
        raise ValueError(f"sk.UnderdampedLangevin: {name} must be a scalar, an array or a pytree like x.")
    out = []
    for p, leaf in zip(p_leaves, x_leaves):
        p, leaf = jnp.asarray(p), jnp.asarray(leaf)
        try:
            ok = jnp.broadcast_shapes(p.shape, leaf.shape) == leaf.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"sk.UnderdampedLangevin: {name} of shape {p.shape} does not broadcast to the position's "
                f"shape {leaf.shape}."
            )
        out.append(jnp.broadcast_to(p.astype(leaf.dtype), leaf.shape))
    return jax.tree.unflatten(treedef, out)


def _position(y):
    if not (isinstance(y, (tuple, list)) and len(y) == 2):
        raise ValueError(
            "sk.UnderdampedLangevin: the state must be the pair (x, v) of position and velocity, "
            f"got {type(y).__name__}."
        )
    return y[0], y[1]


class _LangevinDrift(eqx.Module):
    grad_f: Callable
    gamma: object
    u: object

    def __call__(self, t, y, args):
        x, v = _position(y)
        gamma, u = _per_leaf(self.gamma, x, "gamma"), _per_leaf(self.u, x, "u")
        grad = self.grad_f(x, args)
        dv = jax.tree.map(lambda vi, gi, ui, fi: -gi * vi - ui * fi, v, gamma, u, grad)
        return (v, dv)


class _LangevinDiffusion(eqx.Module):
    r"""$g$ in the single-array form of `SDE` (W shaped like x): zero rows for x, the diagonal
    $\sqrt{2\gamma u}$ for v, as dense `(*x.shape, *x.shape)` blocks."""

    gamma: object
    u: object

    def __call__(self, t, y, args):
        x, _ = _position(y)
        if not isinstance(x, jax.Array) and not hasattr(x, "shape"):
            raise ValueError(
                "A general SDE solver needs the position x of sk.UnderdampedLangevin to be a single array (its "
                "Brownian motion is then one array shaped like x); the Langevin solvers align(), should() and "
                "quicsort() accept any pytree."
            )
        x = jnp.asarray(x)
        gamma, u = _per_leaf(self.gamma, x, "gamma"), _per_leaf(self.u, x, "u")
        rho = jnp.sqrt(2 * gamma * u)
        n = x.size
        eye = jnp.eye(n, dtype=x.dtype).reshape(x.shape + x.shape)
        g_v = eye * rho.reshape(x.shape + (1,) * x.ndim)
        return (jnp.zeros_like(g_v), g_v)


def contract(g, w, y):
    r"""The product $g\,w$ with the shape rules of `SDE`, leaf by leaf of `y`: `w` is either a
    pytree with the structure of `y` (one Brownian leaf per state leaf) or a single array shared
    by all leaves. Per leaf: a scalar `w` multiplies; `g` of shape `y.shape + w.shape` is
    contracted over `w`'s axes; `g`, `y` and `w` of one shape multiply elementwise."""
    g_leaves, treedef = jax.tree.flatten(g)
    y_leaves = jax.tree.leaves(y)
    if jax.tree.structure(w) == jax.tree.structure(y):
        w_leaves = jax.tree.leaves(w)
    else:
        single = jax.tree.leaves(w)
        if len(single) != 1:
            raise ValueError("The Brownian motion must have the structure of the state, or be a single array.")
        w_leaves = single * len(y_leaves)
    if len(g_leaves) != len(y_leaves):
        raise ValueError("The diffusion's output must have the structure of the state (one leaf per state leaf).")
    return jax.tree.unflatten(treedef, [_contract_leaf(gi, wi, yi) for gi, wi, yi in zip(g_leaves, w_leaves, y_leaves)])


def sum_channel_jvps(diffusion, y, g, output=None):
    r"""A sum over the $m$ noise channels (the last axis of each leaf of `g`) of one jvp each:
    the derivative of $z \mapsto \text{output}(g(z), j, z)$ at `y` along the channel's column
    $g_{\cdot j}(y)$, vmapped over the channels (no Jacobian is formed) and summed.

    For solvers and drift conversions of `"commutative"` and `"general"` noise. `diffusion` is
    $z \mapsto g(t, z, \text{args})$ and `g` its value at `y`. The default `output` is the column
    $j$ itself, for $\sum_j (\partial g_{\cdot j})\, g_{\cdot j}$; with iterated integrals $c$,
    `lambda gz, j, z: contract(gz, c[j], z)` gives $\sum_{j,k} (\partial g_{\cdot k})[g_{\cdot j}]\, c_{jk}$.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> g = lambda z: jnp.stack([z, 2 * z], -1)  # g_{.j} = (j + 1) z
        >>> y = jnp.array([1.0, 3.0])
        >>> sk.terms.sum_channel_jvps(g, y, g(y))  # (1 * 1 + 2 * 2) y
        Array([ 5., 15.], dtype=float32)
    """
    m = jax.tree.leaves(g)[0].shape[-1]
    if output is None:
        output = lambda gz, j, z: _column(gz, j)  # noqa: E731

    def channel(j):
        return jax.jvp(lambda z: output(diffusion(z), j, z), (y,), (_column(g, j),))[1]

    return jax.tree.map(lambda x: jnp.sum(x, axis=0), jax.vmap(channel)(jnp.arange(m)))


def _column(g, j):
    """Noise channel `j` of `g`: the index `j` on the last axis of every leaf."""
    return jax.tree.map(lambda x: x[..., j], g)


def _contract_leaf(g, w, y):
    w = w.astype(g.dtype)
    if g.shape == y.shape + w.shape and w.ndim > 0:
        return _matvec(g, w) if w.ndim == 1 else jnp.tensordot(g, w, axes=w.ndim)
    if w.ndim == 0 and g.shape == y.shape:
        return g * w
    if g.shape == y.shape == w.shape:
        return g * w
    raise ValueError(
        f"A diffusion output of shape {g.shape} cannot multiply a Brownian increment of shape {w.shape} "
        f"for a state leaf of shape {y.shape}: expected {y.shape + w.shape} (general/commutative noise), "
        f"or {y.shape} with an increment of the same shape (diagonal) or a scalar increment."
    )


def _matvec(g, w):
    # An unrolled weighted sum over the (usually few) noise channels fuses better than a dot.
    if w.shape[0] <= 8:
        total = g[..., 0] * w[0]
        for j in range(1, w.shape[0]):
            total = total + g[..., j] * w[j]
        return total
    return g @ w


def stratonovich_drift(sde: SDE) -> SDE:
    r"""The same SDE in the other calculus: Itô -> Stratonovich subtracts, Stratonovich -> Itô
    adds, the correction $\tfrac12 \sum_j (\partial g_{\cdot j})\, g_{\cdot j}$ (a jvp per
    noise channel; for diagonal and scalar noise a single jvp).

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> gbm = sk.SDE(lambda t, y, a: 0.05 * y, lambda t, y, a: 0.2 * y, noise="diagonal")
        >>> strat = sk.terms.stratonovich_drift(gbm)
        >>> strat.calculus, round(float(strat.drift(0.0, jnp.array(1.0), None)), 6)  # 0.05 - 0.2**2 / 2
        ('stratonovich', 0.03)
    """
    if sde.noise == "additive":
        return SDE(sde.drift, sde.diffusion, noise=sde.noise, calculus=_other(sde.calculus))
    sign = -1.0 if sde.calculus == "ito" else 1.0
    return SDE(_CorrectedDrift(sde.drift, sde.diffusion, sde.noise, sign), sde.diffusion, noise=sde.noise,
               calculus=_other(sde.calculus))


def _other(calculus: str) -> str:
    return "stratonovich" if calculus == "ito" else "ito"


class _CorrectedDrift(eqx.Module):
    drift: Callable
    diffusion: Callable
    noise: str = eqx.field(static=True)
    sign: float = eqx.field(static=True)

    def __call__(self, t, y, args):
        g = self.diffusion(t, y, args)
        if self.noise in ("diagonal", "scalar"):
            _, dg_g = jax.jvp(lambda z: self.diffusion(t, z, args), (y,), (g,))
        else:
            dg_g = sum_channel_jvps(lambda z: self.diffusion(t, z, args), y, g)
        return jax.tree.map(lambda f, c: f + (0.5 * self.sign) * c, self.drift(t, y, args), dg_g)


class _TimeReversed(eqx.Module):
    r"""$\tilde f(\tau, y) = s f(s\tau, y)$ with $s = \pm 1$: integrates in $\tau = s t$ so that
    the loop always steps forwards."""

    vector_field: Callable
    direction: object

    def __call__(self, tau, y, args):
        d = self.direction
        out = self.vector_field(d * tau, y, args)
        return _scale_tree(out, d)


def _scale_tree(tree, scalar):
    return jax.tree.map(lambda x: x * scalar.astype(x.dtype), tree)


def time_reversed(problem: ODE, direction) -> ODE:
    r"""The problem in the time variable $\tau = \text{direction} \cdot t$."""
    return ODE(_TimeReversed(problem.vector_field, direction))


def as_written(problem, tau):
    r"""The problem and time as the user wrote them, from what a solver's step receives.

    `sk.solve` integrates an ODE in $\tau = \pm t$ so that its loop always steps forwards: a
    solver's `step` sees `time_reversed(problem, direction)` and $\tau$. Most methods need
    nothing more; a method built on the problem's own structure (a diffusion sampler reading
    its model) recovers the original problem and $t$ with this. Other problems come back as
    they are.

    Examples:
        >>> import jax.numpy as jnp, sdekit as sk
        >>> ode = sk.ODE(lambda t, y, a: -y)
        >>> back = sk.terms.time_reversed(ode, jnp.array(-1.0))
        >>> original, t = sk.terms.as_written(back, jnp.array(-0.25))
        >>> original.vector_field is ode.vector_field, float(t)
        (True, 0.25)
    """
    field = getattr(problem, "vector_field", None)
    if isinstance(field, _TimeReversed):
        return ODE(field.vector_field), field.direction * tau
    return problem, tau
