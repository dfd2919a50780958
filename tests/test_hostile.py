"""Hostile but realistic input, replayed: every case ends in a curve, a result, or one line
naming what is wrong (exit code 2), and nothing a user made is lost or overwritten.

The first part replays the trial of the reliability issue by class; the second adds cases of
our own (symlinks, encodings, damaged files, sizes, a full disk, signals at every stage)."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import learnlaw.policy.run as run_module
from conftest import FIXTURES, run_cli
from learnlaw.curves import LossCurve, write_curve_csv
from learnlaw.laws import MomentumLaw
from learnlaw.policy import load_config, optimize
from learnlaw.schedules import Schedule

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "perceptron.dim": 8,
    "perceptron.n_train": 64,
    "perceptron.n_desired": 32,
    "perceptron.n_test": 32,
    "train.steps": 30,
    "train.lr": 0.5,
    "outer.epochs": 4,
    "outer.method": "eg",
}
SETS = [f"--set={k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in SMALL.items()]


def one_line(result, fragment: str) -> None:
    code, _out, err = result
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith(("note:", "warning:"))]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


@pytest.fixture
def curve(tmp_path) -> Path:
    law = MomentumLaw(lam=0.999)
    law.lam_, law.params_ = 0.999, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    sched = Schedule.cosine(3e-4, 6000, final=3e-5, warmup=200)
    steps = np.arange(256, 6000, 64)
    return write_curve_csv(LossCurve(steps, law.predict(sched, steps), sched), tmp_path / "c.csv")


@pytest.fixture
def fit_file(tmp_path, curve, capsys) -> Path:
    const = Schedule.constant(3e-4, warmup=200)
    law = MomentumLaw(lam=0.999)
    law.lam_, law.params_ = 0.999, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    steps = np.arange(256, 6000, 64)
    other = write_curve_csv(LossCurve(steps, law.predict(const, steps), const), tmp_path / "k.csv")
    out = tmp_path / "fit.json"
    assert run_cli(["law", "fit", curve, other, "-o", out], capsys)[0] == 0
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "run"
    optimize(config=load_config(None, "perceptron", SMALL), out=out, quiet=True)
    return out


# ---- 1. code execution ------------------------------------------------------------------
def test_a_pickled_checkpoint_or_policy_runs_no_code(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Exploit())
    (run / "checkpoint.npz").write_bytes(payload)
    one_line(run_cli(["policy", "optimize", "--resume", "--out", run], capsys), "not a readable")
    np.savez(run / "policy.npz", policy=np.array([Exploit()], dtype=object), segment=1, steps=30)
    one_line(run_cli(["analyze", run], capsys), "not a readable learnlaw policy file")
    assert not marker.exists()


# ---- 2. data loss -----------------------------------------------------------------------
def test_the_demo_never_deletes_a_users_files(tmp_path, capsys):
    mine = tmp_path / "demo" / "policy"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    one_line(run_cli(["demo", "--out", tmp_path / "demo"], capsys), "is not a learnlaw run")
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_run_never_overwrites_someone_elses_folder(tmp_path, finished_run, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for name in ("config.json", "metrics.json", "curves.csv"):
        (foreign / name).write_text("theirs")
    one_line(
        run_cli(["policy", "optimize", *SETS, "--out", foreign], capsys), "is not a learnlaw run"
    )
    assert all((foreign / n).read_text() == "theirs" for n in ("config.json", "curves.csv"))
    # a finished run whose checkpoint was deleted is neither overwritten nor "resumed"
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoint.npz").unlink()
    before = (run / "metrics.json").read_bytes()
    one_line(run_cli(["policy", "optimize", *SETS, "--out", run], capsys), "already holds")
    one_line(run_cli(["policy", "optimize", "--resume", "--out", run], capsys), "no checkpoint")
    assert (run / "metrics.json").read_bytes() == before


def test_overwriting_a_run_keeps_a_users_picture_in_its_figure_folder(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    figures = run / "analysis"
    figures.mkdir(exist_ok=True)
    (figures / "my-sketch.png").write_bytes(b"\x89PNG\r\n\x1a\n not learnlaw's")
    optimize(config=load_config(None, "perceptron", SMALL), out=run, overwrite=True, quiet=True)
    assert (figures / "my-sketch.png").exists()


def test_a_damaged_tokenizer_cache_is_retrained(tmp_path, monkeypatch):
    from learnlaw.tasks.text import train_tokenizer

    monkeypatch.setenv("LEARNLAW_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), 5)) for _ in range(400)]
    docs = [" ".join(rng.choice(words, 60)) for _ in range(60)]
    first = train_tokenizer(docs, 300)
    (cached,) = (tmp_path / "cache" / "tokenizers").glob("*.json")
    cached.write_text(cached.read_text()[:100])  # a killed copy, a full disk
    again = train_tokenizer(docs, 300)
    assert again.encode(docs[0]).ids == first.encode(docs[0]).ids


def test_plots_and_csvs_of_the_user_are_not_replaced(tmp_path, fit_file, capsys):
    plot = tmp_path / "schedule-compare.png"
    plot.write_bytes(b"my own picture")
    spec = "cosine:peak=3e-4,final=3e-5,warmup=200,total=6000"
    one_line(
        run_cli(["schedule", "compare", fit_file, spec, "--plot", plot], capsys),
        "exists and was not written by learnlaw",
    )
    assert plot.read_bytes() == b"my own picture"
    table = tmp_path / "mine.csv"
    table.write_text("step,lr,loss\n1,2,3\n")
    args = ["law", "predict", fit_file, "--schedule", spec, "--csv", table]
    one_line(run_cli(args, capsys), "or --force to replace it")
    assert run_cli([*args, "--force"], capsys)[0] == 0
    # learnlaw's own outputs are replaced on a second run
    ours = tmp_path / "ours.png"
    assert run_cli(["schedule", "compare", fit_file, spec, "--plot", ours], capsys)[0] == 0
    assert run_cli(["schedule", "compare", fit_file, spec, "--plot", ours], capsys)[0] == 0


# ---- 3. one run per folder, checkpoints bound to their run -------------------------------
def test_a_second_run_into_a_busy_folder_is_refused(tmp_path, capsys):
    from learnlaw.policy.runfolder import RunFolder
    from learnlaw.tasks import build_task

    config = load_config(None, "perceptron", SMALL)
    task = build_task("perceptron", config.task_options, 0)
    with RunFolder.start(tmp_path / "busy", config, task, resume=False):
        one_line(
            run_cli(["policy", "optimize", "--resume", "--out", tmp_path / "busy"], capsys),
            "another learnlaw run is using this folder",
        )


def test_a_checkpoint_from_another_run_is_refused(tmp_path, finished_run, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(finished_run, a)
    optimize(config=load_config(None, "perceptron", SMALL), out=b, quiet=True)
    shutil.copy(a / "checkpoint.npz", b / "checkpoint.npz")
    one_line(run_cli(["policy", "optimize", "--resume", "--out", b], capsys), "another run")


# ---- 4. sizes checked before allocating -------------------------------------------------
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["law", "predict", "FIT", "--schedule", "cosine:peak=1e-3,total=1e12"], "80.0 TB"),
        (["law", "predict", "FIT", "--schedule", "cosine:peak=1e-3,total=1e9"], "80.0 GB"),
        (
            [
                "schedule",
                "optimize",
                "FIT",
                "--total",
                "100000000",
                "--peak",
                "1e-3",
                "-o",
                "s.csv",
            ],
            "degenerate",  # a momentum fit: refused before any size matters
        ),
    ],
)
def test_huge_schedules_are_refused_with_the_estimate(tmp_path, fit_file, capsys, args, fragment):
    args = [fit_file if a == "FIT" else (tmp_path / a if a.endswith(".csv") else a) for a in args]
    one_line(run_cli(["--max-memory", "8G", *args], capsys), fragment)


def test_a_huge_schedule_optimisation_is_refused_before_allocating(tmp_path, capsys):
    from learnlaw.errors import UserError
    from learnlaw.laws import MultiPowerLaw
    from learnlaw.planning import optimize_schedule

    law = MultiPowerLaw()
    law.params_ = {
        "L0": 2.0,
        "A": 0.5,
        "alpha": 0.5,
        "B": 400.0,
        "C": 2.0,
        "beta": 0.5,
        "gamma": 0.5,
    }
    with pytest.raises(
        UserError, match=r"optimising a schedule of 100000000 steps would need about 32\.0 GB"
    ):
        optimize_schedule(law, 100_000_000, 1e-3)


def test_huge_tasks_and_endless_files_are_refused(tmp_path, capsys):
    one_line(
        run_cli(
            [
                "policy",
                "optimize",
                "--set",
                "perceptron.n_train=100000000",
                "--out",
                tmp_path / "p",
            ],
            capsys,
        ),
        "409.6 GB of memory",
    )
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
    one_line(
        run_cli(["law", "fit", "/dev/zero", "-o", tmp_path / "z.json"], capsys), "not a log file"
    )
    one_line(run_cli(["--max-memory", "lots", "law", "fit", "x"], capsys), "--max-memory 'lots'")


# ---- 5. long logs: binned, noted, cheap -------------------------------------------------
def test_a_long_per_step_log_is_binned_with_a_note(tmp_path, capsys):
    steps = np.arange(0, 200_000)
    lr = Schedule.cosine(3e-4, 200_000, final=3e-5, warmup=1000).values(200_000)
    rng = np.random.default_rng(1)
    loss = (2.5 + 5 * (1 + steps / 500.0) ** -0.4) * (1 + 0.01 * rng.standard_normal(len(steps)))
    path = tmp_path / "long.csv"
    with open(path, "w") as f:
        f.write("step,lr,train/loss\n")
        np.savetxt(f, np.column_stack([steps, lr, loss]), delimiter=",", fmt=["%d", "%.9g", "%.6f"])
    code, _out, err = run_cli(["law", "fit", path, "-o", tmp_path / "f.json"], capsys)
    assert code == 0, err
    assert "averaged 199000 logged points into" in err
    fitted = json.loads((tmp_path / "f.json").read_text())["fit"]["curves"][0]
    assert fitted["points"] <= 1200 and fitted["pred_error"] < 0.01


# ---- 6. silently wrong results ----------------------------------------------------------
def test_damaged_tensorboard_records_are_errors_not_values(tmp_path, capsys):
    src = sorted((FIXTURES / "tb_run").glob("*tfevents*"))[0]
    data = bytearray(src.read_bytes())
    for where, fragment in ((3, "damaged length"), (len(data) // 2, "damaged data")):
        bad = bytearray(data)
        bad[where] ^= 0x10
        path = tmp_path / f"x{where}.tfevents.1"
        path.write_bytes(bytes(bad))
        one_line(run_cli(["law", "fit", path, "-o", tmp_path / "f.json"], capsys), fragment)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"params": {"alpha": float("nan")}}, "damaged fit file"),
        ({"params": {"alpha": -5.0}}, "parameter alpha = -5.0: outside"),
        ({"learned": {"lam": 5}}, "learned lambda = 5"),
        ({"hyperparameters": {"lam": "often"}}, "lam = 'often'"),
        ({"fit": None}, None),  # a fit record is optional: still predicts
        ({"params": [1, 2]}, "damaged fit file"),
        ({"format_version": 99}, "fit format version 99"),
    ],
)
def test_fit_files_are_validated(tmp_path, fit_file, capsys, change, fragment):
    obj = json.loads(fit_file.read_text())
    for key, value in change.items():
        obj[key] = (
            {**obj[key], **value}
            if isinstance(value, dict) and isinstance(obj.get(key), dict)
            else value
        )
    fit_file.write_text(json.dumps(obj).replace("NaN", "NaN"))
    args = ["law", "predict", fit_file, "--schedule", "constant:peak=1e-3,total=3000"]
    if fragment is None:
        assert run_cli(args, capsys)[0] == 0
    else:
        one_line(run_cli(args, capsys), fragment)


def test_quiet_drops_are_reported(tmp_path, capsys):
    nan_lr = tmp_path / "nanlr.csv"
    nan_lr.write_text(
        "step,lr,loss\n"
        + "".join(f"{s},{'nan' if s == 5 else 0.001},{3 - s / 100}\n" for s in range(1, 40))
    )
    code, _, err = run_cli(["law", "fit", nan_lr, "-o", tmp_path / "f.json"], capsys)
    assert code == 0 and "dropped 1 learning rates" in err, err
    jl = tmp_path / "odd.jsonl"
    rows = [
        {"step": s, "lr": 1e-3, "loss": [1, 2] if s == 7 else (True if s == 8 else 3 - s / 100)}
        for s in range(1, 40)
    ]
    jl.write_text("\n".join(json.dumps(r) for r in rows))
    code, _, err = run_cli(["law", "fit", jl, "-o", tmp_path / "g.json"], capsys)
    assert code == 0 and "dropped 2 rows whose 'loss' is no number" in err, err
    one_line(run_cli(["law", "fit", jl, str(jl), "-o", tmp_path / "h.json"], capsys), "given twice")
    one_line(
        run_cli(
            ["law", "predict", tmp_path / "f.json", "--schedule", "constant:peak=1,peak=2,total=9"],
            capsys,
        ),
        "peak is given twice",
    )


# ---- 7. tracebacks become one line ------------------------------------------------------
def test_damaged_run_files_give_one_line(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    data = (run / "policy.npz").read_bytes()
    (run / "policy.npz").write_bytes(data[: len(data) // 2])
    one_line(run_cli(["analyze", run], capsys), "not a readable learnlaw policy file")
    shutil.copy(finished_run / "policy.npz", run / "policy.npz")
    (run / "metrics.json").write_text(json.dumps({"kept_epoch": "x", "compression_ratio": 7}))
    assert run_cli(["policy", "evaluate", run], capsys)[0] == 0  # optional values: shown as -
    (run / "config.json").write_text("[1, 2]")
    one_line(run_cli(["analyze", run], capsys), "expected a JSON object")


# ---- 8. messages that say what happened -------------------------------------------------
def test_options_are_checked_and_messages_are_right(tmp_path, finished_run, capsys):
    one_line(
        run_cli(
            ["policy", "optimize", *SETS, "--max-minutes", "0", "--out", tmp_path / "a"], capsys
        ),
        "--max-minutes 0",
    )
    one_line(
        run_cli(
            ["policy", "optimize", *SETS, "--max-minutes", "-1", "--out", tmp_path / "b"], capsys
        ),
        "--max-minutes -1",
    )
    one_line(
        run_cli(["analyze", finished_run, "--zero-weight", "nan"], capsys), "--zero-weight nan"
    )
    one_line(run_cli(["analyze", finished_run, "--away", "-1"], capsys), "--away -1.0")
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "config.json").unlink()
    code, _, err = run_cli(["analyze", run], capsys)
    one_line((code, "", err), "not a learnlaw run folder (no config.json)")
    assert "--resume" not in err
    # a killed atomic write leaves a hidden temporary: the next run in the folder removes it
    run2 = tmp_path / "run2"
    shutil.copytree(finished_run, run2)
    stale = run2 / ".metrics.json.learnlaw-partial.abc123.tmp"
    stale.write_text("{")
    earlier = run2 / ".checkpoint.npz.k2_x9abq.tmp"  # the form of earlier learnlaw versions
    earlier.write_text("{")
    users = run2 / ".metrics.json.abc123.tmp"  # named like neither: kept
    users.write_text("mine")
    assert run_cli(["policy", "optimize", "--resume", "--quiet", "--out", run2], capsys)[0] == 0
    assert not stale.exists() and not earlier.exists() and users.read_text() == "mine"
    # an output that cannot be written is found before the work, not after it
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line(
        run_cli(
            [
                "law",
                "fit",
                ROOT / "src/learnlaw/data/curves/constant.csv",
                "-o",
                blocker / "fit.json",
            ],
            capsys,
        ),
        "a part of the folder path is a file",
    )


# ---- our own cases ----------------------------------------------------------------------
def _write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("utf16.csv", "step,lr,loss\n1,0.1,3\n".encode("utf-16"), "not UTF-8 text"),
        ("latin1.csv", "step,lr,lössé\n1,0.1,3\n".encode("latin-1"), "not UTF-8 text"),
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty"),
        ("header.csv", b"step,lr,loss\n", "no data rows"),
        ("wide.csv", b"step,lr,loss\n1,0.1,3,9\n", "row 2: 4 cells"),
        (
            "negstep.csv",
            b"step,lr,loss\n-1,0.1,3\n2,0.1,2\n",
            "step -1.0 is not a non-negative integer",
        ),
        ("fracstep.csv", b"step,lr,loss\n1.5,0.1,3\n", "step 1.5 is not a non-negative integer"),
        ("zeroloss.csv", b"step,lr,loss\n1,0.1,0\n2,0.1,1\n", "loss must be positive"),
        ("nanloss.csv", b"step,lr,loss\n1,0.1,nan\n2,0.1,nan\n", "no finite loss values"),
        ("textloss.csv", b"step,lr,loss\n1,0.1,three\n", "'three' is not a number"),
        ("nostep.csv", b"time,lr,loss\n1,0.1,3\n", "missing a step column"),
        ("noloss.csv", b"step,lr,acc\n1,0.1,3\n", "missing a loss column"),
        ("nul.csv", b'step,lr,loss\n1,0.1,"3\x00"\n', "is not a number"),
        ("bad.jsonl", b'{"step": 1, "loss": 3\n', "line 1: not valid JSON"),
        ("array.jsonl", b"[1, 2, 3]\n", "expected a JSON object"),
        ("deep.jsonl", ("[" * 100000 + "]" * 100000).encode(), "JSON nested too deeply"),
        ("random.tfevents.1", os.urandom(4096), "damaged length"),
    ],
)
def test_bad_log_files_give_one_line(tmp_path, capsys, name, content, fragment):
    path = _write(tmp_path / name, content)
    one_line(run_cli(["law", "fit", path, "-o", tmp_path / "f.json"], capsys), fragment)


def test_windows_line_ends_quotes_and_a_byte_order_mark_read(tmp_path):
    from learnlaw import read_curve

    text = '\ufeffstep,lr,"loss"\r\n1,0.1,"3.0"\r\n2,0.1,2.5\r\n3,0.1,2.25\r\n'
    curve = read_curve(_write(tmp_path / "win.csv", text.encode()))
    assert curve.steps.tolist() == [1, 2, 3] and curve.losses.tolist() == [3.0, 2.5, 2.25]


def test_symlinks_folders_and_special_files(tmp_path, capsys):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    one_line(run_cli(["law", "fit", loop, "-o", tmp_path / "f.json"], capsys), "loop.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    one_line(run_cli(["law", "fit", folder, "-o", tmp_path / "f.json"], capsys), "folder.csv")
    one_line(
        run_cli(["law", "predict", tmp_path, "--schedule", "constant:peak=1,total=9"], capsys),
        "is a directory",
    )
    one_line(
        run_cli(["law", "fit", tmp_path / "missing.csv", "-o", tmp_path / "f.json"], capsys),
        "no such file",
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--schedule", "triangle:peak=1,total=9"], "unknown kind 'triangle'"),
        (["--schedule", "cosine:peak=nan,total=9"], "peak='nan' is not a number"),
        (["--schedule", "wsd:peak=1,total=9,decay_frac=1.5"], "decay_frac must be in (0, 1]"),
        (["--schedule", "csv:path=/nonexistent/x.csv"], "no such file"),
        (["--schedule", "constant:peak=1,total=9", "--level", "0.5"], "--level goes with --bands"),
        (["--schedule", "constant:peak=1,total=9", "--bands"], "no bootstrap replicas"),
    ],
)
def test_bad_predict_options(fit_file, capsys, args, fragment):
    one_line(run_cli(["law", "predict", fit_file, *args], capsys), fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--warmup-steps", "-1"], "--warmup-steps -1"),
        (["--bootstrap", "1"], "--bootstrap 1"),
        (["--lambda", "1.5"], "--lambda 1.5"),
        (["--law", "cubic"], "--law"),
    ],
)
def test_bad_fit_options(tmp_path, curve, capsys, args, fragment):
    one_line(run_cli(["law", "fit", curve, *args, "-o", tmp_path / "f.json"], capsys), fragment)


@pytest.mark.parametrize(
    "toml, fragment",
    [
        ("[train]\nsteps = 100000000000000000000000\n", "would need about 2.6e+13 PB"),
        ("[train]\nsteps = 1e9\n", "train.steps = 1000000000.0: expected an integer"),
        ('task = "os:path"\n', "is not a learnlaw Task class"),
        ('task = "no_such_module_xyz:Task"\n', "cannot import no_such_module_xyz"),
        ("[perceptron\n", "not valid TOML"),
        ('[outer]\nlr = "fast"\n', "outer.lr = 'fast'"),
    ],
)
def test_bad_config_files(tmp_path, capsys, toml, fragment):
    cfg = _write(tmp_path / "c.toml", toml)
    one_line(
        run_cli(["policy", "optimize", "--config", cfg, "--out", tmp_path / "o"], capsys), fragment
    )


def test_bad_run_folders_and_fit_files(tmp_path, finished_run, fit_file, capsys):
    afile = _write(tmp_path / "afile", "x")
    one_line(run_cli(["policy", "optimize", *SETS, "--out", afile], capsys), "is a file")
    one_line(run_cli(["policy", "optimize", *SETS, "--out", afile / "sub"], capsys), "afile")
    one_line(
        run_cli(
            [
                "law",
                "predict",
                finished_run / "config.json",
                "--schedule",
                "constant:peak=1,total=9",
            ],
            capsys,
        ),
        "not a learnlaw fit",
    )
    one_line(
        run_cli(
            [
                "law",
                "predict",
                _write(tmp_path / "t.json", '{"format": "learnlaw.fit",'),
                "--schedule",
                "constant:peak=1,total=9",
            ],
            capsys,
        ),
        "not a JSON file",
    )
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with np.load(run / "policy.npz") as z:
        w = -z["policy"]
    np.savez(run / "policy.npz", policy=w, segment=1, steps=30)
    one_line(run_cli(["analyze", run], capsys), "damaged policy file")
    (run / "metrics.json").unlink()
    shutil.copy(finished_run / "policy.npz", run / "policy.npz")
    assert run_cli(["analyze", run, "--stride", "10"], capsys)[0] == 0  # metrics are optional


def test_a_full_disk_leaves_the_old_file_and_one_line(tmp_path, curve):
    """A write that fails (here: a 512-byte file-size limit, as a full disk) names the target,
    leaves no temporary and keeps the previous file."""
    out = tmp_path / "fit.json"
    out.write_text('{"format": "learnlaw.fit", "old": true}')

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    result = subprocess.run(
        [sys.executable, "-m", "learnlaw", "law", "fit", str(curve), "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )
    lines = [x for x in result.stderr.splitlines() if x.startswith("learnlaw: error")]
    assert result.returncode == 2 and len(lines) == 1 and "cannot write there" in lines[0], (
        result.stderr
    )
    assert json.loads(out.read_text())["old"] is True
    assert not list(tmp_path.glob(".fit.json.*"))


# ---- signals at every stage of a run: the resumed run gives the uninterrupted numbers -----
STAGES = ["uniform run", "hypergradient", "checkpoint write", "outputs"]


@pytest.mark.parametrize("stage", STAGES)
def test_an_interrupt_at_any_stage_resumes_to_the_same_numbers(
    tmp_path, finished_run, monkeypatch, stage
):
    config = load_config(None, "perceptron", SMALL)
    whole = json.loads((finished_run / "metrics.json").read_text())
    calls = {"n": 0}

    def interrupt_once(real, at):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == at:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return wrapper

    if stage == "uniform run":
        monkeypatch.setattr(run_module, "run_policy", interrupt_once(run_module.run_policy, 1))
    elif stage == "hypergradient":
        monkeypatch.setattr(
            run_module, "hypergradient", interrupt_once(run_module.hypergradient, 3)
        )
    elif stage == "checkpoint write":
        import learnlaw.files as files

        real = files.atomic_write

        def partial(path, write):
            if Path(path).name == "checkpoint.npz" and calls["n"] == 2:
                calls["n"] += 1
                return real(
                    path, lambda tmp: (write(tmp), (_ for _ in ()).throw(KeyboardInterrupt))
                )
            calls["n"] += Path(path).name == "checkpoint.npz"
            return real(path, write)

        monkeypatch.setattr(files, "atomic_write", partial)
    else:
        from learnlaw.policy.runfolder import RunFolder

        monkeypatch.setattr(RunFolder, "write_outputs", interrupt_once(RunFolder.write_outputs, 1))
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        optimize(config=config, out=out, quiet=True)
    monkeypatch.undo()
    if not (out / "checkpoint.npz").exists():  # stopped before the first checkpoint: start again
        shutil.rmtree(out)
        again = optimize(config=config, out=out, quiet=True)
    else:
        again = optimize(config=config, out=out, resume=True, quiet=True)
    assert again.metrics["objective_per_epoch"] == whole["objective_per_epoch"]
    assert again.metrics["kept_epoch"] == whole["kept_epoch"]


def test_sigterm_to_a_running_command_stops_it_cleanly_and_it_resumes(tmp_path, finished_run):
    out = tmp_path / "run"
    # saves only at the end: the finished epochs are saved on the way out
    sets = [s.replace("outer.epochs=4", "outer.epochs=400") for s in SETS]
    sets.append("--set=outer.save_every=1000")
    cmd = [
        sys.executable,
        "-m",
        "learnlaw",
        "policy",
        "optimize",
        *sets,
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "the last finished epoch is saved" in err, err
    assert "continue with --resume" in err
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "learnlaw",
            "policy",
            "optimize",
            "--resume",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    resumed = json.loads((out / "metrics.json").read_text())
    fresh = optimize(
        config=load_config(None, "perceptron", {**SMALL, "outer.epochs": 400}), quiet=True
    )
    assert resumed["objective_per_epoch"] == fresh.metrics["objective_per_epoch"]


def test_user_error_stays_one_line_whatever_it_quotes():
    # a key or cell with line breaks, quoted in a message, must not split the CLI's one line
    from learnlaw.errors import UserError

    quoted = "key\nwith\r\nbreaks\u2028and\x85more"
    message = str(UserError(f"fit.json: unexpected key {quoted!s}"))
    assert len(message.splitlines()) == 1
    assert "key\\nwith\\r\\nbreaks\\u2028and\\x85more" in message


def test_a_claimed_folder_resumes_only_its_own_job(tmp_path):
    from learnlaw.errors import UserError
    from learnlaw.folders import claim_folder, unlock_folder

    record = {"format": "learnlaw.test", "config": {"a": 1}}
    fd, first = claim_folder(tmp_path / "job", record, resume=False, what="test job")
    with pytest.raises(UserError, match="another learnlaw test job is using"):
        claim_folder(tmp_path / "job", record, resume=True, what="test job")
    unlock_folder(fd)
    partial = tmp_path / "job" / ".scores.npy.learnlaw-partial.x1y2.tmp"  # a killed write's
    users = tmp_path / "job" / ".draft.tmp"
    partial.write_bytes(b"\x00")
    users.write_text("mine")
    fd, again = claim_folder(tmp_path / "job", record, resume=True, what="test job")
    unlock_folder(fd)
    assert again["run_id"] == first["run_id"]
    assert not partial.exists() and users.read_text() == "mine"
    other = {**record, "config": {"a": 2}}
    with pytest.raises(UserError, match="different configuration"):
        claim_folder(tmp_path / "job", other, resume=True, what="test job")
    with pytest.raises(UserError, match=r"not empty; continue it with --resume \(resume=True\)"):
        claim_folder(tmp_path / "job", record, resume=False, what="test job")
    with pytest.raises(UserError, match="not a learnlaw test job folder"):
        claim_folder(tmp_path / "job", {**record, "format": "x"}, resume=True, what="test job")
    # a refused job leaves no trace: no folder it made, no lock file in someone else's folder
    with pytest.raises(UserError, match="nothing to resume"):
        claim_folder(tmp_path / "new" / "job", record, resume=True, what="test job")
    assert not (tmp_path / "new").exists()
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        claim_folder(users, record, resume=False, what="test job")
    assert [p.name for p in users.iterdir()] == ["notes.txt"]
    from learnlaw.policy import load_config, optimize

    config = load_config(None, "perceptron", SMALL)
    with pytest.raises(UserError, match="not empty and is not a learnlaw run"):
        optimize(config=config, out=users, quiet=True)
    with pytest.raises(UserError):
        optimize(config=config, out=tmp_path / "absent", resume=True, quiet=True)
    assert [p.name for p in users.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "absent").exists()


def test_messages_name_the_real_problem(tmp_path, finished_run, capsys):
    # a missing data file is named before the tokenizer that would sit beside it
    one_line(
        run_cli(
            [
                "pretrain",
                "--data",
                tmp_path / "missing.jsonl",
                "--test",
                tmp_path / "t.jsonl",
                "--out",
                tmp_path / "p",
            ],
            capsys,
        ),
        "missing.jsonl: no such file",
    )
    # a file where a run folder belongs
    (tmp_path / "curve.csv").write_text("step,loss\n1,2\n")
    one_line(run_cli(["analyze", tmp_path / "curve.csv"], capsys), "is a file, expected a run")
    # resuming with one --set and no --config starts from the run's own configuration, so the
    # refusal names only what the --set changed
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    refused = run_cli(
        ["policy", "optimize", "--resume", "--out", run, "--set", "train.lr=0.123"], capsys
    )
    one_line(refused, "train.lr")
    assert "outer.method" not in refused[2]
    # and a --set that names no key of the run is refused as in a config file
    one_line(
        run_cli(["policy", "optimize", "--resume", "--out", run, "--set", "train.lrr=1"], capsys),
        "unknown key",
    )
