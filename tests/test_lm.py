"""The language-model task: exact hypergradients through the transformer, corruption, a tiny
end-to-end run (corpus -> tokenizer -> policy optimisation -> analysis), and bad input."""

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from learnlaw.errors import UserError
from learnlaw.policy.engine import Policy, hypergradient
from learnlaw.tasks.lm import LMConfig, LMTask, corrupt

TINY = dict(
    vocab_size=300,
    seq_len=8,
    n_train=6,
    n_desired=4,
    n_test=4,
    d_model=8,
    n_layers=1,
    n_heads=2,
    d_ff=16,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNLAW_CACHE", str(tmp_path / "cache"))


def test_hypergradient_through_the_transformer_equals_unrolled_autograd():
    task = LMTask(LMConfig(**TINY), 0, dtype=torch.float64)
    policy = Policy(
        torch.softmax(
            torch.randn(4, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64), 1
        )
    )
    _, grads = hypergradient(task, policy, 0.5, 4, checkpoint_every=2)
    w = policy.weights.clone().requires_grad_(True)
    theta = task.theta0.clone().requires_grad_(True)
    total = 0.0
    for t in range(4):
        (g,) = torch.autograd.grad(w[t] @ task.losses(theta, "train"), theta, create_graph=True)
        theta = theta - 0.5 * g
        total = total + task.losses(theta, "objective").mean()
    (expected,) = torch.autograd.grad(total / 4, w)
    assert torch.allclose(grads, expected, rtol=1e-8, atol=1e-13)


def test_chunked_passes_equal_full_batch():
    whole = LMTask(LMConfig(**TINY), 0, dtype=torch.float64)
    chunked = LMTask(LMConfig(**{**TINY, "chunk_size": 4}), 0, dtype=torch.float64)
    gamma = torch.full((6,), 1 / 6, dtype=torch.float64)
    v = torch.randn_like(whole.theta0)
    a, b = (
        whole.dots_and_hvp(whole.theta0, gamma, v),
        chunked.dots_and_hvp(chunked.theta0, gamma, v),
    )
    assert torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])
    assert torch.allclose(
        whole.train_gradient(whole.theta0, gamma), chunked.train_gradient(chunked.theta0, gamma)
    )


def test_corruption_edits_keep_length_and_record_which():
    rng = np.random.default_rng(0)
    seq = np.arange(64)
    out = corrupt(seq, np.arange(100, 132), 20, 5000, rng)
    assert len(out) == 64 and not np.array_equal(out, seq)
    task = LMTask(LMConfig(**{**TINY, "n_train": 20, "corrupt_fraction": 0.5}), 3)
    assert task.corrupted.sum() == 10


def test_tiny_lm_run_end_to_end(tmp_path, capsys):
    small = {**TINY, "n_train": 16, "n_desired": 8, "n_test": 8}
    args = [f"--set=lm.{k}={v}" for k, v in small.items()]
    out = tmp_path / "run"
    code, _, err = run_cli(
        [
            "policy",
            "optimize",
            "--task",
            "lm",
            *args,
            "--set",
            "train.steps=6",
            "--set",
            "train.lr=0.5",
            "--set",
            'train.dtype="float32"',
            "--set",
            "outer.epochs=2",
            "--set",
            'outer.method="eg"',
            "--set",
            "outer.segment=4",
            "--quiet",
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["objective_per_epoch"]) == 3 and "corrupted_weight_ratio" in metrics
    code, _stdout, err = run_cli(["analyze", out], capsys)
    assert code == 0, err
    assert (out / "report.html").exists()
    analysis = json.loads((out / "analysis.json").read_text())
    # the policy's weight on corrupted vs clean sequences, recomputed from policy.npz by hand
    rows = np.load(out / "policy.npz")["policy"].astype(float)
    rows /= rows.sum(1, keepdims=True)
    weights = np.repeat(rows, 4, axis=0)[:6]  # one row per 4 steps: the weights at every step
    corrupted = LMTask(
        LMConfig(**small), json.loads((out / "config.json").read_text())["config"]["seed"]
    ).corrupted
    by_hand = weights[:, corrupted].mean(1) / weights[:, ~corrupted].mean(1)
    ratio = analysis["corrupted_weight_ratio"]
    assert ratio["mean"] == pytest.approx(by_hand.mean(), rel=1e-6)
    assert ratio["last_step"] == pytest.approx(by_hand[-1], rel=1e-6)
    assert (out / "analysis" / "corrupted_weight.png").exists()


def test_bad_corpora(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("   \n\n")
    with pytest.raises(UserError, match="no text found"):
        LMTask(LMConfig(**{**TINY, "corpus": str(empty)}), 0)
    with pytest.raises(UserError, match="no such file or folder"):
        LMTask(LMConfig(**{**TINY, "corpus": str(tmp_path / "nowhere")}), 0)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(UserError, match="cannot read as UTF-8"):
        LMTask(LMConfig(**{**TINY, "corpus": str(binary)}), 0)
    small = tmp_path / "small.txt"
    small.write_text("The cat sat on the mat. " * 200)
    with pytest.raises(UserError, match="the corpus supports only"):
        LMTask(LMConfig(**{**TINY, "corpus": str(small), "vocab_size": 5000}), 0)
    with pytest.raises(UserError, match=r"n_train \+ n_desired \+ n_test = 2008"):
        LMTask(LMConfig(**{**TINY, "corpus": str(small), "vocab_size": 260, "n_train": 2000}), 0)


def test_bf16_autocast_keeps_float32_parameters_and_a_close_hypergradient():
    """train.autocast = "bfloat16": the model's passes in bf16, theta and the adjoint in float32;
    the hypergradient stays within a fraction of a percent of the float32 one."""
    from pathlib import Path

    corpus = str(Path(__file__).parent / "fixtures" / "tiny_corpus.txt")
    config = LMConfig(**{**TINY, "corpus": corpus, "seq_len": 16, "d_model": 32, "d_ff": 64})
    task = LMTask(config, 0, dtype=torch.float32)
    weights = torch.softmax(torch.randn(5, 6, generator=torch.Generator().manual_seed(1)), 1)
    policy = Policy(weights, segment=2)
    run32, g32 = hypergradient(task, policy, 0.5, 10, checkpoint_every=3)
    bf16 = task.for_run(autocast=torch.bfloat16)
    run16, g16 = hypergradient(bf16, policy, 0.5, 10, checkpoint_every=3)
    assert run16.final_theta.dtype == torch.float32 and g16.dtype == torch.float32
    relative = float((g16 - g32).norm() / g32.norm())
    assert 0 < relative < 0.02  # bf16 really ran (not identical), and stayed close
    assert run16.objective == pytest.approx(run32.objective, rel=1e-3)
    with pytest.raises(UserError, match=r"train.autocast = 'bfloat16' needs train.dtype"):
        from learnlaw.policy import load_config

        load_config(None, "lm", {"train.autocast": "bfloat16", "train.dtype": "float64"})
