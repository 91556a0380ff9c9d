"""`sdekit convergence` checks everything before computing (issue #18, item 3): solver names and
`:calculus` suffixes, solver/problem fit, levels, paths, output directory and matplotlib, each a
one-line message with exit status 2; per-problem default solvers; a help that lists SDE solvers
and explains `name:calculus`; and `sdekit --version`."""

import inspect
import sys

import pytest

import sdekit as sk
import sdekit.convergence._cli as cli
from sdekit.__main__ import main
from sdekit.convergence import PROBLEMS, SDE_PROBLEMS, problem_for


@pytest.fixture
def no_computation(monkeypatch):
    """Make any experiment fail loudly, to prove that a refusal comes before the work."""
    def forbidden(*args, **kwargs):
        raise AssertionError("an experiment ran before the arguments were checked")

    monkeypatch.setattr(cli, "sde_strong_order_experiment", forbidden)
    monkeypatch.setattr(cli, "ode_order_experiment", forbidden)


def _refusal(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["convergence", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["--problem", "gbm", "--solvers", "euler_maruyama,tsit5"], "tsit5 is an ODE method and gbm an SDE problem"),
    (["--problem", "gbm", "--solvers", "euler_maruyama,milstein:foo"], "calculus must be 'ito' or 'stratonovich'"),
    (["--problem", "gbm", "--solvers", "heun_sde:ito"], "heun_sde has a fixed calculus (stratonovich)"),
    (["--problem", "ou", "--solvers", "shark,sra1,rk5"], "unknown solver 'rk5'"),
    (["--problem", "exp-sin", "--solvers", "rk4:ito"], "rk4 is an ODE method; only milstein, milstein_general take"),
    (["--problem", "ou", "--solvers", "shark,milstein_general"], "milstein_general does not solve additive-noise"),
    (["--problem", "ou", "--solvers", "shark,,sra1"], "empty solver name"),
    (["--problem", "ou", "--solvers", "shark,shark"], "listed twice"),
    (["--problem", "exp-sin", "--solvers", "rk4,euler_maruyama"], "euler_maruyama is an SDE method"),
    (["--problem", "lotka-volterra", "--levels", "10", "20", "40"], "must divide 12288"),
    (["--problem", "ou", "--levels", "64", "128", "1024"], "up to 256"),
    (["--problem", "gbm", "--levels", "0", "1", "2"], "positive step counts"),
    (["--problem", "gbm", "--paths", "1"], "at least 2 paths"),
    (["--problem", "nope"], "invalid choice"),
    (["--levels", "x"], "invalid int value"),
])
def test_cli_refuses_bad_arguments_in_one_line_before_computing(args, message, capsys, tmp_path, no_computation):
    assert message in _refusal([*args, "--out", str(tmp_path)], capsys)


def test_cli_refuses_an_unusable_output_directory(capsys, tmp_path, no_computation):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot use --out" in _refusal(["--problem", "gbm", "--out", str(blocker / "sub")], capsys)


def test_cli_reports_missing_matplotlib_before_computing(monkeypatch, capsys, tmp_path, no_computation):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    err = _refusal(["--problem", "gbm", "--out", str(tmp_path)], capsys)
    assert "needs matplotlib" in err and "--no-plot" in err


def test_cli_no_plot_runs_without_matplotlib(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["convergence", "--solvers", "euler,rk4", "--no-plot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "convergence_exp-sin.md").exists() and not (tmp_path / "convergence_exp-sin.png").exists()


@pytest.mark.parametrize("problem", [*PROBLEMS, *SDE_PROBLEMS])
def test_default_solvers_fit_each_problem(problem):
    """The defaults pass the checks (gbm's defaults used to be ODE methods) and, for SDE problems,
    solve the problem's noise type in its calculus."""
    specs = cli.parse_solver_specs(",".join(cli.default_solvers(problem)), problem)
    solvers = [cli.build_solver(spec, problem) for spec in specs]
    if problem in SDE_PROBLEMS:
        test = SDE_PROBLEMS[problem]
        assert all(s.sde is not None and s.sde.strong(test.problem.noise) for s in solvers)
        assert all(problem_for(test, s) is test.problem for s in solvers)  # no calculus conversion needed
    else:
        assert all(s.order is not None for s in solvers)


def test_milstein_general_uses_the_problem_calculus():
    """`milstein_general` defaults to Stratonovich as a factory; on the Itô problem the CLI gives it Itô."""
    spec = cli.parse_solver_specs("milstein_general", "noncommutative")[0]
    assert cli.build_solver(spec, "noncommutative").sde.calculus == "ito"
    explicit = cli.parse_solver_specs("milstein_general:stratonovich", "noncommutative")[0]
    assert cli.build_solver(explicit, "noncommutative").sde.calculus == "stratonovich"


def test_other_calculus_solver_solves_the_converted_problem():
    """heun_sde (Stratonovich) on the Itô GBM runs on the Stratonovich form with the same solution:
    drift mu y - sigma^2 y / 2."""
    test = SDE_PROBLEMS["gbm"]
    converted = problem_for(test, sk.solvers.heun_sde())
    assert converted.calculus == "stratonovich"
    assert float(converted.drift(0.0, 1.0, None)) == pytest.approx(0.5 - 0.8**2 / 2)
    assert problem_for(SDE_PROBLEMS["ou"], sk.solvers.shark()) is SDE_PROBLEMS["ou"].problem  # additive: as is


def test_cli_runs_a_stratonovich_solver_on_an_ito_problem(capsys, tmp_path):
    """The former traceback (heun_sde on the Itô GBM) is now a measured row with a note."""
    args = ["convergence", "--problem", "gbm", "--solvers", "heun_sde", "--paths", "20", "--levels", "8", "16", "32",
            "--no-plot", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "note: heun_sde (stratonovich) solves the ito problem gbm" in out and "| heun_sde |" in out


def test_help_lists_sde_solvers_and_calculus_syntax(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convergence", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(name in out for name in cli.SDE_SOLVERS + cli.ODE_SOLVERS)
    assert "NAME:CALCULUS" in out and "milstein:stratonovich" in out and "stratonovich_drift" in out
    assert "gbm             SDE, diagonal noise, Itô: euler_maruyama,milstein" in out


def test_solver_lists_cover_every_public_solver_factory():
    """The help's lists are the solvers in sk.solvers (a new solver must be added to them)."""
    factories = {
        name for name in sk.solvers.__all__
        if name[0].islower() and not inspect.signature(getattr(sk.solvers, name)).parameters.keys() - {"calculus"}
        and name not in ("align", "should", "quicsort")  # sk.UnderdampedLangevin only: no built-in CLI problem
    }
    assert factories == set(cli.ODE_SOLVERS) | set(cli.SDE_SOLVERS)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"sdekit {sk.__version__}"
