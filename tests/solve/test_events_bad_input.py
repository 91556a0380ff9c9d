"""Bad events get clear errors at trace time: conditions that are not functions or do not
return one real or boolean scalar, bad `direction`/`terminate`, adjoints that cannot
differentiate an event."""

import jax
import jax.numpy as jnp
import pytest

import sdekit as sk

ODE = sk.ODE(lambda t, y, a: -y)


def solve(event, **kwargs):
    return sk.solve(ODE, sk.solvers.heun(), 0.0, 1.0, jnp.ones(2), dt0=0.1, event=event, **kwargs)


@pytest.mark.parametrize(
    "condition, match",
    [
        (lambda t, y, a: y, "must return a scalar.*got shape \\(2,\\)"),
        (lambda t, y, a: (y[0], y[1]), "must return one scalar.*pytree"),
        (lambda t, y, a: jnp.int32(1), "real floating-point scalar or a bool, got dtype int32"),
    ],
)
def test_condition_must_return_a_real_or_boolean_scalar(condition, match):
    with pytest.raises(ValueError, match=match):
        solve(sk.Event(condition))


def test_the_failing_condition_is_named_among_several():
    with pytest.raises(ValueError, match="condition 1"):
        solve(sk.Event([lambda t, y, a: y[0], lambda t, y, a: y]))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: sk.Event(3.0), TypeError, "must be functions"),
        (lambda: sk.Event([]), ValueError, "needs a condition"),
        (lambda: sk.Event(lambda t, y, a: y[0], direction=2), ValueError, "direction"),
        (lambda: sk.Event(lambda t, y, a: y[0], direction="up"), ValueError, "direction"),
        (lambda: sk.Event([lambda t, y, a: y[0]] * 2, direction=[1]), ValueError, "structure"),
        (lambda: sk.Event(lambda t, y, a: y[0], terminate="yes"), ValueError, "terminate"),
    ],
)
def test_bad_event_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_event_must_be_an_event():
    with pytest.raises(TypeError, match="sk.Event"):
        solve(lambda t, y, a: y[0])


@pytest.mark.parametrize("adjoint", [sk.adjoint.Backsolve(), sk.adjoint.Reversible()])
def test_adjoints_that_cannot_differentiate_events_refuse_them(adjoint):
    with pytest.raises(ValueError, match="cannot differentiate a solve with an event.*Checkpointed"):
        sk.solve(ODE, sk.solvers.reversible_heun(), 0.0, 1.0, jnp.ones(2), dt0=0.1,
                 event=sk.Event(lambda t, y, a: y[0] - 0.5), adjoint=adjoint)


def test_directions_accept_booleans_and_pytrees():
    event = sk.Event({"a": lambda t, y, a: y[0], "b": lambda t, y, a: y[1]}, terminate={"a": True, "b": False},
                     direction={"a": True, "b": None})
    assert event.direction == (1, 0) and event.terminate == (True, False)
    assert sk.Event(lambda t, y, a: y[0], direction=False).direction == (-1,)
    jax.tree.leaves(event)  # a pytree
