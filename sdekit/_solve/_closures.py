"""Closure conversion: vector fields that close over values being differentiated.

`jax.grad(lambda k: sk.solve(sk.ODE(lambda t, y, a: -k * y), ...))` closes the vector field over
a tracer of the outer differentiation. A function is static to `jit`, and reverse mode through
the loops (custom rules, checkpointed while loops) cannot carry a tracer hidden in a static
closure. Converted, the closed-over values become leaves of the problem: traced inputs like
`args`, differentiated by every adjoint.
"""

import dataclasses
import functools
import types

import equinox as eqx
import jax

from ..terms import ODE, SDE, UnderdampedLangevin


def _holds_tracer(obj, seen: set, hidden: bool = False, depth: int = 6) -> bool:
    """Whether `obj` holds a JAX tracer where `jit` cannot see it: in a function's closure or
    defaults, a bound method's object or a `functools.partial`'s arguments (`hidden`: inside
    one of those), searched recursively; a pytree's own array leaves are seen by `jit`. No
    tracing: the usual vector field closes over no tracer, and a trace per call would cost as
    much as the check."""
    if isinstance(obj, jax.core.Tracer):
        return hidden
    if depth == 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, complex, type, types.ModuleType)):
        return False
    seen.add(id(obj))
    if isinstance(obj, types.FunctionType):
        inner, hidden = [c.cell_contents for c in obj.__closure__ or () if _filled(c)] + list(obj.__defaults__ or ()), True
    elif isinstance(obj, types.MethodType):
        inner, hidden = [obj.__self__, obj.__func__], True
    elif isinstance(obj, functools.partial):
        inner, hidden = [obj.func, *obj.args, *obj.keywords.values()], True
    else:
        leaves = jax.tree.leaves(obj)
        inner = [] if len(leaves) == 1 and leaves[0] is obj else leaves
    return any(_holds_tracer(x, seen, hidden, depth - 1) for x in inner)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell (a name not yet assigned)
        return False
    return True


def _converted(fn, *example):
    if _holds_tracer(fn, set()):
        return eqx.filter_closure_convert(fn, *example)
    return fn


def closure_converted(problem: ODE | SDE, t0, y0, args) -> ODE | SDE:
    """`problem` with each vector field that closes over a tracer closure-converted (the rest,
    the usual case, unchanged, so compiled solves are reused)."""
    if isinstance(problem, ODE):
        return dataclasses.replace(problem, vector_field=_converted(problem.vector_field, t0, y0, args))
    if isinstance(problem, UnderdampedLangevin):
        # Drift and diffusion are built from grad_f (gamma and u are array leaves already).
        x0 = y0[0] if isinstance(y0, (tuple, list)) and len(y0) == 2 else y0
        grad_f = _converted(problem.grad_f, x0, args)
        return problem if grad_f is problem.grad_f else problem.with_grad_f(grad_f)
    return dataclasses.replace(
        problem, drift=_converted(problem.drift, t0, y0, args), diffusion=_converted(problem.diffusion, t0, y0, args)
    )


def closure_converted_event(event, t0, y0, args):
    """`event` with each condition that closes over a tracer closure-converted (as the vector
    fields), so that an event time can be differentiated with respect to a closed-over value."""
    converted = [_converted(c, t0, y0, args) for c in event.conditions]
    if all(a is b for a, b in zip(converted, event.conditions)):
        return event
    return eqx.tree_at(lambda e: e.condition, event, event.unflatten(converted))
