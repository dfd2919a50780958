"""Policy runs: outputs, exact resume after an interruption, evaluate, and bad input."""

import json
import shutil

import numpy as np
import pytest

import learnlaw.policy.run as run_module
from conftest import run_cli
from learnlaw.errors import UserError
from learnlaw.files import load_state
from learnlaw.policy import load_config, optimize
from learnlaw.policy.engine import DivergenceError

SMALL = {
    "perceptron.dim": 8,
    "perceptron.n_train": 64,
    "perceptron.n_desired": 32,
    "perceptron.n_test": 32,
    "train.steps": 40,
    "train.lr": 0.5,
    "outer.epochs": 5,
    "outer.method": "eg",
    "outer.lr": "auto",
}


def small_config(**extra):
    return load_config(None, "perceptron", {**SMALL, **extra})


def optimize_policy(config, out, **kwargs) -> dict:
    """A quiet run into ``out``; its metrics."""
    return optimize(config=config, out=out, quiet=True, **kwargs).metrics


def checkpoint_state(run_dir) -> dict:
    return load_state(run_dir / "checkpoint.npz")["state"]


def fail_hypergradient(monkeypatch, call: int, exc: BaseException):
    """Make the run's hypergradient raise ``exc`` at its ``call``-th call (the first is outer
    epoch 0's); returns the real one, to put back."""
    real = run_module.hypergradient
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "hypergradient", failing)
    return real


def test_run_writes_every_output(tmp_path):
    metrics = optimize_policy(small_config(), tmp_path)
    for name in (
        "config.json",
        "checkpoint.npz",
        "policy.npz",
        "policy_objective.npz",
        "curves.csv",
        "metrics.json",
        "loss_curves.png",
        "objective.png",
        "policy_heatmap.png",
    ):
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "acceleration_ratio",
        "auc_ratio",
        "compression_ratio",
        "objective_per_epoch",
        "kept_epoch",
        "seconds_per_epoch",
    ):
        assert key in saved
    assert set(saved["compression_ratio"]) >= {"uniform", "learned", "log_base"}
    assert len(saved["objective_per_epoch"]) == 6  # epochs 0..5, epoch 0 = the uniform policy
    assert saved["objective_per_epoch"][-1] < saved["objective_per_epoch"][0]
    with np.load(tmp_path / "policy.npz") as data:
        assert data["policy"].shape == (40, 64) and data["policy"].dtype == np.float32
        assert np.allclose(data["policy"].sum(1), 1, atol=1e-5)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["seed"] == 0 and "torch" in cfg["versions"] and cfg["config"]["train"]["steps"] == 40
    curves = np.loadtxt(tmp_path / "curves.csv", delimiter=",", skiprows=1)
    assert curves.shape == (41, 7)
    assert metrics["acceleration_ratio"] == saved["acceleration_ratio"]


def test_resume_after_interrupt_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    optimize_policy(small_config(), whole)
    part = tmp_path / "part"
    real = fail_hypergradient(monkeypatch, 3, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        optimize_policy(small_config(), part)
    monkeypatch.setattr(run_module, "hypergradient", real)
    optimize(out=part, resume=True, quiet=True)  # no config: the run folder's own
    for name in ("policy.npz", "policy_objective.npz"):
        a, b = np.load(whole / name)["policy"], np.load(part / name)["policy"]
        assert np.array_equal(a, b), name
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (whole, part))
    for key in ("objective_per_epoch", "kept_epoch", "lowest_objective_epoch"):
        assert ma[key] == mb[key], key


