"""Problem descriptions: what is solved, separate from how."""

from collections.abc import Callable

import equinox as eqx


class ODE(eqx.Module):
    """An ordinary differential equation $\\mathrm{d}y/\\mathrm{d}t = f(t, y, \\text{args})$.

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


class _TimeReversed(eqx.Module):
    """$\\tilde f(\\tau, y) = s f(s\\tau, y)$ with $s = \\pm 1$: integrates in $\\tau = s t$ so that
    the loop always steps forwards."""

    vector_field: Callable
    direction: object

    def __call__(self, tau, y, args):
        d = self.direction
        out = self.vector_field(d * tau, y, args)
        return _scale_tree(out, d)


def _scale_tree(tree, scalar):
    import jax

    return jax.tree.map(lambda x: x * scalar.astype(x.dtype), tree)


def time_reversed(problem: ODE, direction) -> ODE:
    """The problem in the time variable $\\tau = \\text{direction} \\cdot t$."""
    return ODE(_TimeReversed(problem.vector_field, direction))
