"""The law and schedule commands end to end, and their one-line errors."""

import json

import numpy as np
import pytest

from conftest import LAW_SPECS, LAW_TRUTH, run_cli, true_momentum_law
from learnlaw.curves import LossCurve, write_curve_csv
from learnlaw.laws import MomentumLaw
from learnlaw.schedules import parse_schedule


def test_fit_predict_compare_sweep(curve_files, tmp_path, capsys):
    fit = tmp_path / "fit.json"
    code, out, err = run_cli(
        [
            "law",
            "fit",
            curve_files["constant"],
            curve_files["cosine"],
            "--warmup-steps",
            500,
            "-o",
            fit,
            "--plot",
            tmp_path / "fit.png",
        ],
        capsys,
    )
    assert code == 0, err
    assert (
        "momentum law fitted on 2 curves" in out
        and fit.exists()
        and (tmp_path / "fit.png").exists()
    )
    params = json.loads(fit.read_text())["params"]
    assert params["alpha"] == pytest.approx(LAW_TRUTH["alpha"], rel=0.1)

    code, out, err = run_cli(
        ["law", "predict", fit, curve_files["wsd"], "--json", "--plot", tmp_path / "pred.png"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)  # exactly one JSON object
    assert set(result) == {"files", "overall"}
    assert result["files"][0]["pred_error"] < 2e-3 and result["overall"]["r2"] > 0.99
    assert (tmp_path / "pred.png").stat().st_size > 10_000

    code, out, err = run_cli(
        ["law", "predict", fit, "--schedule", LAW_SPECS["wsd"], "--csv", tmp_path / "wsd_pred.csv"],
        capsys,
    )
    assert code == 0, err
    rows = np.loadtxt(tmp_path / "wsd_pred.csv", delimiter=",", skiprows=1)
    assert rows[0, 0] == 500 and rows[-1, 0] == 12000 and rows[-1, 1] == pytest.approx(3e-5)
    assert f"{rows[-1, 2]:.4f}" in out

    code, out, err = run_cli(
        [
            "schedule",
            "compare",
            fit,
            LAW_SPECS["cosine"],
            LAW_SPECS["wsd"],
            "--json",
            "--plot",
            tmp_path / "cmp.png",
        ],
        capsys,
    )
    assert code == 0, err
    ranked = json.loads(out)["schedules"]
    assert ranked[0]["final_loss"] <= ranked[1]["final_loss"]

    code, out, err = run_cli(
        [
            "schedule",
            "sweep",
            fit,
            "--total",
            12000,
            "--peak",
            3e-4,
            "--final",
            3e-5,
            "--fractions",
            "0.1/0.3/0.5",
            "--json",
            "--no-plot",
        ],
        capsys,
    )
    assert code == 0, err
    sweep = json.loads(out)
    assert sweep["warmup"] == 500 and [r["decay_frac"] for r in sweep["sweep"]] == [0.1, 0.3, 0.5]
    losses = [r["final_loss"] for r in sweep["sweep"]]
    assert sweep["best"]["final_loss"] == min(losses)


def _one_line_error(code, out, err, fragment):
    assert code == 2
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("learnlaw: error:"), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_bad_inputs_exit_2_with_one_line(curve_files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("step,lr,loss\n1,0.1,3\n2,0.1,x\n")
    _one_line_error(
        *run_cli(["law", "fit", bad, "-o", tmp_path / "f.json"], capsys),
        "row 3, column 'loss': 'x' is not a number",
    )
    nolr = tmp_path / "nolr.csv"
    nolr.write_text("step,loss\n1,3\n2,2.9\n")
    _one_line_error(
        *run_cli(["law", "fit", nolr, "-o", tmp_path / "f.json"], capsys), "no learning-rate column"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _one_line_error(
        *run_cli(["law", "fit", empty, "-o", tmp_path / "f.json"], capsys), "the file is empty"
    )
    few = tmp_path / "few.csv"
    few.write_text("step,lr,loss\n10,0.1,3\n20,0.1,2.9\n")
    _one_line_error(
        *run_cli(["law", "fit", few, "-o", tmp_path / "f.json"], capsys), "fit on more points"
    )
    _one_line_error(
        *run_cli(
            ["law", "fit", curve_files["cosine"], "--lambda", "1.5", "-o", tmp_path / "f.json"],
            capsys,
        ),
        "--lambda 1.5",
    )
    zero = tmp_path / "zero.csv"
    zero.write_text("step,lr,loss\n10,0,3\n20,0,2.9\n30,0,2.8\n40,0,2.7\n50,0,2.6\n")
    _one_line_error(
        *run_cli(["law", "fit", zero, "-o", tmp_path / "f.json"], capsys), "must be positive"
    )

    fit = tmp_path / "fit.json"
    assert (
        run_cli(["law", "fit", curve_files["constant"], curve_files["cosine"], "-o", fit], capsys)[
            0
        ]
        == 0
    )
    sweep = ["schedule", "sweep", fit, "--total", 12000, "--peak", 3e-4, "--no-plot"]
    for fractions, fragment in [
        ("0.3/1.5/-1", "--fractions '0.3/1.5/-1': every fraction must be in (0, 1], got 1.5"),
        ("0.3/nan", "--fractions '0.3/nan': every fraction must be in (0, 1], got nan"),
        ("/", "--fractions '/': expected numbers separated by /"),
    ]:
        _one_line_error(*run_cli([*sweep, "--fractions", fractions], capsys), fragment)
    _one_line_error(
        *run_cli(["law", "predict", fit, "--schedule", "zigzag:peak=1", "--steps", 10], capsys),
        "unknown kind 'zigzag'",
    )
    _one_line_error(
        *run_cli(["law", "predict", fit, "--schedule", "cosine:peak=1,total=100,tail=2"], capsys),
        "unknown key 'tail'",
    )
    obj = json.loads(fit.read_text())
    obj["format_version"] = 99
    other = tmp_path / "v99.json"
    other.write_text(json.dumps(obj))
    _one_line_error(
        *run_cli(["law", "predict", other, curve_files["wsd"]], capsys), "fit format version 99"
    )
    obj["format_version"], obj["law"] = 1, "chinchilla"
    other.write_text(json.dumps(obj))
    _one_line_error(
        *run_cli(["law", "predict", other, curve_files["wsd"]], capsys), "unknown law 'chinchilla'"
    )
    _one_line_error(
        *run_cli(["law", "fit", curve_files["wsd"], "--warmup-stepz", 3, "-o", fit], capsys),
        "No such option '--warmup-stepz'",
    )
    _one_line_error(
        *run_cli(["law", "predict", tmp_path / "missing.json", curve_files["wsd"]], capsys),
        "no such fit file",
    )


def test_a_fit_on_one_curve_says_curve(curve_files, tmp_path, capsys):
    fit = tmp_path / "fit.json"
    code, out, err = run_cli(["law", "fit", curve_files["cosine"], "-o", fit], capsys)
    assert code == 0, err
    assert "momentum law fitted on 1 curve (" in out


def test_shared_data_standard_split_accuracy(shared_curves, tmp_path, capsys):
    """The acceptance number for one size (all three are in benchmarks/curve_laws.py)."""
    d = shared_curves / "400M"
    fit = tmp_path / "fit.json"
    code, _, err = run_cli(
        [
            "law",
            "fit",
            d / "constant_24000.csv",
            d / "cosine_24000.csv",
            d / "wsdcon_9.csv",
            "--warmup-steps",
            2160,
            "-o",
            fit,
        ],
        capsys,
    )
    assert code == 0, err
    held_out = [
        "constant_72000",
        "cosine_72000",
        "wsd_20000_24000",
        "wsdld_20000_24000",
        "wsdcon_3",
        "wsdcon_18",
    ]
    code, out, err = run_cli(
        [
            "law",
            "predict",
            fit,
            *[d / f"{n}.csv" for n in held_out],
            "--warmup-steps",
            2160,
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["overall"]["pred_error"] <= 0.0025


def test_log_from_step_zero_fits_predicts_and_plots_on_the_same_points(tmp_path, capsys):
    """Fit, predict, --plot and compare all score the points after warmup and step 0."""
    law = true_momentum_law()
    steps = np.arange(0, 12000, 64)
    files = []
    for name in ("constant", "cosine"):
        sched = parse_schedule(LAW_SPECS[name])
        loss = law.predict(sched, steps)  # NaN at step 0 and in the warmup: no law speaks
        loss = np.where(np.isnan(loss), 2 * np.nanmax(loss), loss)  # a log's high early loss
        files.append(write_curve_csv(LossCurve(steps, loss, sched), tmp_path / f"{name}.csv"))
    fit = tmp_path / "fit.json"
    code, out, err = run_cli(
        ["law", "fit", *files, "-o", fit, "--plot", tmp_path / "f.png"], capsys
    )
    assert code == 0, err
    fitted = json.loads(fit.read_text())["fit"]["curves"]
    warmup = fitted[0]["warmup_steps"]  # detected from the logged LR (a corner every 64 steps)
    assert 500 <= warmup < 564
    left_out = int(np.sum(steps < warmup))  # step 0 and the warmup
    assert f"left out {left_out} points" in err
    assert [c["points"] for c in fitted] == [len(steps) - left_out] * 2
    code, out, err = run_cli(
        ["law", "predict", fit, files[1], "--json", "--plot", tmp_path / "p.png"], capsys
    )
    assert code == 0, err
    scored = json.loads(out)["files"][0]
    assert scored["points"] == len(steps) - left_out
    assert scored["pred_error"] < 1e-4  # a noise-free curve the fit has seen
    code, out, err = run_cli(
        # two quick laws: the step-0 handling is shared; the Multi-Power fit is tested elsewhere
        [
            "law",
            "compare",
            *files,
            "--fit-on",
            "constant",
            "--laws",
            "momentum,forward-momentum",
            "--plot",
            tmp_path / "c.png",
        ],
        capsys,
    )
    assert code == 0, err


def test_options_checked_before_the_work(curve_files, tmp_path, capsys, monkeypatch):
    def no_fitting(*args, **kwargs):
        raise AssertionError("the fit ran before the options were checked")

    monkeypatch.setattr(MomentumLaw, "fit", no_fitting)
    _one_line_error(
        *run_cli(
            ["law", "fit", curve_files["constant"], "--bootstrap", 1, "-o", tmp_path / "f.json"],
            capsys,
        ),
        "--bootstrap 1",
    )
    assert not (tmp_path / "f.json").exists()
    monkeypatch.undo()
    fit = tmp_path / "fit.json"
    assert run_cli(["law", "fit", curve_files["constant"], "-o", fit], capsys)[0] == 0
    _one_line_error(
        *run_cli(["law", "predict", fit, curve_files["cosine"], "--level", 0.5], capsys),
        "--level goes with --bands",
    )


def test_file_system_and_damaged_file_errors_are_one_line(curve_files, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line_error(
        *run_cli(["law", "fit", curve_files["constant"], "-o", blocker / "fit.json"], capsys),
        str(blocker),
    )
    curve = {
        "format": "learnlaw.curve",
        "steps": [1, 2, 3],
        "losses": [3.0, 2.9, 2.8],
        "schedule": {"points": {"steps": [0, float("inf")], "lrs": [0.1, 0.1]}},
    }
    bad = tmp_path / "inf.json"
    bad.write_text(json.dumps(curve))
    _one_line_error(
        *run_cli(["law", "fit", bad, "-o", tmp_path / "f.json"], capsys), "infinite steps"
    )
