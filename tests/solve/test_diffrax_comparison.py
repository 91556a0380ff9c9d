"""sdekit against diffrax on the same problems: adaptive step counts and accuracy."""

import diffrax
import jax
import jax.numpy as jnp
import pytest

import sdekit as sk


def lotka_volterra(t, y, args):
    return jnp.stack([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])


def van_der_pol(t, y, args):  # mu = 1
    return jnp.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]])


def damped_pendulum_pytree(t, y, args):
    rotation = jnp.array([[0.0, 1.0], [-1.0, 0.0]], y["m"].dtype)
    return {"x": y["v"], "v": -jnp.sin(y["x"]) - 0.1 * y["v"], "m": -0.5 * y["m"] @ rotation}


PROBLEMS = {
    "lotka_volterra": (lotka_volterra, lambda: jnp.array([10.0, 1.0]), 10.0),
    "van_der_pol": (van_der_pol, lambda: jnp.array([2.0, 0.0]), 20.0),
    "pytree": (damped_pendulum_pytree, lambda: {"x": jnp.array(1.0), "v": jnp.array(0.0), "m": jnp.ones((3, 2))}, 10.0),
}
SOLVERS = [("tsit5", diffrax.Tsit5), ("dopri8", diffrax.Dopri8), ("bosh3", diffrax.Bosh3)]


def _max_abs_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("solver_pair", SOLVERS, ids=[s for s, _ in SOLVERS])
@pytest.mark.parametrize("rtol", [1e-5, 1e-8])
def test_pid_matches_diffrax(problem, solver_pair, rtol, x64):
    f, make_y0, t1 = PROBLEMS[problem]
    name, diffrax_solver = solver_pair
    if name == "bosh3" and rtol < 1e-6:
        pytest.skip("thousands of third-order steps: covered at the looser tolerance")
    y0, atol = make_y0(), rtol * 1e-2
    ts = jnp.linspace(0.0, t1, 7)
    ours = sk.solve(
        sk.ODE(f), getattr(sk.solvers, name)(), 0.0, t1, y0,
        controller=sk.PID(rtol=rtol, atol=atol), saveat=sk.SaveAt(ts=ts), max_steps=20000,
    )
    theirs = diffrax.diffeqsolve(
        diffrax.ODETerm(f), diffrax_solver(), 0.0, t1, None, y0,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(ts=ts), max_steps=20000,
    )
    reference = diffrax.diffeqsolve(
        diffrax.ODETerm(f), diffrax.Dopri8(), 0.0, t1, None, y0,
        stepsize_controller=diffrax.PIDController(rtol=1e-13, atol=1e-13),
        saveat=diffrax.SaveAt(ts=ts), max_steps=100000,
    )
    # Same controller law (integral, Hairer's initial step): accepted steps within 10%.
    ours_accepted = int(ours.stats["num_accepted_steps"])
    theirs_accepted = int(theirs.stats["num_accepted_steps"])
    assert abs(ours_accepted - theirs_accepted) <= max(0.1 * theirs_accepted, 2), (ours_accepted, theirs_accepted)
    # We shrink steps on accepted steps with large errors, so we reject less, never more.
    assert int(ours.stats["num_steps"]) <= 1.1 * int(theirs.stats["num_steps"]) + 2
    # Solutions: as accurate as diffrax's, and within the tolerance of it.
    ours_error = _max_abs_diff(ours.ys, reference.ys)
    theirs_error = _max_abs_diff(theirs.ys, reference.ys)
    assert ours_error <= 2 * theirs_error + 10 * atol, (ours_error, theirs_error)
    scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(reference.ys))
    assert _max_abs_diff(ours.ys, theirs.ys) <= 1000 * rtol * scale


def test_fixed_step_matches_diffrax_to_rounding(x64):
    """Same tableau, same steps: identical to float64 rounding."""
    y0 = jnp.array([10.0, 1.0])
    ours = sk.solve(sk.ODE(lotka_volterra), sk.solvers.tsit5(), 0.0, 5.0, y0, dt0=0.01)
    theirs = diffrax.diffeqsolve(diffrax.ODETerm(lotka_volterra), diffrax.Tsit5(), 0.0, 5.0, 0.01, y0)
    assert _max_abs_diff(ours.ys, theirs.ys) < 1e-10
