"""A task written by a user runs through the same engine as the built-in ones: the same
numbers as the built-in perceptron, a run folder, resume, a config naming it, and analysis."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learnlaw.analysis import analyze
from learnlaw.errors import UserError
from learnlaw.policy import load_config, optimize
from learnlaw.tasks import Task
from learnlaw.tasks.perceptron import PerceptronTask

SMALL = {
    "perceptron.dim": 8,
    "perceptron.n_train": 64,
    "perceptron.n_desired": 32,
    "perceptron.n_test": 32,
    "perceptron.train_scale_is": "std",
    "train.steps": 40,
    "train.lr": 0.5,
    "outer.epochs": 5,
    "outer.method": "eg",
    "outer.max_change": 2.0,
}


class GenericPerceptron(Task):
    """The perceptron written as a user would: data and a loss, nothing else."""

    name = "generic-perceptron"
    n_classes = 2

    def __init__(self, x: dict, y: dict, theta0: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.sizes = {split: len(v) for split, v in y.items()}
        self.theta0 = theta0.clone()

    def losses(self, theta, split, start=0, stop=None):
        z = self.x[split][start:stop] @ theta
        return F.softplus(z) - self.y[split][start:stop] * z


def test_a_user_task_gives_the_builtin_perceptrons_numbers():
    config = load_config(None, "perceptron", SMALL)
    builtin = optimize(config=config, quiet=True)  # the analytic fast path
    data = PerceptronTask(config.task_options, config.seed)
    user = optimize(GenericPerceptron(data.x, data.y, data.theta0), config, quiet=True)
    a, b = builtin.metrics, user.metrics
    np.testing.assert_allclose(b["objective_per_epoch"], a["objective_per_epoch"], rtol=1e-10)
    assert b["acceleration_ratio"] == pytest.approx(a["acceleration_ratio"], rel=1e-9)
    assert (b["kept_epoch"], b["lowest_objective_epoch"]) == (
        a["kept_epoch"],
        a["lowest_objective_epoch"],
    )
    torch.testing.assert_close(
        user.kept.policy.weights, builtin.kept.policy.weights, rtol=1e-8, atol=1e-12
    )
    assert user.config.task.endswith(":GenericPerceptron")


MODULE = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import torch
    from learnlaw.errors import UserError
    from learnlaw.tasks import Task


    @dataclass
    class LinearConfig:
        dim: int = 4
        n_train: int = 24

        def validate(self):
            if self.dim <= 0:
                raise UserError(f"linear.dim = {self.dim}: must be positive")


    class Linear(Task):
        """Least squares with a few outliers in the training targets."""

        name = "linear"
        Config = LinearConfig
        n_classes = 2

        def __init__(self, config, seed, dtype=torch.float64, device="cpu"):
            self.config = config
            g = torch.Generator().manual_seed(seed)
            w = torch.randn(config.dim, generator=g, dtype=dtype)
            sizes = {"train": config.n_train, "objective": 12, "select": 6, "test": 12}
            self.x = {k: torch.randn(n, config.dim, generator=g, dtype=dtype) for k, n in sizes.items()}
            self.t = {k: self.x[k] @ w for k in sizes}
            self.t["train"][:4] += 5.0  # corrupted targets
            self.corrupted = (torch.arange(config.n_train) < 4).numpy()
            self.sizes = sizes
            self.theta0 = torch.zeros(config.dim, dtype=dtype)

        def losses(self, theta, split, start=0, stop=None):
            return 0.5 * (self.x[split][start:stop] @ theta - self.t[split][start:stop]) ** 2
    '''
)


def test_a_config_names_a_users_task_and_its_run_folder_resumes_and_analyses(tmp_path, monkeypatch):
    (tmp_path / "mytasks.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    toml = tmp_path / "linear.toml"
    toml.write_text(
        'task = "mytasks:Linear"\nseed = 3\n[train]\nsteps = 20\nlr = 0.2\n'
        '[linear]\ndim = 5\n[outer]\nepochs = 4\nmethod = "eg"\n'
    )
    config = load_config(toml)
    assert config.task_options.dim == 5
    whole = optimize(config=config, out=tmp_path / "whole", quiet=True)
    part = optimize(config=config, out=tmp_path / "part", quiet=True, max_seconds=1e-9)
    assert part.stopped_early
    resumed = optimize(config=config, out=tmp_path / "part", resume=True, quiet=True)
    assert resumed.metrics["objective_per_epoch"] == whole.metrics["objective_per_epoch"]
    # the task object and no config: the folder's own config, not the defaults
    from learnlaw.policy.run import resolve_task

    optimize(config=config, out=tmp_path / "part2", quiet=True, max_seconds=1e-9)
    task, _ = resolve_task(None, config)
    again = optimize(task, out=tmp_path / "part2", resume=True, quiet=True)
    assert again.metrics["objective_per_epoch"] == whole.metrics["objective_per_epoch"]
    # another task (here one more parameter) is refused by every reader of the folder
    from learnlaw.policy import evaluate

    other, _ = resolve_task(None, load_config(toml, None, {"linear.dim": 6}))
    for read in (
        lambda: optimize(other, out=tmp_path / "part2", resume=True, quiet=True),
        lambda: evaluate(tmp_path / "whole", task=other),
        lambda: analyze(tmp_path / "whole", task=other),
    ):
        with pytest.raises(UserError, match=r"made with another task \(parameters 5 in config"):
            read()
    # the folder rebuilds the user's task from config.json, corrupted examples included
    analysis = analyze(tmp_path / "whole")
    assert analysis.acceleration_ratio == pytest.approx(whole.acceleration_ratio, rel=1e-6)
    assert analysis["corrupted_weight_ratio"]["corrupted_examples"] == 4
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "mytasks:Linear"\n[linear]\ndim = 0\n')
    with pytest.raises(UserError, match=r"linear\.dim = 0: must be positive"):
        load_config(bad)
    bad.write_text('task = "mytasks:Nope"\n')
    with pytest.raises(UserError, match="Nope in mytasks is not a learnlaw Task class"):
        load_config(bad)
    bad.write_text('task = "__main__:Nope"\n')  # a class of a notebook, read in a later session
    with pytest.raises(UserError, match=r"pass the task object \(task=\.\.\.\)"):
        load_config(bad)


def test_a_task_that_breaks_the_contract_gets_one_line():
    class Broken(Task):
        name = "broken"
        n_classes = 2

        def __init__(self):
            self.sizes = {"train": 4, "test": 2}
            self.theta0 = torch.zeros(3)

    with pytest.raises(UserError, match=r"sizes\['objective'\] must be a positive whole number"):
        optimize(Broken(), quiet=True)

    class NoLosses(Broken):
        def __init__(self):
            self.sizes = {"train": 4, "objective": 2, "test": 2}
            self.theta0 = torch.zeros(3)

    with pytest.raises(UserError, match=r"implements no losses\(theta, split, start, stop\)"):
        optimize(NoLosses(), quiet=True)

    class WrongShape(NoLosses):
        def __init__(self, reduce):
            super().__init__()
            self.reduce = reduce

        def losses(self, theta, split, start=0, stop=None):
            per_example = torch.ones(len(range(self.sizes[split])[start:stop])) + theta.sum()
            return self.reduce(per_example)

    # a column or a mean would broadcast into wrong numbers: refused before the run
    for reduce, got in (
        (lambda x: x[:, None], r"\(2, 1\)"),
        (lambda x: x.mean(), r"got \(\)"),
        (lambda x: float(x.mean()), "got float"),
    ):
        with pytest.raises(UserError, match=r"must return a 1-D torch tensor of 2 .*" + got):
            optimize(WrongShape(reduce), quiet=True)

    class NanOnTest(NoLosses):
        def losses(self, theta, split, start=0, stop=None):
            x = torch.ones(len(range(self.sizes[split])[start:stop])) + theta.sum()
            return x * float("nan") if split == "test" else x

    with pytest.raises(UserError, match="the test loss is NaN or infinite at step 0"):
        optimize(NanOnTest(), quiet=True)


class NumpySized(GenericPerceptron):
    """Numpy sizes, and a set the run never reads."""

    def __init__(self, *args):
        super().__init__(*args)
        self.sizes = {k: np.int64(v) for k, v in self.sizes.items()} | {"extra": 3}


class NanOnSelect(GenericPerceptron):
    def losses(self, theta, split, start=0, stop=None):
        out = super().losses(theta, split, start, stop)
        return out * float("nan") if split == "select" else out


def test_a_folder_stays_usable_whatever_the_task_did(tmp_path):
    config = load_config(None, "perceptron", SMALL)
    data = PerceptronTask(config.task_options, config.seed)

    task = NumpySized(data.x, data.y, data.theta0)
    run = optimize(task, config, out=tmp_path / "run", quiet=True)
    from learnlaw.policy import evaluate

    again = evaluate(tmp_path / "run", task=task)  # the same task: not refused
    assert again["acceleration_ratio"] == pytest.approx(run.acceleration_ratio, rel=1e-6)

    # refused before its first save: the corrected run starts in the same folder
    with pytest.raises(UserError, match="the select loss is NaN"):
        optimize(NanOnSelect(data.x, data.y, data.theta0), config, out=tmp_path / "f", quiet=True)
    optimize(GenericPerceptron(data.x, data.y, data.theta0), config, out=tmp_path / "f", quiet=True)
    assert (tmp_path / "f" / "metrics.json").exists()
