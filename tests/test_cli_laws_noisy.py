"""Noisy logs and the options that go with them: --fit-from (and its automatic default for logs
without warmup), noise floors and smoothing, the Huber delta from the data, predicted and
real final losses, csv: schedules with the fit's warmup, the cooldown marks of schedule sweep,
and one-line errors for every new option."""

import json

import numpy as np
import pytest

from conftest import LAW_SPECS, LAW_TRUTH, run_cli, true_momentum_law
from learnlaw.curves import LossCurve, noise, smooth_losses, write_curve_csv
from learnlaw.laws import MomentumLaw, law_from_options
from learnlaw.laws.inputs import fit_start
from learnlaw.schedules import parse_schedule
from test_cli_laws import _one_line_error


@pytest.fixture
def noisy_files(tmp_path):
    """Per-step-like logs from step 0 with no warmup in the LR column, 1.5% batch noise."""
    law, rng, files = true_momentum_law(), np.random.default_rng(1), {}
    steps = np.arange(0, 12001, 8)
    for name in ("constant", "cosine", "wsd"):
        sched = parse_schedule(LAW_SPECS[name].replace("warmup=500", "warmup=0"))
        clean = law.predict(sched, np.maximum(steps, 1))
        loss = clean * (1 + 0.015 * rng.standard_normal(len(steps)))
        files[name] = write_curve_csv(LossCurve(steps, loss, sched), tmp_path / f"{name}.csv")
    return files


def test_noise_floor_of_a_known_noise():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 3001)
    clean = 3 + 2 * steps**-0.5
    z = noise(clean * (1 + 0.01 * rng.standard_normal(len(steps))))
    # mean |noise| of a normal is sigma sqrt(2 / pi); the smoothed copy takes a little of it
    assert z.floor == pytest.approx(0.01 * np.sqrt(2 / np.pi), rel=0.1)
    assert z.sigma == pytest.approx(0.01, rel=0.1)
    # smoothing a clean curve changes it by far less than the noise, once the window is short
    # next to the curve's bend (not over the first steps of training)
    assert np.max(np.abs(smooth_losses(clean, 101) / clean - 1)[300:]) < 1e-4


def test_fit_from_defaults_and_option(noisy_files):
    from learnlaw.curves import read_curve

    curve = read_curve(noisy_files["cosine"])
    assert curve.warmup_steps == 0
    start, why = fit_start(curve)
    assert start == 600 and why.startswith("automatic")  # 5% of 12000
    assert fit_start(curve, 2000) == (2000, "--fit-from")
    law = law_from_options("momentum", fit_from=2000).fit([curve])
    assert 2000 <= law.fit_info_["curves"][0]["first_step"] < 2016  # a bin's mean step
    assert any("before step 2000 (--fit-from)" in n for n in law.fit_info_["notes"])


def test_noisy_fit_delta_from_noise_and_smoothing(noisy_files):
    from learnlaw.curves import read_curve

    curves = [read_curve(noisy_files[n]) for n in ("constant", "cosine")]
    law = law_from_options("momentum").fit(curves)
    # 3 sigmas of 1.5% noise, not the published 1e-3
    assert law.delta_ == pytest.approx(0.045, rel=0.15)
    assert any("Huber delta" in n for n in law.fit_info_["notes"])
    assert law.fit_info_["curves"][0]["noise_floor"] == pytest.approx(0.012, rel=0.15)
    assert law.params_["alpha"] == pytest.approx(LAW_TRUTH["alpha"], rel=0.15)
    smooth = law_from_options("momentum", smooth=51).fit(curves)
    assert any("smoothed over 51" in n for n in smooth.fit_info_["notes"])
    assert smooth.params_["C"] == pytest.approx(LAW_TRUTH["C"], rel=0.15)


def test_predict_run_prints_final_losses_and_csv_schedule_uses_fit_warmup(
    curve_files, tmp_path, capsys
):
    fit = tmp_path / "fit.json"
    files = [curve_files["constant"], curve_files["cosine"]]
    code, out, err = run_cli(["law", "fit", *files, "--warmup-steps", 500, "-o", fit], capsys)
    assert code == 0, err
    code, out, err = run_cli(["law", "predict", fit, curve_files["wsd"]], capsys)
    assert code == 0, err
    assert "final real" in out and "quadratic fit over the last 10 scored points" in out
    code, out, err = run_cli(["law", "predict", fit, curve_files["wsd"], "--json"], capsys)
    entry = json.loads(out)["files"][0]
    assert abs(entry["final_predicted"] / entry["final_real"] - 1) < 2e-3
    # the run's own LR log as a schedule: its last logged step is the last predicted one, and
    # the fit's warmup applies (the log starts after it), as in file mode
    code, out, err = run_cli(
        ["law", "predict", fit, "--schedule", f"csv:path={curve_files['wsd']}", "--json"], capsys
    )
    assert code == 0, err
    pred = json.loads(out)
    last = int(np.loadtxt(curve_files["wsd"], delimiter=",", skiprows=1)[-1, 0])
    assert pred["steps"][-1] == last and pred["warmup"] == 500 and pred["steps"][0] == 500
    from learnlaw.curves import read_curve
    from learnlaw.laws import load_law

    run = read_curve(curve_files["wsd"], warmup_steps=500)
    file_mode = load_law(fit).predict(run, np.array([last]))[0]
    assert pred["loss"][-1] == pytest.approx(file_mode, rel=1e-9)
    assert entry["final_predicted"] == pytest.approx(file_mode, rel=1e-9)


