r"""Stochastic Runge--Kutta (SRK) engine: one stepping routine for every stochastic tableau.

A Stratonovich SDE $dy = f(t, y)\,dt + g(t, y) \circ dW_t$ is stepped over $[t_0, t_0 + h]$
with the Brownian increment $W$, its space-time Lévy area $H$ and, optionally, its
space-time-time Lévy area $K$ (normalised: $H \sim N(0, h/12)$, $K \sim N(0, h/720)$; see
`sdekit.brownian.Increment`).

**General form** (any noise). Stage values and the solution are

$$z_j = y_0 + h \sum_{i<j} a_{ji} f_i + \sum_{i<j} \big(a^W_{ji}\, g_i W + a^H_{ji}\, g_i H
+ a^K_{ji}\, g_i K\big),$$
$$y_1 = y_0 + h \sum_j b_j f_j + \sum_j \big(b^W_j\, g_j W + b^H_j\, g_j H + b^K_j\, g_j K\big),$$

with $f_j = f(t_0 + c_j h, z_j)$, $g_j = g(t_0 + c_j h, z_j)$ and $g_j W$ the product of the
SDE's noise-shape rules (`sdekit.terms.contract`). The error estimate is the same sum with the
weights $e, e^W, e^H, e^K$ (given directly: the estimate is not the difference of two solutions
formed here).

**Additive form** ($g = g(t)$). The diffusion is evaluated only at $t_0$ and $t_1$; each stage
gets the scalar weights $a^W_j, a^H_j, a^K_j$ of $g(t_0)$:

$$z_j = y_0 + h \sum_{i<j} a_{ji} f_i + g(t_0)\big(a^W_j W + a^H_j H + a^K_j K\big),$$
$$y_1 = y_0 + h \sum_j b_j f_j + g(t_0)\big(b^W W + b^H H + b^K K\big)
+ \big(g(t_1) - g(t_0)\big)\big(\tfrac12 W - H\big),$$

where the last term is $\int g\,dW$ beyond $g(t_0) W$ for $g$ linear in $t$
($\int_{t_0}^{t_1} (s - t_0)\,dW_s = h(W/2 - H)$); without $H$ in the tableau it is the
trapezoidal $\tfrac12 (g(t_1) - g(t_0)) W$. Only the drift enters the error estimate.

Stages whose drift or diffusion value no coefficient uses are not evaluated, so a tableau may
carry drift-only or diffusion-only stages (SLOW-RK, GeneralShARK) without flags.

This is the framework of Foster's SRKs as used by diffrax (`AbstractSRK`,
`StochasticButcherTableau`); the code here is independent.
"""

from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..terms import contract
from ._base import EmptyState, LinearDense, SDEFacts, Solver, linear_interpolate

Coeff = Fraction | float

_FIELDS = ("W", "H", "K")


class AdditiveNoiseCoeffs(NamedTuple):
    """Weights of one Brownian quantity (W, H or K) in an additive-noise SRK.

    Attributes:
        a: one weight per stage: stage $j$ adds $a_j\\, g(t_0)\\,X$.
        b: the weight of $g(t_0)\\,X$ in the solution.
    """

    a: tuple[Coeff, ...]
    b: Coeff


class GeneralNoiseCoeffs(NamedTuple):
    """Weights of one Brownian quantity (W, H or K) in a general-noise SRK.

    Attributes:
        a: strictly lower triangle by rows: `a[i]` holds the `i + 1` weights of stage `i + 1`.
        b: solution weights, one per stage.
        e: error-estimate weights, one per stage, or `None`.
    """

    a: tuple[tuple[Coeff, ...], ...]
    b: tuple[Coeff, ...]
    e: tuple[Coeff, ...] | None = None


