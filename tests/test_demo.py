"""`learnlaw demo` end to end (with a tiny policy config so the suite stays fast)."""

import json

import learnlaw.demo as demo_module
from conftest import run_cli
from learnlaw.policy import load_config

TINY = {
    "perceptron.dim": 8,
    "perceptron.n_train": 64,
    "perceptron.n_desired": 32,
    "perceptron.n_test": 32,
    "perceptron.train_scale_is": "std",
    "train.steps": 60,
    "train.lr": 0.5,
    "outer.epochs": 4,
    "outer.method": "eg",
    "outer.lr": "auto",
}


def test_demo_runs_both_halves(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        demo_module, "demo_config", lambda: load_config("perceptron-demo", None, TINY)
    )
    code, out, err = run_cli(["demo", "--out", tmp_path / "demo", "--quiet"], capsys)
    assert code == 0, err
    assert "acceleration ratio (test)" in out and "predicts the unseen wsd run with PredE" in out
    for path in (
        "policy/metrics.json",
        "policy/report.html",
        "policy/analysis.json",
        "laws/fit.json",
        "laws/predictions.png",
        "laws/wsd_sweep.png",
    ):
        assert (tmp_path / "demo" / path).exists(), path
    fit = json.loads((tmp_path / "demo" / "laws" / "fit.json").read_text())
    assert fit["law"] == "momentum" and fit["hyperparameters"]["lam"] == "auto"
    assert fit["learned"]["lam"] == 0.99
