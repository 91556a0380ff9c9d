r"""Shared parts of the underdamped Langevin methods (ALIGN, ShOULD, QUICSORT).

The methods integrate the Ornstein--Uhlenbeck part of

$$dx = v\,dt,\qquad dv = -\gamma v\,dt - u\,\nabla f(x)\,dt + \rho\,dW_t,\qquad \rho = \sqrt{2\gamma u}$$

exactly and the gradient by quadrature, so their coefficients are functions of
$\alpha = \gamma h$. With $\beta_c = e^{-c\alpha}$ they are built from

$$\varphi_1(\alpha) = \frac{1 - e^{-\alpha}}{\alpha},\quad
\varphi_2(\alpha) = \frac{e^{-\alpha} + \alpha - 1}{\alpha^2},\quad
\psi_H(\alpha) = \frac{6\,(e^{-\alpha}(\alpha + 2) + \alpha - 2)}{\alpha^3},\quad
\psi_K(\alpha) = \frac{60\,(e^{-\alpha}(\alpha^2 + 6\alpha + 12) - \alpha^2 + 6\alpha - 12)}{\alpha^4},$$

which tend to $1, \tfrac12, 1, 0$ as $\alpha \to 0$. Below $\alpha = 1$ they are summed from their
Taylor series (exact rational coefficients, 16 terms: truncation below $10^{-17}$), above it
computed directly, so no cancellation spoils them in float32 and $\gamma = 0$ is allowed. The
series: $\varphi_1 = \sum_n (-\alpha)^n/(n+1)!$, $\varphi_2 = \sum_n (-\alpha)^n/(n+2)!$,
$\psi_H = 6\sum_{k\ge3} (-1)^k (2-k)\,\alpha^{k-3}/k!$,
$\psi_K = 60\sum_{k\ge5} (-1)^k (k-3)(k-4)\,\alpha^{k-4}/k!$ (from $\alpha^1$).

The Brownian quantities are the tree's normalised $W$, $H$, $K$ (`sk.Increment`).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..terms import UnderdampedLangevin
from ._base import EmptyState, LinearDense, SDEFacts, Solver, linear_interpolate

_TERMS = 16
_SERIES_BELOW = 1.0

_PHI1 = tuple((-1) ** n / math.factorial(n + 1) for n in range(_TERMS))
_PHI2 = tuple((-1) ** n / math.factorial(n + 2) for n in range(_TERMS))
_PSI_H = tuple(6 * (-1) ** k * (2 - k) / math.factorial(k) for k in range(3, 3 + _TERMS))
_PSI_K = (0.0,) + tuple(60 * (-1) ** k * (k - 3) * (k - 4) / math.factorial(k) for k in range(5, 4 + _TERMS))  # from alpha^1


def _horner(coeffs, a):
    out = jnp.full_like(a, coeffs[-1])
    for c in coeffs[-2::-1]:
        out = out * a + c
    return out


def _stable(series, direct: Callable):
    def fn(alpha):
        small = alpha < _SERIES_BELOW
        safe = jnp.where(small, jnp.ones_like(alpha), alpha)  # finite values and gradients in both branches
        return jnp.where(small, _horner(series, alpha), direct(safe))

    return fn


phi1 = _stable(_PHI1, lambda a: -jnp.expm1(-a) / a)
phi2 = _stable(_PHI2, lambda a: (jnp.expm1(-a) + a) / a**2)
psi_h = _stable(_PSI_H, lambda a: 6 * (jnp.exp(-a) * (a + 2) + a - 2) / a**3)
psi_k = _stable(_PSI_K, lambda a: 60 * (jnp.exp(-a) * (a * (a + 6) + 12) - a * (a - 6) - 12) / a**4)


class LangevinFSALState(NamedTuple):
    """State of an FSAL Langevin method: $\\nabla f$ at the current position."""

    grad: object


class Step(NamedTuple):
    """What a Langevin step needs, leaf by leaf of `x` (pytrees like `x`): `h` a scalar of the
    state's dtype, `gamma`, `u` and `rho` $= \\sqrt{2\\gamma u}$ broadcast, and `W`, `H`, `K`."""

    h: object
    gamma: object
    u: object
    rho: object
    W: object
    H: object
    K: object


def check_problem(problem, name: str) -> None:
    if not isinstance(problem, UnderdampedLangevin):
        raise ValueError(
            f"{name} is an underdamped Langevin method: it solves sk.UnderdampedLangevin(grad_f, gamma, u) "
            f"problems only, got {type(problem).__name__}."
        )


def prepare(problem, t0, t1, y0, inc, name: str, needs_k: bool) -> Step:
    """Parameters and Brownian quantities in the state's dtypes."""
    x0 = y0[0]
    if inc.H is None or (needs_k and inc.K is None):
        needed = "space-time-time" if needs_k else "space-time"
        raise ValueError(f"{name} needs the Brownian tree to provide levy={needed!r} (the increment lacks it).")
    gamma, u = problem.parameters(x0)
    dtype = jax.tree.leaves(x0)[0].dtype
    h = jnp.asarray(t1 - t0).astype(dtype)

    def cast(q):
        return None if q is None else jax.tree.map(lambda a, x: jnp.asarray(a).astype(x.dtype), q, x0)

    rho = jax.tree.map(lambda g, v: jnp.sqrt(2 * g * v), gamma, u)
    return Step(h, gamma, u, rho, cast(inc.W), cast(inc.H), cast(inc.K) if needs_k else None)


def grad(problem, x, args):
    return problem.grad_f(x, args)


def make_langevin_solver(name: str, step: Callable, *, strong_order: float, weak_order: float, levy_area: str,
                         fsal: bool, grads_per_step: int, error_order: float | None = None) -> Solver:
    """A `Solver` for `sk.UnderdampedLangevin` problems (facts under the noise type `"langevin"`)."""

    def init(problem, t0, y0, args):
        check_problem(problem, name)
        if fsal:
            return LangevinFSALState(grad(problem, y0[0], args))
        return EmptyState()

    def checked_step(problem, t0, t1, y0, args, inc, state):
        check_problem(problem, name)
        y1, y_error, state = step(problem, t0, t1, y0, args, inc, state)
        return y1, y_error, LinearDense(y0, y1), state

    return Solver(
        name=name,
        init=init,
        step=checked_step,
        interpolate=linear_interpolate,
        order=None,
        embedded_order=None if error_order is None else 1,
        interpolation_order=1,
        fevals_per_step=grads_per_step,
        init_fevals=1 if fsal else 0,
        sde=SDEFacts(
            calculus="stratonovich",
            strong_order=(("langevin", strong_order),),
            weak_order=(("langevin", weak_order),),
            levy_area=levy_area,
            error_order=() if error_order is None else (("langevin", error_order),),
        ),
    )


def tmap(fn, *trees):
    return jax.tree.map(fn, *trees)