class StochasticTableau(NamedTuple):
    """A stochastic Butcher tableau (drift part plus one coefficient set per Brownian quantity).

    Attributes:
        c: nodes, one per stage, `c[0] == 0`.
        a: drift strictly lower triangle by rows (`a[i]` has `i + 1` entries, for stage `i + 1`).
        b: drift solution weights, one per stage (summing to 1).
        e: drift error weights (the estimate itself, not $b - \\hat b$), or `None`.
        w: weights of the increment $W$.
        h: weights of the space-time Lévy area $H$, or `None`.
        k: weights of the space-time-time Lévy area $K$, or `None` (needs `h`).
    """

    c: tuple[Coeff, ...]
    a: tuple[tuple[Coeff, ...], ...]
    b: tuple[Coeff, ...]
    e: tuple[Coeff, ...] | None
    w: AdditiveNoiseCoeffs | GeneralNoiseCoeffs
    h: AdditiveNoiseCoeffs | GeneralNoiseCoeffs | None = None
    k: AdditiveNoiseCoeffs | GeneralNoiseCoeffs | None = None

    @property
    def num_stages(self) -> int:
        return len(self.c)

    @property
    def additive(self) -> bool:
        """Whether the tableau is in the additive-noise form."""
        return isinstance(self.w, AdditiveNoiseCoeffs)

    @property
    def levy_area(self) -> str:
        """The least Brownian information the tableau needs."""
        return "space-time-time" if self.k is not None else "space-time" if self.h is not None else "increment"

    @property
    def noise_coeffs(self) -> tuple:
        """`(field name, coefficients)` for each Brownian quantity used."""
        return tuple((n, cs) for n, cs in zip(_FIELDS, (self.w, self.h, self.k)) if cs is not None)

    def drift_used(self) -> tuple[bool, ...]:
        """Per stage: whether any coefficient uses its drift value."""
        s = self.num_stages
        return tuple(
            self.b[j] != 0
            or (self.e is not None and self.e[j] != 0)
            or any(self.a[i - 1][j] != 0 for i in range(j + 1, s))
            for j in range(s)
        )

    def diffusion_used(self) -> tuple[bool, ...]:
        """Per stage: whether any coefficient uses its diffusion value (general form only)."""
        s = self.num_stages
        if self.additive:
            return (False,) * s
        used = [False] * s
        for _, cs in self.noise_coeffs:
            for j in range(s):
                used[j] = (
                    used[j]
                    or cs.b[j] != 0
                    or (cs.e is not None and cs.e[j] != 0)
                    or any(cs.a[i - 1][j] != 0 for i in range(j + 1, s))
                )
        return tuple(used)

    def evaluations(self) -> tuple[int, int]:
        """`(drift, diffusion)` evaluations per step (additive form: diffusion at $t_0$, $t_1$)."""
        g = 2 if self.additive else sum(self.diffusion_used())
        return sum(self.drift_used()), g

    def check(self) -> None:
        """Raise `ValueError` if the shapes are inconsistent or the drift weights do not sum to 1."""
        s = self.num_stages
        problems = []
        if s < 1 or self.c[0] != 0:
            problems.append("c must be non-empty with c[0] == 0")
        if len(self.a) != s - 1 or any(len(row) != i + 1 for i, row in enumerate(self.a)):
            problems.append("a must have rows of lengths 1, ..., s - 1")
        if len(self.b) != s or (self.e is not None and len(self.e) != s):
            problems.append("b and e must have one weight per stage")
        if abs(float(sum(self.b)) - 1.0) > 1e-12:
            problems.append(f"drift weights b sum to {float(sum(self.b))}, not 1")
        if self.k is not None and self.h is None:
            problems.append("K weights need H weights")
        kind = type(self.w)
        for name, cs in self.noise_coeffs:
            if type(cs) is not kind:
                problems.append(f"{name} weights must be of the same form as the W weights")
            elif self.additive and len(cs.a) != s:
                problems.append(f"additive {name} weights need one a per stage")
            elif not self.additive and (
                len(cs.a) != s - 1 or any(len(row) != i + 1 for i, row in enumerate(cs.a)) or len(cs.b) != s
                or (cs.e is not None and len(cs.e) != s)
            ):
                problems.append(f"general {name} weights must have a lower triangle and one b per stage")
        if problems:
            raise ValueError("Invalid stochastic tableau: " + "; ".join(problems) + ".")


def _lincomb(weights, trees):
    """$\\sum_i w_i x_i$ over the non-zero static weights (no work for zero or unit weights);
    `None` when every weight is zero."""
    total = None
    for w, x in zip(weights, trees):
        if w == 0:
            continue
        term = x if w == 1 else jax.tree.map(lambda leaf, w=float(w): leaf * jnp.asarray(w, leaf.dtype), x)
        total = term if total is None else jax.tree.map(jnp.add, total, term)
    return total