def test_a_run_saved_every_k_epochs_resumes_from_its_last_save(tmp_path, monkeypatch):
    whole = optimize_policy(small_config(), tmp_path / "whole")
    saved_at = []
    real_save = run_module.RunFolder.save_checkpoint
    killed = tmp_path / "killed"

    def recording_save(folder, state):
        saved_at.append(state["epoch"])
        real_save(folder, state)
        if folder.path.name == "every2" and state["epoch"] == 2:
            shutil.copytree(folder.path, killed)  # the folder as a hard kill in epoch 2-3 leaves it

    monkeypatch.setattr(run_module.RunFolder, "save_checkpoint", recording_save)
    optimize_policy(small_config(**{"outer.save_every": 2}), tmp_path / "every2")
    assert saved_at == [0, 2, 4, 6]  # the uniform run, every 2 epochs, and the end (epoch 5)
    # a hard kill: the run goes on from its last save and gives the uninterrupted run's numbers
    again = optimize_policy(small_config(**{"outer.save_every": 2}), killed, resume=True)
    for key in ("objective_per_epoch", "kept_epoch", "lowest_objective_epoch"):
        assert again[key] == whole[key], key
    # interrupted in epoch 3: the finished epoch 2, which was not due, is saved on the way out
    part = tmp_path / "part"
    real = fail_hypergradient(monkeypatch, 4, KeyboardInterrupt)
    saved_at.clear()
    with pytest.raises(KeyboardInterrupt):
        optimize_policy(small_config(**{"outer.save_every": 2}), part)
    assert saved_at == [0, 2, 3] and checkpoint_state(part)["epoch"] == 3
    monkeypatch.setattr(run_module, "hypergradient", real)
    saved_at.clear()
    # save_every may change on resume (it changes no number); the time budget saves at once
    resumed = optimize_policy(small_config(**{"outer.save_every": 10}), part, resume=True)
    assert saved_at == [6]
    record = json.loads((part / "config.json").read_text())
    assert record["config"]["outer"]["save_every"] == 10 and "extensions" not in record
    for key in ("objective_per_epoch", "kept_epoch", "lowest_objective_epoch"):
        assert resumed[key] == whole[key], key
    stopped = tmp_path / "stopped"
    optimize_policy(small_config(**{"outer.save_every": 10}), stopped, max_seconds=1e-9)
    assert checkpoint_state(stopped)["epoch"] == 1
    with pytest.raises(UserError, match=r"outer\.save_every = 0: must be >= 1"):
        small_config(**{"outer.save_every": 0})


