"""`sk.brownian.tree_options`: the tree that provides a solver's (or several solvers') Lévy area."""

import pytest

import sdekit as sk


@pytest.mark.parametrize(
    "needs, options",
    [(("increment",), ("increment", False)), (("space-time", "increment"), ("space-time", False)),
     (("increment", "space-time-time", "space-time"), ("space-time-time", False)),
     (("space-space",), ("space-time", True)), (("space-space", "space-time-time"), ("space-time-time", True))],
)
def test_richest_need_wins(needs, options):
    assert sk.brownian.tree_options(*needs) == options


def test_every_solver_accepts_the_tree_it_asks_for():
    from sdekit._solve._checks import levy_shortfall  # the solve's own check

    for name in ("euler_maruyama", "shark", "spark", "slow_rk", "milstein_general"):
        solver = getattr(sk.solvers, name)()
        levy, area = sk.brownian.tree_options(solver.sde.levy_area)
        tree = type("Tree", (), {"levy": levy, "area": area})()
        assert levy_shortfall(tree, solver.sde.levy_area, name) is None, name