def _add(*trees):
    """Sum of pytrees in the dtypes of the first present one (the state, for stages and
    solutions), skipping `None`s; `None` when all are `None`."""
    present = [t for t in trees if t is not None]
    if not present:
        return None
    out = present[0]
    for t in present[1:]:
        out = jax.tree.map(lambda a, b: a + b.astype(a.dtype), out, t)
    return out


def levy_quantity(inc, field: str, levy_area: str, name: str):
    """`inc.W`, `inc.H` or `inc.K` (`field`), or a `ValueError` naming the tree's `levy_area`
    that provides it when the increment lacks it."""
    x = getattr(inc, field)
    if x is None:
        raise ValueError(
            f"{name} needs the {'space-time' if field == 'H' else 'space-time-time'} Lévy area {field} "
            f"of each Brownian increment, but the increment has {field}=None: build the Brownian tree "
            f"with levy={levy_area!r} (e.g. sk.BrownianTree(key, t0, t1, shape=..., tol=..., "
            f"levy={levy_area!r}))."
        )
    return x


def _levy(inc, tableau: StochasticTableau, name: str) -> tuple:
    """The Brownian quantities the tableau uses, in the order of `tableau.noise_coeffs`."""
    return tuple(levy_quantity(inc, field, tableau.levy_area, name) for field, _ in tableau.noise_coeffs)


def _scaled(h, tree):
    return jax.tree.map(lambda x: h.astype(x.dtype) * x, tree)


def _stages(tableau, problem, t0, h, y0, args, levy, noise_at_stage):
    """Evaluate the stages that some coefficient uses.

    `noise_at_stage(j, gx)` is stage j's diffusion contribution given the products so far.
    Returns `hfs` ($h f_j$, or `None` if unused) and `gx` (`[g_j W, g_j H, ...]`, or `None`;
    general form only).
    """
    f_used, g_used = tableau.drift_used(), tableau.diffusion_used()
    hfs, gx = [], []
    for j in range(tableau.num_stages):
        hf_j = gx_j = None
        if f_used[j] or g_used[j]:
            z = _add(y0, _lincomb(tableau.a[j - 1], hfs) if j else None, noise_at_stage(j, gx))
            tj = t0 + float(tableau.c[j]) * h
            if f_used[j]:
                hf_j = _scaled(h, problem.drift(tj, z, args))
            if g_used[j]:
                g = problem.diffusion(tj, z, args)
                gx_j = [contract(g, x, z) for x in levy]
        hfs.append(hf_j)
        gx.append(gx_j)
    return hfs, gx


def _step_additive(tableau, name, problem, t0, t1, y0, args, inc):
    h = inc.dt
    levy = _levy(inc, tableau, name)
    coeffs = [cs for _, cs in tableau.noise_coeffs]
    g0 = problem.diffusion(t0, y0, args)
    g1 = problem.diffusion(t1, y0, args)
    g0x = [contract(g0, x, y0) for x in levy]  # g(t0) W, g(t0) H, ...

    def noise_at_stage(j, _):
        return _lincomb([cs.a[j] for cs in coeffs], g0x)

    hfs, _ = _stages(tableau, problem, t0, h, y0, args, levy, noise_at_stage)
    # The part of ∫ g dW beyond g(t0) W, exact for g linear in t: (g1 - g0)(W/2 - H).
    dg = jax.tree.map(jnp.subtract, g1, g0)
    if tableau.h is not None:
        shift = jax.tree.map(lambda w, hh: 0.5 * w - hh, inc.W, inc.H)
    else:
        shift = jax.tree.map(lambda w: 0.5 * w, inc.W)
    y1 = _add(y0, _lincomb(tableau.b, hfs), _lincomb([cs.b for cs in coeffs], g0x), contract(dg, shift, y0))
    y_error = None if tableau.e is None else _lincomb(tableau.e, hfs)
    return y1, y_error


def _weighted_noise(coeffs, weights_of, gx):
    """$\\sum_q \\sum_j w^q_j\\, g_j X_q$ over the Brownian quantities $X_q$ (W, H, K)."""
    return _add(*(
        _lincomb(weights_of(cs), [None if p is None else p[q] for p in gx]) for q, cs in enumerate(coeffs)
    ))


