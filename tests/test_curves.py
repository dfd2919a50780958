"""Readers on small files holding every kind of dirt; writers round-trip."""

import json
import math
import shutil

import numpy as np
import pytest

from conftest import FIXTURES
from learnlaw.curves import read_curve, write_curve_csv, write_curve_json
from learnlaw.errors import UserError

DIRTY_CSV = """iter,learning_rate,train/loss
0,0.0,9.0
100,0.5,5.0
300,1.0,nan
200,1.0,4.0
400,1.0,inf
300,1.0,3.5
500,1.0,3.0
400,1.0,3.2
900,0.5,2.5
"""
# restart at 300: steps 300 and 400 logged again; step 300 first logged as NaN; 400 as inf;
# 200 appears after 300 (unsorted); 500 -> 900 is a gap.


def test_dirty_csv_is_cleaned_and_reported(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text(DIRTY_CSV)
    c = read_curve(path)
    assert c.steps.tolist() == [0, 100, 200, 300, 400, 500, 900]
    assert c.losses.tolist() == [9.0, 5.0, 4.0, 3.5, 3.2, 3.0, 2.5]
    notes = " | ".join(c.notes)
    assert "dropped 2 NaN or infinite losses" in notes
    assert "out of order" in notes
    # LR interpolated between logged steps, then warmup 0..199 detected (LR reaches 1.0 at 200)
    assert c.lrs()[50] == pytest.approx(0.25) and c.lrs()[700] == pytest.approx(0.75)
    assert c.warmup_steps == 200


def test_duplicates_keep_the_last_value(tmp_path):
    path = tmp_path / "restart.csv"
    path.write_text("step,lr,loss\n1,0.1,5\n2,0.1,4\n3,0.1,3.5\n2,0.1,4.2\n3,0.1,3.6\n4,0.1,3.1\n")
    c = read_curve(path)
    assert c.steps.tolist() == [1, 2, 3, 4] and c.losses.tolist() == [5, 4.2, 3.6, 3.1]
    assert any("dropped 2 repeated steps" in n for n in c.notes)


def test_wandb_history_export_with_sparse_validation(tmp_path):
    path = tmp_path / "wandb_export.csv"
    path.write_text(
        "_step,_runtime,_timestamp,train/loss,lr,val/loss\n"
        "10,1.0,1700000000,6.0,0.001,\n"
        "20,2.0,1700000001,5.0,0.002,\n"
        "30,3.0,1700000002,4.5,0.003,4.8\n"
        "40,4.0,1700000003,4.0,0.003,\n"
        "60,6.0,1700000005,3.8,0.003,4.1\n"
    )
    c = read_curve(path)
    assert c.metadata["loss_column"] == "val/loss"  # validation preferred over training loss
    assert c.steps.tolist() == [30, 60] and c.losses.tolist() == [4.8, 4.1]
    assert c.lrs()[15] == pytest.approx(0.0015)  # the LR series keeps its own, denser steps
    t = read_curve(path, loss_column="train/loss")
    assert t.steps.tolist() == [10, 20, 30, 40, 60]


def test_wandb_panel_export_names_and_bands(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text(
        'Step,"my-run - train/loss","my-run - train/loss__MIN","my-run - train/loss__MAX"\n'
        "1,5.0,4.9,5.1\n2,4.0,3.9,4.1\n3,3.5,3.4,3.6\n"
    )
    with pytest.raises(UserError, match="no learning-rate column"):
        read_curve(path)
    from learnlaw.schedules import parse_schedule

    c = read_curve(path, schedule=parse_schedule("constant:peak=0.1"))
    assert c.losses.tolist() == [5.0, 4.0, 3.5]


def test_jsonl_nested_and_string_numbers(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = [
        {"step": 1, "train": {"loss": 5.0, "lr": 0.1}},
        {"step": 2, "train": {"loss": "NaN", "lr": 0.1}},
        {"step": 3, "train": {"loss": 4.0, "lr": 0.1}, "note": "checkpoint"},
        {"step": 3, "train": {"loss": 3.9, "lr": 0.1}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    c = read_curve(path)
    assert c.steps.tolist() == [1, 3] and c.losses.tolist() == [5.0, 3.9]
    assert c.metadata["loss_column"] == "train/loss"


def test_tensorboard_events_from_the_real_writer():
    c = read_curve(FIXTURES / "tb_run")
    assert c.steps.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    expected = [5 / math.sqrt(s) + 1 for s in (1, 2, 3, 4)] + [
        4 / math.sqrt(s) + 1 for s in (5, 6, 7, 8)
    ]
    assert np.allclose(c.losses, expected, rtol=1e-6)
    assert np.allclose(c.lrs()[[1, 2, 5]], [0.005, 0.01, 0.01], rtol=1e-6)
    assert any("NaN" in n for n in c.notes) and any("repeated" in n for n in c.notes)


def test_tensorboard_folder_of_several_runs_is_refused(tmp_path):
    for run in ("run-a", "run-b"):
        shutil.copytree(FIXTURES / "tb_run", tmp_path / "logs" / run)
    with pytest.raises(UserError, match=r"event files of 2 runs \(run-a, run-b\); give one"):
        read_curve(tmp_path / "logs")
    assert read_curve(tmp_path / "logs" / "run-a").steps.tolist() == list(range(1, 9))
    # a trainer's run folder: scalars at the top, an hparams-only file in a subfolder
    hf = tmp_path / "logs" / "run-a"
    (hf / "1704067200.12").mkdir()
    (hf / "1704067200.12" / "events.out.tfevents.1.vm.1.0").write_bytes(b"")
    assert read_curve(hf).steps.tolist() == list(range(1, 9))
    # only one subfolder holds scalars: that one is the run
    shutil.rmtree(tmp_path / "logs" / "run-b")
    (tmp_path / "logs" / "empty").mkdir()
    (tmp_path / "logs" / "empty" / "events.out.tfevents.2.vm.1.0").write_bytes(b"")
    assert read_curve(tmp_path / "logs").steps.tolist() == list(range(1, 9))


def test_model_size_from_path_and_suffix(tmp_path):
    d = tmp_path / "400M"
    d.mkdir()
    (d / "run.csv").write_text("step,lr,loss\n1,0.1,3\n2,0.1,2.9\n")
    assert read_curve(d / "run.csv").model_size == 4e8
    assert read_curve(f"{d / 'run.csv'}@1.7B").model_size == pytest.approx(1.7e9)


def test_writers_round_trip(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text(DIRTY_CSV)
    c = read_curve(path)
    write_curve_csv(c, tmp_path / "out.csv")
    back = read_curve(tmp_path / "out.csv")
    assert back.steps.tolist() == c.steps.tolist()
    assert np.array_equal(back.losses, c.losses)
    assert np.array_equal(back.logged_lrs(), c.logged_lrs())
    write_curve_json(c, tmp_path / "out.json")
    j = read_curve(tmp_path / "out.json")
    assert np.array_equal(j.lrs(), c.lrs()) and j.warmup_steps == c.warmup_steps


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("", "the file is empty"),
        ("step,lr,loss\n", "no data rows"),
        ("lr,loss\n0.1,3\n", "missing a step column"),
        ("step,lr\n1,0.1\n", "missing a loss column"),
        ("step,lr,loss\n1,0.1,3\n2,0.1,abc\n", "row 3, column 'loss': 'abc' is not a number"),
        ("step,lr,loss\n1,0.1,3\n2.5,0.1,2\n", "row 3: step 2.5 is not a non-negative integer"),
        ("step,lr,loss\n1,0.1,3\n,0.1,2\n", "row 3: the step cell is empty"),
        ("step,lr,loss\n1,0.1,3\n2,0.1,-1\n", "step 2: loss must be positive"),
        ("step,lr,loss\n1,0.1,nan\n", "no finite loss values"),
    ],
)
def test_bad_files_give_one_line_naming_the_place(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        read_curve(path)
    assert fragment in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"step": 1, "loss": 3}\n{"step": 2, "loss": \n')
    with pytest.raises(UserError, match="line 2: not valid JSON"):
        read_curve(path)


def test_export_of_several_runs_is_refused(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text("Step,r1 - train/loss,r2 - train/loss,lr\n1,3.0,9.0,0.1\n2,2.8,8.0,0.1\n")
    with pytest.raises(UserError, match="several columns are 'train/loss'"):
        read_curve(path)


def test_jsonl_step_that_is_not_a_number(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1, "loss": 3, "lr": 0.1}\n{"step": null, "loss": 2, "lr": 0.1}\n')
    with pytest.raises(UserError, match="line 2, field 'step': None is not a number"):
        read_curve(path)


def test_curve_json_is_validated_like_a_table(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "format": "learnlaw.curve",
                "steps": [1, 2],
                "losses": [3.0, -1.0],
                "schedule": {"spec": "constant:peak=0.1"},
            }
        )
    )
    with pytest.raises(UserError, match="step 2: loss must be positive"):
        read_curve(path)
    # a bad schedule in it is named with the file
    obj = {"format": "learnlaw.curve", "steps": [1, 2], "losses": [3.0, 2.0]}
    path.write_text(json.dumps({**obj, "schedule": {"spec": "zigzag:peak=1"}}))
    with pytest.raises(UserError, match=r"c\.json: .*zigzag"):
        read_curve(path)
