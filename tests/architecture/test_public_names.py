"""The public surface a user explores: `dir()` of the modules, and error hints that name solvers
that actually fit."""

import jax
import jax.numpy as jnp
import pytest

import sdekit as sk


@pytest.mark.parametrize("module", [sk.terms, sk.controllers, sk.ensemble])
def test_dir_shows_only_public_names(module):
    assert sorted(dir(module)) == sorted(module.__all__)
    assert not {"jax", "jnp", "eqx", "Callable", "NamedTuple"} & set(dir(module))


def test_unsupported_noise_hint_lists_solvers_for_that_noise_and_calculus():
    tree = sk.BrownianTree(jax.random.key(0), 0.0, 1.0, shape=(2,), tol=2**-8, levy="space-time")
    sde = sk.SDE(lambda t, y, a: y, lambda t, y, a: y, noise="diagonal", calculus="ito")
    with pytest.raises(ValueError, match="diagonal' noise in ito calculus: euler_maruyama\\(\\), milstein\\(\\)") as info:
        sk.solve(sde, sk.solvers.shark(), 0.0, 1.0, jnp.ones(2), dt0=0.1, brownian=tree)
    assert "general or commutative" not in str(info.value)
    for name in str(info.value).split("calculus: ")[1].rstrip(".").split(", "):
        solver = getattr(sk.solvers, name.rstrip("()"))()
        assert solver.sde.strong("diagonal") is not None and solver.sde.calculus == "ito"
