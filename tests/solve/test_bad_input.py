"""Every bad input gets a clear error, eagerly when the numbers are concrete and at run time
(also under jit/vmap) when they are traced."""

import jax
import jax.numpy as jnp
import pytest

import sdekit as sk

ODE = sk.ODE(lambda t, y, args: -y)


def solve(**overrides):
    options = dict(problem=ODE, solver=sk.solvers.tsit5(), t0=0.0, t1=1.0, y0=jnp.ones(2), dt0=0.1)
    options.update(overrides)
    return sk.solve(
        options.pop("problem"), options.pop("solver"), options.pop("t0"), options.pop("t1"), options.pop("y0"), **options
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(dt0=0.0), "dt0 must be non-zero"),
        (dict(dt0=-0.1), "dt0 has the wrong sign"),
        (dict(t0=1.0, t1=0.0, dt0=0.1), "dt0 has the wrong sign"),
        (dict(t1=float("nan")), "t1 must be finite"),
        (dict(saveat=sk.SaveAt(ts=jnp.array([0.5, 1.5]))), "outside \\[t0, t1\\]"),
        (dict(saveat=sk.SaveAt(ts=jnp.array([0.7, 0.2]))), "must be sorted"),
        (dict(dt0=None, controller=sk.StepTo(jnp.array([0.0, 0.5, 0.9]))), "ts\\[-1\\] must equal t1"),
        (dict(dt0=None, controller=sk.StepTo(jnp.array([0.0, 0.6, 0.5, 1.0]))), "strictly monotonic"),
        (dict(solver=sk.solvers.euler(), dt0=None, controller=sk.PID(rtol=1e-3, atol=1e-6)), "no embedded error estimate"),
        (dict(solver=sk.solvers.rk4(), controller=sk.PID(rtol=1e-3, atol=1e-6)), "no embedded error estimate"),
        (dict(dt0=None), "Pass a step size dt0"),
        (dict(dt0=None, controller=sk.ConstantStep()), "needs a step size"),
        (dict(controller=sk.StepTo(jnp.linspace(0.0, 1.0, 3))), "do not pass dt0"),
        (dict(solver=sk.solvers.tsit5), "call it"),
        (dict(max_steps=0), "max_steps must be a positive int"),
        (dict(y0=jnp.ones(2, jnp.int32)), "must be floating point"),
        (dict(problem=sk.ODE(lambda t, y, args: jnp.zeros(3))), "returned shape \\(3,\\)"),
        (dict(problem=sk.ODE(lambda t, y, args: (y, y))), "does not have the structure of y0"),
        (dict(problem=sk.ODE(sk.Split(lambda t, y, args: jnp.zeros(3), lambda t, y, args: -y))),
         "explicit part of the vector field returned shape \\(3,\\)"),
        (dict(problem=sk.ODE(sk.Split(lambda t, y, args: -y, lambda t, y, args: jnp.zeros((1, 2))))),
         "implicit part of the vector field returned shape \\(1, 2\\)"),
        (dict(problem=sk.ODE(lambda t, y, args: {"a": y["a"], "b": y["a"]}), y0={"a": jnp.ones(2), "b": jnp.ones(3)}), "\\['b'\\]"),
        (dict(saveat=(0.5,)), "saveat must be an sk.SaveAt"),
    ],
)
def test_bad_input_raises_eagerly(overrides, message):
    with pytest.raises((ValueError, TypeError), match=message):
        solve(**overrides)


def test_dtype_mismatch_of_vector_field(x64):
    with pytest.raises(ValueError, match="dtype float32 at"):
        solve(problem=sk.ODE(lambda t, y, args: y.astype(jnp.float32)), y0=jnp.ones(2, jnp.float64))


@pytest.mark.parametrize(
    "bad",
    [
        dict(rtol=-1.0, atol=1e-6),
        dict(rtol=0.0, atol=0.0),
        dict(rtol=1e-3, atol=1e-6, factormin=2.0),
    ],
)
def test_bad_pid_parameters(bad):
    with pytest.raises(ValueError, match="PID"):
        sk.PID(**bad)


def test_bad_save_and_grid_shapes():
    with pytest.raises(ValueError, match="1-D"):
        sk.SaveAt(ts=jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="at least two times"):
        sk.StepTo(jnp.array([0.0]))


@pytest.mark.parametrize(
    "t1, dt0, message",
    [(1.0, -0.1, "wrong sign"), (1.0, 0.0, "non-zero")],
)
def test_traced_bad_numbers_raise_at_run_time(t1, dt0, message):
    @jax.jit
    def run(t1, dt0):
        return sk.solve(ODE, sk.solvers.tsit5(), 0.0, t1, jnp.ones(2), dt0=dt0).ys

    with pytest.raises(RuntimeError, match=message):
        jax.block_until_ready(run(t1, dt0))


def test_traced_save_times_outside_interval_raise_under_vmap():
    def run(save_time):
        return sk.solve(ODE, sk.solvers.tsit5(), 0.0, 1.0, jnp.ones(2), dt0=0.1, saveat=sk.SaveAt(ts=save_time[None])).ys

    jax.block_until_ready(jax.vmap(run)(jnp.array([0.2, 0.9])))  # fine
    with pytest.raises(RuntimeError, match="outside"):
        jax.block_until_ready(jax.vmap(run)(jnp.array([0.2, 1.9])))


def test_differentiating_with_respect_to_an_integer_leaf_is_refused():
    """An integer argument cannot carry a gradient: JAX refuses it with a message naming the dtype,
    for every adjoint (nothing is silently returned as zero)."""

    def loss(steps, adjoint):
        rate = steps.astype(jnp.float32)
        return sk.solve(sk.ODE(lambda t, y, k: -k * y), sk.solvers.heun(), 0.0, 1.0, jnp.array(1.0), args=rate,
                        dt0=0.1, adjoint=adjoint).ys[-1]

    for adjoint in (sk.adjoint.Checkpointed(), sk.adjoint.Backsolve()):
        with pytest.raises(TypeError, match="real- or complex-valued inputs"):
            jax.grad(loss)(jnp.array(3), adjoint)
