"""Run-time failures read as their message: first when `sk.solve` is called outside a user's jit;
inside the JaxRuntimeError's text under a user's jit (XLA's wrapping, documented)."""

import jax
import jax.numpy as jnp
import pytest

import sdekit as sk

ODE = sk.ODE(lambda t, y, a: -y)


def test_a_failed_solve_raises_its_message_first():
    with pytest.raises(sk.SolveError) as info:
        sk.solve(ODE, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=0.001, max_steps=10)
    assert str(info.value).startswith("The maximum number of solver steps was reached")
    assert isinstance(info.value, RuntimeError)


def test_bad_traced_input_raises_its_message_first():
    run = lambda dt0: sk.solve(ODE, sk.solvers.tsit5(), 0.0, 1.0, jnp.array(1.0), dt0=dt0)  # noqa: E731
    with pytest.raises(sk.SolveError) as info:
        jax.vmap(run)(jnp.array([0.1, -0.1]))
    assert str(info.value).startswith("dt0 has the wrong sign")


def test_under_a_users_jit_the_message_is_in_the_error_text():
    with pytest.raises((RuntimeError, ValueError), match="maximum number of solver steps"):
        jax.block_until_ready(jax.jit(
            lambda y: sk.solve(ODE, sk.solvers.tsit5(), 0.0, 1.0, y, dt0=0.001, max_steps=10).ys)(jnp.array(1.0)))