def _step_general(tableau, name, problem, t0, t1, y0, args, inc):
    h = inc.dt
    levy = _levy(inc, tableau, name)
    coeffs = [cs for _, cs in tableau.noise_coeffs]

    def noise_at_stage(j, gx):
        return None if j == 0 else _weighted_noise(coeffs, lambda cs: cs.a[j - 1], gx)

    hfs, gx = _stages(tableau, problem, t0, h, y0, args, levy, noise_at_stage)
    y1 = _add(y0, _lincomb(tableau.b, hfs), _weighted_noise(coeffs, lambda cs: cs.b, gx))
    y_error = None
    if tableau.e is not None:
        y_error = _add(_lincomb(tableau.e, hfs), _weighted_noise(coeffs, lambda cs: cs.e, gx))
    return y1, y_error


def srk_step(tableau: StochasticTableau, name: str, problem, t0, t1, y0, args, inc):
    """One step of the SRK given by `tableau`; returns `(y1, y_error)` (`y_error` is `None`
    without error weights).

    Raises:
        ValueError: if `inc` lacks a Lévy area the tableau uses.
    """
    if inc is None:
        raise ValueError(f"{name} is an SDE solver: it needs a Brownian increment, got inc=None.")
    # Stage times in the wider of the given time and the increment's dtypes (strict promotion).
    tdtype = jnp.promote_types(jnp.asarray(t0).dtype, jnp.asarray(inc.dt).dtype)
    t0 = jnp.asarray(t0, tdtype)
    t1 = jnp.asarray(t1, tdtype)
    inc = inc._replace(dt=jnp.asarray(inc.dt, tdtype))
    step = _step_additive if tableau.additive else _step_general
    y1, y_error = step(tableau, name, problem, t0, t1, y0, args, inc)
    if tableau.e is not None and y_error is None:  # all error weights zero
        y_error = jax.tree.map(jnp.zeros_like, y0)
    return y1, y_error


def check_additive(name: str, problem, t0, y0, args) -> None:
    """Raise `ValueError` if the diffusion depends on the state (traced once, nothing is computed).

    An additive-noise tableau evaluates $g$ at $y_0$ only, which is wrong for any other noise.
    """
    import equinox as eqx

    ones = jax.tree.map(jnp.ones_like, y0)
    _, tangent = eqx.filter_jvp(lambda y: problem.diffusion(t0, y, args), (y0,), (ones,))
    if jax.tree.leaves(tangent):
        raise ValueError(
            f"{name} is for additive noise (g(t, y) = g(t)), but the SDE's diffusion depends on y: use a "
            "general-noise solver (spark, general_shark, slow_rk)."
        )


def _init_general(problem, t0, y0, args):
    return EmptyState()


def make_srk_solver(
    name: str,
    tableau: StochasticTableau,
    *,
    strong_order: tuple,
    weak_order: tuple,
    error_order: tuple = (),
) -> Solver:
    """A `Solver` stepping with `tableau` (Stratonovich; linear dense output).

    Args:
        name: the method's name.
        tableau: its `StochasticTableau` (checked).
        strong_order, weak_order, error_order: `(noise type, order)` pairs for `SDEFacts`;
            `error_order` is the order $q$ with $|y_{\\text{error}}| = O(h^q)$ per step.

    Returns:
        A `Solver` whose `step` raises `ValueError` on an increment without the Lévy area needed.
    """
    tableau.check()
    n_f, _ = tableau.evaluations()
    has_error = tableau.e is not None
    init = _AdditiveInit(name) if tableau.additive else _init_general
    return Solver(
        name=name,
        init=init,
        step=_SRKStep(tableau, name),
        interpolate=linear_interpolate,
        order=None,
        embedded_order=1 if has_error else None,
        interpolation_order=1,
        fevals_per_step=n_f,
        sde=SDEFacts(
            calculus="stratonovich",
            strong_order=strong_order,
            weak_order=weak_order,
            levy_area=tableau.levy_area,
            error_order=error_order if has_error else (),
        ),
    )


class _SRKStep(NamedTuple):
    """`step` for a tableau: a hashable, comparable callable (equal tableaus give equal steps)."""

    tableau: StochasticTableau
    name: str

    def __call__(self, problem, t0, t1, y0, args, inc, state):
        y1, y_error = srk_step(self.tableau, self.name, problem, t0, t1, y0, args, inc)
        return y1, y_error, LinearDense(y0, y1), state


class _AdditiveInit(NamedTuple):
    """`init` for an additive-noise tableau: checks that the diffusion ignores y."""

    name: str

    def __call__(self, problem, t0, y0, args):
        check_additive(self.name, problem, t0, y0, args)
        return EmptyState()
