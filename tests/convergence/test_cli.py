"""The order-experiment harness and the `sdekit convergence` command line."""

import numpy as np
import pytest

import sdekit as sk
from sdekit.__main__ import main
from sdekit.convergence import PROBLEMS, fit_order, ode_order_experiment


def test_fit_order_recovers_slope_and_interval():
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    fit = fit_order(h, 3.0 * h**2.5 * np.array([1.0, 1.01, 0.99, 1.0]))
    assert abs(fit.order - 2.5) < 0.02 and fit.low < 2.5 < fit.high and fit.high - fit.low < 0.1


@pytest.mark.parametrize("problem", ["lotka-volterra", "van-der-pol"])
def test_reference_problems_give_theoretical_orders(problem):
    solvers = {"heun": sk.solvers.heun(), "rk4": sk.solvers.rk4()}
    counts = {"heun": [256, 512, 1024, 2048], "rk4": [512, 1024, 2048, 4096]}  # asymptotic range
    for result in ode_order_experiment(PROBLEMS[problem], solvers, counts):
        assert abs(result.fit.order - result.theory) < 0.15, result


def test_cli_prints_table_and_saves_plot(tmp_path, capsys):
    assert main(["convergence", "--problem", "exp-sin", "--solvers", "euler,rk4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "solver" not in line}
    assert set(rows) == {"euler", "rk4"}
    assert abs(float(rows["euler"].split("|")[2]) - 1.0) < 0.15
    assert abs(float(rows["rk4"].split("|")[2]) - 4.0) < 0.15
    png = tmp_path / "convergence_exp-sin.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "convergence_exp-sin.md").read_text().startswith("Problem: exp-sin")


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="unknown solver"):
        main(["convergence", "--solvers", "rk5", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="at least three increasing"):
        main(["convergence", "--solvers", "rk4", "--levels", "64", "32", "16", "--out", str(tmp_path)])
