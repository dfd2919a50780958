"""Data parallelism: P processes give the single process's numbers (float64, 1e-9 relative),
a 2-process run resumes exactly after one of its processes is killed (on 2 processes or on 1),
and a failure on one rank stops the others with one message naming it.

The 2-process runs are real: two spawned processes in a gloo process group on the CPU
(several scenarios per spawn, to pay the start-up of the processes once)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import learnlaw.policy.run as run_module
from conftest import on_processes, run_cli
from learnlaw.distributed import SINGLE, Comm
from learnlaw.errors import UserError
from learnlaw.policy import load_config, optimize
from learnlaw.policy.simplex import project_rows_by_threshold_search, project_rows_to_simplex

# odd sizes: the ranks' blocks differ in size
PERCEPTRON = {
    "perceptron.dim": 8,
    "perceptron.n_train": 63,
    "perceptron.n_desired": 33,
    "perceptron.n_test": 31,
    "train.steps": 30,
    "train.lr": 0.5,
    "outer.epochs": 4,
    "outer.method": "eg",
}
LM = {
    "lm.corpus": str(Path(__file__).parent / "fixtures" / "tiny_corpus.txt"),
    "lm.vocab_size": 300,
    "lm.seq_len": 8,
    "lm.n_train": 9,
    "lm.n_desired": 6,
    "lm.n_test": 5,
    "lm.d_model": 8,
    "lm.n_layers": 1,
    "lm.n_heads": 2,
    "lm.d_ff": 16,
    "train.steps": 6,
    "train.lr": 0.5,
    "train.dtype": "float64",
    "outer.epochs": 3,
    "outer.method": "eg",
    "outer.segment": 2,
}
# the perceptron's analytic path with both outer methods (the projection by a distributed
# threshold search, row-normalised steps, backtracking), its generic autograd path with a
# recomputed trajectory, and the language model
CASES = {
    "eg": ("perceptron", PERCEPTRON),
    "pgd-row-backtrack": (
        "perceptron",
        {
            **PERCEPTRON,
            "outer.method": "pgd",
            "outer.normalize": "row",
            "outer.max_change": 40.0,
            "outer.backtrack": True,
        },
    ),
    "generic": (
        "perceptron",
        {
            **PERCEPTRON,
            "perceptron.analytic": False,
            "train.checkpoint_every": 4,
            "outer.segment": 3,
        },
    ),
    "lm": ("lm", LM),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNLAW_CACHE", str(tmp_path / "cache"))  # spawned processes inherit it


def _summary(result) -> dict:
    m = result.metrics
    return {
        "objective": m["objective_per_epoch"],
        "test_ar": m["test_acceleration_per_epoch"],
        "kept": m["kept_epoch"],
        "lowest": m["lowest_objective_epoch"],
        "rejected": m["rejected_epochs"],
        "ar": m["acceleration_ratio"],
        "policy": result.kept.policy.weights.tolist(),
    }


def _run_cases(rank: int, out: str | None = None, names: tuple[str, ...] = tuple(CASES)) -> dict:
    results = {}
    for name in names:
        task, overrides = CASES[name]
        config = load_config(None, task, overrides)
        folder = None if out is None or name != "eg" else Path(out)
        results[name] = _summary(optimize(config=config, out=folder, quiet=True))
    return results


def _killed_run(rank: int, out: str, kill_rank: int, at_call: int) -> dict:
    real = run_module.hypergradient
    calls = {"n": 0}

    def killed(*a, **k):
        calls["n"] += 1
        if calls["n"] == at_call and rank == kill_rank:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no clean-up, no message
        return real(*a, **k)

    run_module.hypergradient = killed
    config = load_config(None, "perceptron", CASES["eg"][1])
    return _summary(optimize(config=config, out=Path(out), quiet=True))


def _resumed(rank: int, out: str) -> dict:
    config = load_config(None, "perceptron", CASES["eg"][1])
    resumed = _summary(optimize(config=config, out=Path(out), resume=True, quiet=True))
    whole = _summary(optimize(config=config, quiet=True))
    return {"resumed": resumed, "whole": whole, **_failures(rank)}  # failures last: they end


def _failures(rank: int) -> dict:
    out = {}
    # more processes than examples of a set: every rank refuses, before any collective
    config = load_config(None, "perceptron", {**PERCEPTRON, "perceptron.n_test": 1})
    try:
        optimize(config=config, quiet=True)
    except UserError as exc:
        out["too_many"] = str(exc)
    # one rank fails in the middle of an epoch: the other stops too, naming it
    real = run_module.hypergradient
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2 and rank == 1:
            raise UserError("a failure on purpose")
        return real(*a, **k)

    run_module.hypergradient = failing
    try:
        optimize(config=load_config(None, "perceptron", PERCEPTRON), quiet=True)
    except UserError as exc:
        out["failed"], out["type"] = str(exc), type(exc).__name__
    return out


def _close(a, b, rel=1e-9):
    return np.allclose(a, b, rtol=rel, atol=0)


# ---- tests ---------------------------------------------------------------------------------
def test_two_processes_give_the_single_process_numbers(tmp_path):
    def single_process():
        return {
            name: _summary(optimize(config=load_config(None, task, o), quiet=True))
            for name, (task, o) in CASES.items()
        }

    ranks, single = on_processes(
        tmp_path / "spawn-cases", _run_cases, out=str(tmp_path / "run"), meanwhile=single_process
    )
    assert "error" not in ranks[0], ranks[0]
    assert ranks[0] == ranks[1]  # every rank returns the same (whole) result
    for name, one in single.items():
        two = ranks[0][name]
        assert _close(two["objective"], one["objective"]), name
        assert two["test_ar"] == one["test_ar"], name
        assert (two["kept"], two["lowest"], two["rejected"]) == (
            one["kept"],
            one["lowest"],
            one["rejected"],
        ), name
        assert _close(two["policy"], one["policy"], 1e-8), name
    assert single["pgd-row-backtrack"]["rejected"]  # the case exercises a rejected step
    # rank 0 wrote the run folder, with the whole policy and the world size
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["processes"] == 2
    with np.load(tmp_path / "run" / "policy.npz") as data:
        assert data["policy"].shape == (30, 63)


def test_a_killed_two_process_run_resumes_and_a_failing_rank_stops_the_other(tmp_path):
    part = tmp_path / "part"
    ranks = on_processes(
        tmp_path / "spawn-killed", _killed_run, out=str(part), kill_rank=1, at_call=3
    )
    assert ranks[1] == {"exitcode": -signal.SIGKILL}
    assert ranks[0]["type"] == "PeerFailure", ranks[0]
    assert "lost contact with the other processes" in ranks[0]["error"]
    one = tmp_path / "one"
    shutil.copytree(part, one)
    # on 2 processes: the uninterrupted run's numbers, exactly (the checkpoint holds them)
    ranks = on_processes(tmp_path / "spawn-resumed", _resumed, out=str(part))
    resumed, whole = ranks[0]["resumed"], ranks[0]["whole"]
    assert resumed["objective"] == whole["objective"] and resumed["policy"] == whole["policy"]
    # on 1 process: the same to rounding
    config = load_config(None, "perceptron", CASES["eg"][1])
    alone = _summary(optimize(config=config, out=one, resume=True, quiet=True))
    assert _close(alone["objective"], whole["objective"])
    assert alone["kept"] == whole["kept"] and alone["test_ar"] == whole["test_ar"]
    # bad input met by every rank: each refuses it, before any collective
    for r in ranks:
        assert "2 processes for 1 test examples" in r["too_many"], r
    # a failure on rank 1 in the middle of an epoch stops rank 0, which names it
    assert ranks[0]["type"] == "PeerFailure"
    assert ranks[0]["failed"] == "process 1 of 2 failed: a failure on purpose"
    assert ranks[1]["failed"] == "a failure on purpose"


def test_torchrun_runs_the_command_line_on_two_processes(tmp_path, capsys):
    args = [
        f"--set={k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in PERCEPTRON.items()
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    command = [*torchrun, "-m", "learnlaw", "policy", "optimize", *args, "--quiet"]
    two = subprocess.run(
        [*command, "--out", tmp_path / "two"], env=env, capture_output=True, text=True, timeout=240
    )
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("acceleration ratio (test)") == 1  # rank 0 prints the summary
    code, _, err = run_cli(
        ["policy", "optimize", *args, "--quiet", "--out", tmp_path / "one"], capsys
    )
    assert code == 0, err
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert _close(b["objective_per_epoch"], a["objective_per_epoch"])
    # an existing run is refused without --resume: one line from learnlaw, exit code 2
    again = subprocess.run(
        [*command, "--out", tmp_path / "two"], env=env, capture_output=True, text=True, timeout=240
    )
    lines = [x for x in again.stderr.splitlines() if x.startswith("learnlaw: error:")]
    assert len(lines) == 1 and "already holds a learnlaw run" in lines[0], again.stderr
    assert again.returncode != 0  # torchrun's (its report follows our line)
    # the 2-process run resumes on one process (nothing left to do: its outputs are rewritten)
    code, _out, err = run_cli(["policy", "optimize", "--resume", "--out", tmp_path / "two"], capsys)
    assert code == 0, err


def test_only_rank_0_prints_an_error_every_rank_meets(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    code, out, err = run_cli(["policy", "optimize", "--set", "train.steps=0"], capsys)
    assert code == 2 and err == "" and out == ""
    monkeypatch.setenv("RANK", "0")
    code, out, err = run_cli(["policy", "optimize", "--set", "train.steps=0"], capsys)
    assert code == 2 and "train.steps = 0" in err


# ---- pieces, on one process ----------------------------------------------------------------
def test_threshold_search_projection_equals_the_sorted_one():
    g = torch.Generator().manual_seed(0)
    rows = [
        torch.randn(50, 40, generator=g, dtype=torch.float64) * 3,
        torch.full((3, 7), 0.25, dtype=torch.float64),  # ties everywhere
        torch.softmax(torch.randn(4, 9, generator=g, dtype=torch.float64), 1),  # on the simplex
    ]
    for v in rows:
        a, b = project_rows_to_simplex(v), project_rows_by_threshold_search(v, SINGLE)
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-15) and (b >= 0).all()
        assert torch.allclose(b.sum(1), torch.ones(len(v), dtype=v.dtype))
    # next to 1e20, 1/count is lost to rounding: the search still stops, as the sort does
    huge = torch.tensor([[1e20, 0.0, -1e20, 5.0]], dtype=torch.float64)
    assert torch.equal(project_rows_by_threshold_search(huge), project_rows_to_simplex(huge))


def test_blocks_cover_every_example_once():
    for n in (1, 7, 64):
        for world in (1, 2, 3, 5):
            if world > n:
                continue
            comm = Comm(0, world)
            blocks = [comm.block(n, r) for r in range(world)]
            assert blocks[0][0] == 0 and blocks[-1][1] == n
            assert all(b[1] == c[0] and b[1] > b[0] for b, c in itertools.pairwise(blocks))
            sizes = [b[1] - b[0] for b in blocks]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
