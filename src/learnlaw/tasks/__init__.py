"""Tasks: a model, its per-example losses and the sets of examples a data policy is learned on.

``Task`` is the contract (see ``learnlaw.tasks.base``); the built-in tasks are the paper's
perceptron and its transformer language model; ``build_task`` builds any task a config names.
"""

from learnlaw.tasks.base import Task
from learnlaw.tasks.registry import BUILTIN, build_task, task_class, task_name

__all__ = ["BUILTIN", "Task", "build_task", "task_class", "task_name"]
