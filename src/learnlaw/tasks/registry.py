"""The one registry of tasks: a config names a built-in task or ``"package.module:Class"``."""

from __future__ import annotations

import importlib
from typing import Any

import torch

from learnlaw.errors import UserError
from learnlaw.tasks.base import Task

BUILTIN = {
    "perceptron": "learnlaw.tasks.perceptron:PerceptronTask",
    "lm": "learnlaw.tasks.lm:LMTask",
}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def task_class(name: str) -> type[Task]:
    """The class a config's ``task`` names (importing the user's module if needed)."""
    target = BUILTIN.get(name, name)
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise UserError(
            f"unknown task {name!r}; expected one of {', '.join(BUILTIN)} or 'package.module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"task {name!r}: cannot import {module_name} ({exc})") from None
    cls = getattr(module, attr, None)
    if cls is None and module_name == "__main__":
        raise UserError(
            f"task {name!r}: the class was defined in a script or notebook, which cannot be "
            "imported again; pass the task object (task=...) or define it in a module"
        )
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(f"task {name!r}: {attr} in {module_name} is not a learnlaw Task class")
    return cls


def task_name(task: Task | type[Task]) -> str:
    """How a config names this task: its built-in name, or ``module:Class``."""
    cls = task if isinstance(task, type) else type(task)
    target = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, where in BUILTIN.items() if where == target), target)


def build_task(name: str, options: Any, seed: int, dtype: str = "float64", device: str = "cpu"):
    """The task a config describes, checked against the contract."""
    task = task_class(name).from_config(options, seed, dtype=DTYPES[dtype], device=device)
    task.check()
    return task