def test_evaluate_reproduces_the_metrics(tmp_path, capsys):
    optimize_policy(small_config(), tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    code, out, err = run_cli(["policy", "evaluate", tmp_path], capsys)
    assert code == 0, err
    from learnlaw.policy import evaluate

    again = evaluate(tmp_path)
    assert again["acceleration_ratio"] == pytest.approx(saved["acceleration_ratio"], rel=1e-6)
    assert again["auc_ratio"] == pytest.approx(saved["auc_ratio"], rel=1e-6)
    assert f"{saved['auc_ratio']:.4f}" in out


def test_divergence_names_the_epoch_and_keeps_the_last_good_policy(tmp_path, monkeypatch):
    diverged = DivergenceError("the inner run diverged: theta is NaN or infinite at step 17")
    fail_hypergradient(monkeypatch, 3, diverged)
    with pytest.raises(
        DivergenceError, match=r"outer epoch 2: .* at step 17; the last good policy is kept"
    ):
        optimize_policy(small_config(), tmp_path)
    state = checkpoint_state(tmp_path)
    assert state["epoch"] == 2 and len(state["history"]) == 2


def _one_line(code, err, fragment):
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], err


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('task = "perceptron"\n[outer]\nepochz = 3\n')
    _one_line(
        *run_cli(["policy", "optimize", "--config", cfg, "--out", tmp_path / "a"], capsys)[::2],
        "unknown key outer.epochz",
    )
    _one_line(
        *run_cli(["policy", "optimize", "--set", "train.steps=0", "--out", tmp_path / "b"], capsys)[
            ::2
        ],
        "train.steps = 0: must be positive",
    )
    _one_line(
        *run_cli(
            ["policy", "optimize", "--set", "perceptron.label_noise=1.5", "--out", tmp_path / "c"],
            capsys,
        )[::2],
        "label_noise = 1.5: must be in [0, 1]",
    )
    _one_line(
        *run_cli(
            ["policy", "optimize", "--set", "outer.method=adam", "--out", tmp_path / "d"], capsys
        )[::2],
        "outer.method = 'adam'",
    )
    _one_line(
        *run_cli(
            ["policy", "optimize", "--set", "train.device=cuda", "--out", tmp_path / "e"], capsys
        )[::2],
        "no CUDA GPU is available",
    )
    args = [f"--set={k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in SMALL.items()]
    _one_line(
        *run_cli(
            ["policy", "optimize", *args, "--set", "train.lr=1e308", "--out", tmp_path / "f"],
            capsys,
        )[::2],
        "diverged",
    )
    bf16 = ["--set=train.dtype='float32'", "--set=train.autocast='bfloat16'"]
    _one_line(
        *run_cli(["policy", "optimize", *args, *bf16, "--out", tmp_path / "h"], capsys)[::2],
        "perceptron.analytic = false",
    )
    assert not (tmp_path / "h").exists()
    run_dir = tmp_path / "g"
    assert run_cli(["policy", "optimize", *args, "--quiet", "--out", run_dir], capsys)[0] == 0
    _one_line(
        *run_cli(["policy", "optimize", *args, "--out", run_dir], capsys)[::2],
        "already holds a learnlaw run; continue it with --resume (resume=True), or choose another",
    )
    _one_line(
        *run_cli(
            ["policy", "optimize", *args, "--set", "train.lr=0.3", "--resume", "--out", run_dir],
            capsys,
        )[::2],
        "different configuration (train.lr differ)",
    )
    (run_dir / "checkpoint.npz").write_bytes(b"not a checkpoint")
    _one_line(
        *run_cli(["policy", "optimize", *args, "--resume", "--out", run_dir], capsys)[::2],
        "not a readable learnlaw state file",
    )
    _one_line(
        *run_cli(["policy", "evaluate", tmp_path / "nowhere"], capsys)[::2], "no such run folder"
    )


def test_config_values_are_type_checked():
    with pytest.raises(UserError, match=r"train\.steps = 'many': expected an integer"):
        load_config(None, "perceptron", {"train.steps": "many"})


def test_backtracking_rejects_steps_that_raise_the_objective(tmp_path):
    # a step far too large for this problem: without backtracking the objective goes up
    big = {"outer.max_change": 200.0, "outer.epochs": 8, "outer.decay": "none"}
    plain = optimize_policy(small_config(**big), tmp_path / "plain")
    assert max(np.diff(plain["objective_per_epoch"])) > 0
    config = small_config(**big, **{"outer.backtrack": True})
    optimize_policy(config, tmp_path / "bt")
    history = checkpoint_state(tmp_path / "bt")["history"]
    rejected = [h["epoch"] for h in history if h.get("rejected")]
    assert rejected  # the setting must exercise the rejection
    # the policies taken as the next starting point never have a higher objective
    accepted = [h["objective"] for h in history[:-1] if not h.get("rejected")]
    assert all(np.diff(accepted) <= 0)
    # every retry halves the step: the step sizes after k rejections are base / 2^k
    base = history[0]["step_size"]
    for h in history[:-1]:
        k = sum(1 for e in rejected if e <= h["epoch"])
        assert h["step_size"] == pytest.approx(base / 2**k)


def test_the_lowest_objective_policy_is_saved_and_reproduces_its_objective(tmp_path):
    from learnlaw.policy.engine import run_policy
    from learnlaw.policy.runfolder import read_run

    # a step too large for the problem, so the last epoch is not the lowest
    config = small_config(**{"outer.max_change": 200.0, "outer.epochs": 8, "outer.decay": "none"})
    metrics = optimize_policy(config, tmp_path)
    objectives = metrics["objective_per_epoch"]
    lowest = int(np.argmin(objectives))
    assert metrics["lowest_objective_epoch"] == lowest and lowest != len(objectives) - 1
    record = read_run(tmp_path, "objective")
    rerun = run_policy(record.task, record.policy.policy, config.train.lr, config.train.steps)
    # saved in float32: the objective agrees to float32 precision
    assert rerun.objective == pytest.approx(objectives[lowest], rel=1e-5)


def test_a_crafted_checkpoint_runs_no_code(tmp_path, capsys):
    """Checkpoints hold arrays and JSON only; a pickle (the old checkpoint.pt, or a pickle
    renamed to checkpoint.npz) is refused without being unpickled."""
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    args = [f"--set={k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in SMALL.items()]
    run_dir = tmp_path / "run"
    assert run_cli(["policy", "optimize", *args, "--quiet", "--out", run_dir], capsys)[0] == 0
    payload = pickle.dumps({"weights": Exploit()})
    (run_dir / "checkpoint.npz").write_bytes(payload)
    code, _, err = run_cli(["policy", "optimize", "--resume", "--out", run_dir], capsys)
    _one_line(code, err, "not a readable learnlaw state file")
    (run_dir / "checkpoint.npz").unlink()
    (run_dir / "checkpoint.pt").write_bytes(payload)
    code, _, err = run_cli(["policy", "optimize", "--resume", "--out", run_dir], capsys)
    _one_line(code, err, "does not open: a pickle can run code")
    # an .npz whose array is a pickled object is refused too (allow_pickle=False)
    np.savez(run_dir / "checkpoint.npz", __meta__=np.array([Exploit()], dtype=object))
    code, _, err = run_cli(["policy", "optimize", "--resume", "--out", run_dir], capsys)
    _one_line(code, err, "not a readable learnlaw state file")
    assert not marker.exists()


def test_a_task_without_options_gets_its_defaults():
    from learnlaw.tasks import task_class

    cls = task_class("perceptron")
    task = cls.from_config(None, seed=0)
    assert task.n_train == cls.Config().n_train


def test_a_run_without_outer_decay_extends_to_exactly_a_longer_run(tmp_path, capsys):
    """Resumed with more outer epochs, a finished run whose outer step does not decay goes on
    as a run made for that many epochs would: same objectives, same policies. With a decaying
    outer step (the step depends on the number of epochs) it is refused in one line."""
    longer = tmp_path / "longer"
    optimize_policy(small_config(**{"outer.decay": "none", "outer.epochs": 6}), longer)
    run = tmp_path / "run"
    optimize_policy(small_config(**{"outer.decay": "none", "outer.epochs": 3}), run)
    extended = small_config(**{"outer.decay": "none", "outer.epochs": 6})
    optimize(config=extended, out=run, resume=True, quiet=True)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (longer, run))
    assert mb["objective_per_epoch"] == ma["objective_per_epoch"]  # epochs 0..6, bit for bit
    for key in ("kept_epoch", "lowest_objective_epoch", "epochs_run"):
        assert ma[key] == mb[key], key
    for name in ("policy.npz", "policy_objective.npz"):
        assert np.array_equal(np.load(longer / name)["policy"], np.load(run / name)["policy"])
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["outer"]["epochs"] == 6
    assert [(e["from_epochs"], e["to_epochs"]) for e in saved["extensions"]] == [(3, 6)]
    assert sum(h["seconds"] for h in checkpoint_state(run)["history"]) == pytest.approx(
        checkpoint_state(run)["seconds"]
    )
    # an extension that fails (here: no checkpoint) leaves config.json as it was
    (run / "checkpoint.npz").unlink()
    before = (run / "config.json").read_text()
    with pytest.raises(UserError, match="no checkpoint"):
        optimize(
            config=small_config(**{"outer.decay": "none", "outer.epochs": 9}),
            out=run,
            resume=True,
            quiet=True,
        )
    assert (run / "config.json").read_text() == before

    args = ["policy", "optimize", "--task", "perceptron", "--quiet", "--out", tmp_path / "decay"]
    args += [x for k, v in SMALL.items() for x in ("--set", f"{k}={v}")]
    assert run_cli(args, capsys)[0] == 0  # outer.decay: linear, the default
    code, _, err = run_cli([*args, "--resume", "--epochs", 8], capsys)
    assert code == 2 and "outer.epochs differ" in err and len(err.strip().splitlines()) == 1


def test_optimize_takes_a_config_file_and_refuses_a_table(tmp_path):
    toml = tmp_path / "small.toml"
    lines = ['task = "perceptron"', "[perceptron]", "dim = 8", "n_train = 64", "n_desired = 32"]
    lines += ["n_test = 32", "[train]", "steps = 40", "lr = 0.5", "[outer]", "epochs = 5"]
    lines += ['method = "eg"']
    toml.write_text("\n".join(lines) + "\n")
    by_file = optimize(config=toml, quiet=True).metrics
    assert (
        by_file["objective_per_epoch"]
        == optimize(config=small_config(), quiet=True).metrics["objective_per_epoch"]
    )
    with pytest.raises(UserError, match="config: expected a PolicyConfig"):
        optimize(config=dict(SMALL), quiet=True)


def test_a_config_built_in_python_is_checked_as_a_file_is():
    from learnlaw.policy.config import OuterConfig, PolicyConfig, TrainConfig

    for config, fragment in (
        (PolicyConfig(train=TrainConfig(steps="30")), "train.steps = '30': expected an integer"),
        (PolicyConfig(outer=OuterConfig(epochs=2.5)), "outer.epochs = 2.5: expected an integer"),
        (PolicyConfig(seed="a"), "seed = 'a': expected an integer"),
    ):
        with pytest.raises(UserError, match=fragment):
            optimize(config=config, quiet=True)
    # numpy numbers are numbers: the same run as with Python's
    numpy_made = small_config(**{"train.steps": np.int64(40), "train.lr": np.float32(0.5)})
    assert numpy_made.train.steps == 40 and type(numpy_made.train.steps) is int
