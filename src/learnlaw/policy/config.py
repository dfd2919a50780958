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

import dataclasses
import sys
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError
from learnlaw.policy.outer import OuterConfig
from learnlaw.tasks.registry import task_class

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise UserError(f"train.device = {self.device!r}: no CUDA GPU is available here")
        elif self.device not in ("cpu", "mps"):
            raise UserError(f"train.device = {self.device!r}: expected cpu, cuda or cuda:N")


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


MIXED_TYPE_KEYS = {"outer.lr"}  # a number or "auto"; OuterConfig.validate checks it


def _fill(cls: type, values: dict[str, Any], source: str, section: str) -> Any:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise UserError(f"{source}: [{section}] must be a table of key = value")
    fields = [f.name for f in dataclasses.fields(cls)]
    defaults = cls()
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise UserError(
                f"{source}: unknown key {section}.{key}; expected one of {', '.join(fields)}"
            )
        name = f"{section}.{key}"
        out[key] = (
            value
            if name in MIXED_TYPE_KEYS
            else _coerce(value, getattr(defaults, key), name, source)
        )
    return cls(**out)


def _coerce(value: Any, default: Any, name: str, source: str) -> Any:
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        value = float(value) if ok else value
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise UserError(f"{source}: {name} = {value!r}: expected {expected}")
    return value


def builtin_config_path(name: str) -> Path | None:
    path = Path(str(resources.files("learnlaw") / "configs" / f"{name}.toml"))
    return path if path.is_file() else None


def load_config(
    path: str | Path | None, task: str | None = None, overrides: dict[str, Any] | None = None
) -> PolicyConfig:
    """Read a TOML file (or a built-in config name), apply overrides, validate."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        resolved = Path(path)
        if not resolved.exists() and builtin_config_path(str(path)) is not None:
            resolved = builtin_config_path(str(path))
        where = f"config {path}"
        try:
            raw = tomllib.loads(resolved.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{where}: no such file (nor a built-in config of that name)") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{where}: not valid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[key] = value
    name = task or raw.get("task", "perceptron")
    if task is not None and raw.get("task", task) != task:
        raise UserError(f"{where}: is for task {raw['task']!r}, not {task!r}")
    if not isinstance(name, str):
        raise UserError(f"{where}: task = {name!r}: expected a string")
    cls = task_class(name)
    allowed = {"task", "seed", "train", "outer", cls.name}
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise UserError(
            f"{where}: unknown key or section {unknown[0]!r}; expected {', '.join(sorted(allowed))}"
        )
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"{where}: seed = {seed!r}: expected an integer")
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


def parse_override(text: str) -> tuple[str, Any]:
    """``--set outer.lr=0.01`` -> ("outer.lr", 0.01); values are parsed as TOML scalars."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise UserError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. outer.epochs=50")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word such as eg or std
    return key.strip(), parsed
