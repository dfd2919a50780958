"""Mini-batch AdamW pre-training: batches, the curve CSV the laws read, exact resume after a
kill, the command line and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from learnlaw.errors import UserError
from learnlaw.pretrain import (
    ModelConfig,
    PretrainConfig,
    TrainingConfig,
    batch_indices,
    pretrain,
    steps_to_reach,
)

VOCAB = 50


def tiny(**train) -> PretrainConfig:
    t = dict(steps=30, batch_size=8, warmup=4, eval_every=5, checkpoint_every=10)
    return PretrainConfig(
        train=TrainingConfig(**{**t, **train}),
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
    )


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    # a learnable language: each token is followed by (token + 1) mod VOCAB most of the time
    start = rng.integers(0, VOCAB, size=(120, 1))
    seqs = (start + np.arange(12)) % VOCAB
    noise = rng.random(seqs.shape) < 0.1
    seqs[noise] = rng.integers(0, VOCAB, size=noise.sum())
    return seqs[:100], seqs[100:]


def test_batches_visit_every_sequence_once_per_epoch():
    seen = np.concatenate([batch_indices(t, 7, 21, seed=3) for t in range(3)])
    assert sorted(seen) == list(range(21))
    np.testing.assert_array_equal(batch_indices(5, 7, 21, 3), batch_indices(5, 7, 21, 3))
    # a batch across an epoch boundary takes the end of one permutation and the start of the next
    first = np.random.default_rng([3, 0]).permutation(20)
    second = np.random.default_rng([3, 1]).permutation(20)
    np.testing.assert_array_equal(batch_indices(2, 8, 20, 3), np.r_[first[16:], second[:4]])


def test_steps_to_reach_interpolates_between_evaluations():
    steps, losses = np.array([0, 10, 20, 30]), np.array([5.0, 4.0, 3.0, 2.5])
    assert steps_to_reach(steps, losses, 3.5) == pytest.approx(15.0)
    assert steps_to_reach(steps, losses, 5.0) == 0.0
    assert steps_to_reach(steps, losses, 2.0) is None


def test_pretraining_learns_and_writes_a_curve_the_laws_read(data, tmp_path):
    from learnlaw.curves import read_curve

    result = pretrain(*data, VOCAB, tiny(), tmp_path / "run", quiet=True)
    assert result.test_loss[-1] < result.test_loss[0] - 0.3
    assert list(result.steps) == [0, 5, 10, 15, 20, 25, 30]
    curve = read_curve(tmp_path / "run" / "curve.csv", warmup_steps=4)
    np.testing.assert_allclose(
        curve.losses, result.test_loss[curve.steps >= 0][: len(curve.losses)]
    )
    # the logged LR is the schedule's: warmup to the peak, cosine down to min_lr at the end
    assert result.lr[0] == 0.0 and result.lr[-1] == pytest.approx(3e-4)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["final_test_loss"] == pytest.approx(result.test_loss[-1])
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
    again = pretrain(*data, VOCAB, tiny(), quiet=True)
    np.testing.assert_array_equal(again.test_loss, result.test_loss)


def test_a_killed_run_resumes_to_the_same_numbers(data, tmp_path, monkeypatch):
    import learnlaw.pretrain as pt

    whole = pretrain(*data, VOCAB, tiny(schedule="wsd"), quiet=True)
    real = pt.mean_loss
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # the evaluation at step 20, after the checkpoint at step 10
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pt, "mean_loss", dying)
    with pytest.raises(KeyboardInterrupt):
        pretrain(*data, VOCAB, tiny(schedule="wsd"), tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "checkpoint.npz").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(pt, "mean_loss", real)
    with pytest.raises(UserError, match="not empty"):
        pretrain(*data, VOCAB, tiny(schedule="wsd"), tmp_path / "run", quiet=True)
    resumed = pretrain(
        *data, VOCAB, tiny(schedule="wsd"), tmp_path / "run", resume=True, quiet=True
    )
    np.testing.assert_array_equal(resumed.steps, whole.steps)
    np.testing.assert_array_equal(resumed.train_loss, whole.train_loss)
    np.testing.assert_array_equal(resumed.test_loss, whole.test_loss)
    for k in whole.params:
        assert torch.equal(resumed.params[k], whole.params[k])
    # a finished run has nothing to resume, and says so (not "start again without resuming")
    with pytest.raises(UserError, match="the run is finished"):
        pretrain(*data, VOCAB, tiny(schedule="wsd"), tmp_path / "run", resume=True, quiet=True)


def test_cli_trains_on_selected_json_lines(data, tmp_path, capsys):
    from learnlaw.tasks.corpus import write_sequences
    from learnlaw.tasks.text import load_corpus, train_tokenizer

    tok = train_tokenizer(load_corpus("wiki")[:50], 300, cache=False)
    tok.save(str(tmp_path / "tokenizer.json"))
    write_sequences(tmp_path / "train.jsonl", data[0] + 200, tok)
    write_sequences(tmp_path / "test.jsonl", data[1] + 200, tok)
    args = ["pretrain", "--data", tmp_path / "train.jsonl", "--test", tmp_path / "test.jsonl"]
    sets = [
        "--set=train.steps=10",
        "--set=train.eval_every=5",
        "--set=train.checkpoint_every=5",
        "--set=train.warmup=2",
        "--set=model.d_model=16",
        "--set=model.d_ff=32",
    ]
    code, out, err = run_cli([*args, "--out", tmp_path / "run", "--quiet", *sets], capsys)
    assert code == 0, err
    assert "final test loss" in out and (tmp_path / "run" / "curve.csv").exists()
    code, _, err = run_cli(
        [*args, "--out", tmp_path / "run2", "--set=train.steps=10", "--set=train.warmup=10"], capsys
    )
    assert code == 2 and "train.warmup" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bad.jsonl").write_text('{"ids": [1, 2, 3]}\n{"ids": [1, 2]}\n')
    code, _, err = run_cli(
        [
            "pretrain",
            "--data",
            tmp_path / "bad.jsonl",
            "--test",
            tmp_path / "test.jsonl",
            "--out",
            tmp_path / "run3",
        ],
        capsys,
    )
    assert code == 2 and "line 2" in err


def test_lists_train_as_arrays_do_and_bad_data_is_named(data):
    """Nested lists are the arrays they spell; anything that is not sequences x length
    integer ids is refused saying what was given."""
    train, test = data
    as_arrays = pretrain(train, test, VOCAB, tiny(steps=5, eval_every=5), quiet=True)
    as_lists = pretrain(
        train.tolist(), test.tolist(), VOCAB, tiny(steps=5, eval_every=5), quiet=True
    )
    np.testing.assert_array_equal(as_lists.test_loss, as_arrays.test_loss)
    for bad, fragment in [
        ([[1, 2, 3], [1, 2]], "training data: sequences of different lengths"),
        ([], r"got a list of shape \(0,\)"),
        (train[0].tolist(), r"got a list of shape \(12,\)"),
        (train.astype(float), "expected integer token ids, got dtype float64"),
    ]:
        with pytest.raises(UserError, match=fragment):
            pretrain(bad, test, VOCAB, tiny())