def test_lambda_auto_says_when_it_ends_at_the_edge(tmp_path):
    law = MomentumLaw(lam=0.9999)
    law.lam_, law.params_ = 0.9999, dict(LAW_TRUTH)
    rng = np.random.default_rng(0)
    steps = np.arange(600, 12000, 256)
    curves = []
    for name in ("constant", "cosine"):
        sched = parse_schedule(LAW_SPECS[name])
        loss = law.predict(sched, steps) * (1 + 2e-4 * rng.standard_normal(len(steps)))
        curves.append(LossCurve(steps, loss, sched, warmup_steps=500, name=name))
    fitted = MomentumLaw(lam="auto").fit(curves)
    notes = " ".join(fitted.fit_info_["notes"])
    assert fitted.lam_ > 0.9995 and "tried 0.9998" in notes


def test_sweep_marks_fractions_within_the_bootstrap_band(curve_files, tmp_path, capsys):
    fit = tmp_path / "fitb.json"
    files = [curve_files["constant"], curve_files["cosine"]]
    args = ["law", "fit", *files, "--warmup-steps", 500, "--bootstrap", 8, "-o", fit]
    assert run_cli(args, capsys)[0] == 0
    args = ["schedule", "sweep", fit, "--total", 12000, "--peak", 3e-4, "--final", 3e-5]
    code, out, err = run_cli([*args, "--fractions", "0.1/0.12/0.9", "--no-plot"], capsys)
    assert code == 0, err
    assert "~: within the fit's 90% bootstrap band" in out
    code, out, err = run_cli([*args, "--fractions", "0.1/0.12/0.9", "--no-plot", "--json"], capsys)
    rows = json.loads(out)["sweep"]
    best = min(rows, key=lambda r: r["final_loss"])
    assert best["tied_with_best"]
    # a 90% decay is far from the best 10-12% of a law with these parameters
    assert not rows[2]["tied_with_best"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--fit-from", "0"], "--fit-from 0"),
        (["--smooth", "3"], "--smooth 3"),
        (["--max-points", "5"], "--max-points 5"),
        (["--delta", "-1"], "--delta -1"),
        (["--delta", "big"], "--delta 'big'"),
        (["--lambda", "1.5"], "--lambda 1.5"),
        (["--lambda", "sometimes"], "--lambda 'sometimes'"),
        (["--law", "auto", "--lambda", "2"], "--lambda 2"),
    ],
)
def test_new_fit_options_fail_in_one_line(curve_files, tmp_path, capsys, extra, fragment):
    args = ["law", "fit", curve_files["constant"], "-o", tmp_path / "f.json", *extra]
    _one_line_error(*run_cli(args, capsys), fragment)


def test_compare_laws_option_fails_in_one_line(curve_files, tmp_path, capsys):
    files = list(curve_files.values())
    args = ["law", "compare", *files, "--fit-on", "constant,cosine", "--laws", "momentum,nope"]
    _one_line_error(*run_cli(args, capsys), "--laws 'nope'")


def test_final_loss_is_unbiased_in_a_decay_and_less_noisy_than_one_point():
    from learnlaw.laws.evaluation import final_loss

    clean = 3.5 + 0.5 * np.linspace(1, 0, 10) ** 2  # still falling at the end of a decay
    assert final_loss(clean) == pytest.approx(clean[-1], rel=1e-3)
    assert np.mean(clean) > clean[-1] + 0.1  # what a plain mean would report
    rng = np.random.default_rng(0)
    noisy = clean * (1 + 0.01 * rng.standard_normal((400, 10)))
    errors = np.array([final_loss(x) for x in noisy]) - clean[-1]
    assert abs(np.mean(errors)) < 0.01 * clean[-1] / 5
    assert np.std(errors) < 0.9 * np.std(noisy[:, -1] - clean[-1])
