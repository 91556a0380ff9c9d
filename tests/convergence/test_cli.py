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


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    """Usage errors: exit status 2 and one line on stderr (see test_cli_validation.py for the rest)."""
    for args, message in [(["--solvers", "rk5"], "unknown solver 'rk5'"),
                          (["--solvers", "rk4", "--levels", "64", "32", "16"], "at least three increasing")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["convergence", *args, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err


def test_bootstrap_interval_covers_and_is_tight():
    import jax

    from sdekit.convergence import bootstrap_order

    rng = np.random.default_rng(0)
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    # Per-path errors with mean exactly 2 h^0.75 and noisy paths.
    errors = 2 * h[:, None] ** 0.75 * rng.exponential(size=(1, 400))
    fit = bootstrap_order(h, errors, jax.random.key(1))
    assert fit.low < 0.75 < fit.high and fit.high - fit.low < 0.05


@pytest.mark.slow
def test_cli_sde_strong_orders(tmp_path, capsys):
    """Same Brownian paths across resolutions: Milstein 1.0 on GBM, through the exact-solution branch.
    (Euler-Maruyama's strong order 1/2 on multiplicative noise: tests/solvers/test_milstein_general.py;
    several solvers in one table: test_cli_prints_table_and_saves_plot.)"""
    args = ["convergence", "--problem", "gbm", "--solvers", "milstein", "--paths", "300",
            "--levels", "32", "64", "128", "256", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|") for line in out.splitlines() if line.startswith("| ") and "solver" not in line}
    assert set(rows) == {"milstein"} and abs(float(rows["milstein"][2]) - 1.0) < 0.15
    assert (tmp_path / "convergence_gbm.png").exists()


def test_cli_rejects_solver_for_wrong_noise(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convergence", "--problem", "gbm", "--solvers", "tsit5", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "tsit5 is an ODE method and gbm an SDE problem" in capsys.readouterr().err
