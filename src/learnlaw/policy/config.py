"""Configuration of a policy-optimisation run: TOML in, validated dataclasses, JSON out.

    task = "perceptron"        # a built-in task or "package.module:Class"; its options go in
    seed = 0                   #   the section named after the task (the class's ``name``)
    [train]                    # the inner run
    steps = 2000               # T
    lr = 0.1                   # eta
    [perceptron]               # task options (see the task's config class)
    [outer]                    # the outer optimiser (learnlaw.policy.outer.OuterConfig)

Unknown sections or keys and values of the wrong type are errors naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from learnlaw.configfile import (
    apply_overrides,
    check_device,
    check_sections,
    check_types,
    coerce,
    fill,
    read_config_file,
    top_level_seed,
)
from learnlaw.errors import UserError
from learnlaw.policy.outer import OuterConfig
from learnlaw.tasks.registry import task_class


@dataclass
class TrainConfig:
    steps: int = 2000
    lr: float = 0.1
    device: str = "cpu"
    dtype: str = "float64"
    checkpoint_every: int = 0  # keep theta every k steps for the adjoint; 0 = ceil(sqrt(steps))
    autocast: str = "none"  # "bfloat16": the model's passes in bf16, parameters/adjoint float32

    def validate(self) -> None:
        if self.steps <= 0:
            raise UserError(f"train.steps = {self.steps}: must be positive")
        if not self.lr > 0:
            raise UserError(f"train.lr = {self.lr}: must be positive")
        if self.dtype not in ("float64", "float32", "bfloat16"):
            raise UserError(f"train.dtype = {self.dtype!r}: expected float64, float32 or bfloat16")
        if self.autocast not in ("none", "bfloat16"):
            raise UserError(f"train.autocast = {self.autocast!r}: expected none or bfloat16")
        if self.autocast != "none" and self.dtype != "float32":
            raise UserError(
                f'train.autocast = {self.autocast!r} needs train.dtype = "float32" (the '
                f"parameters and the adjoint stay in float32), not {self.dtype!r}"
            )
        if self.checkpoint_every < 0:
            raise UserError(f"train.checkpoint_every = {self.checkpoint_every}: must be >= 0")
        check_device(self.device, "train.device", also=("mps",))


@dataclass
class PolicyConfig:
    """Everything a policy run is made of but the task's data: the inner run, the outer
    optimiser, the seed, and (for a task built from the config) its name and options."""

    task: str = "perceptron"
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    task_options: Any = None
    outer: OuterConfig = field(default_factory=OuterConfig)

    def validate(self) -> None:
        self.seed = coerce(self.seed, 0, "seed", "config")
        check_types(self.train, "train")
        check_types(self.outer, "outer", MIXED_TYPE_KEYS)
        self.train.validate()
        if self.task_options is not None:
            self.task_options.validate()
        self.outer.validate()

    def section(self) -> str:
        """The name of the task options' section (the task class's ``name``)."""
        return task_class(self.task).name if self.task_options is not None else "task_options"

    def to_json(self) -> dict[str, Any]:
        out = {"task": self.task, "seed": self.seed, "train": asdict(self.train)}
        if self.task_options is not None:
            out[self.section()] = asdict(self.task_options)
        out["outer"] = asdict(self.outer)
        return out


MIXED_TYPE_KEYS = frozenset({"outer.lr"})  # a number or "auto"; OuterConfig.validate checks it


def _fill(cls: type, values: dict[str, Any], source: str, section: str) -> Any:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    return fill(cls, values, source, section, MIXED_TYPE_KEYS)


def load_config(
    path: str | Path | None, task: str | None = None, overrides: dict[str, Any] | None = None
) -> PolicyConfig:
    """Read a TOML file (or a built-in config name), apply overrides, validate."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        raw, where = read_config_file(path)
    return config_from_raw(apply_overrides(raw, overrides), where, task)


def config_from_raw(raw: dict[str, Any], where: str, task: str | None = None) -> PolicyConfig:
    """A config from a TOML-like table (``where`` names it in errors): unknown keys, wrong
    types and bad values refused in one line."""
    name = task or raw.get("task", "perceptron")
    if task is not None and raw.get("task", task) != task:
        raise UserError(f"{where}: is for task {raw['task']!r}, not {task!r}")
    if not isinstance(name, str):
        raise UserError(f"{where}: task = {name!r}: expected a string")
    cls = task_class(name)
    allowed = {"task", "seed", "train", "outer", cls.name}
    check_sections(raw, allowed, where)
    seed = top_level_seed(raw, where)
    if cls.Config is None and cls.name in raw:
        raise UserError(f"{where}: task {name!r} takes no options, but [{cls.name}] is given")
    config = PolicyConfig(
        task=name,
        seed=seed,
        train=_fill(TrainConfig, raw.get("train", {}), where, "train"),
        task_options=None
        if cls.Config is None
        else _fill(cls.Config, raw.get(cls.name, {}), where, cls.name),
        outer=_fill(OuterConfig, raw.get("outer", {}), where, "outer"),
    )
    config.validate()
    return config


def config_from_json(obj: dict[str, Any]) -> PolicyConfig:
    """The inverse of ``PolicyConfig.to_json`` (for evaluate, resume and analyze)."""
    name = obj["task"]
    cls = task_class(name)
    config = PolicyConfig(
        task=name,
        seed=obj["seed"],
        train=TrainConfig(**obj["train"]),
        task_options=None if cls.Config is None else cls.Config(**obj[cls.name]),
        outer=OuterConfig(**obj["outer"]),
    )
    config.validate()  # e.g. a run made on a GPU, read on a machine without one
    return config
