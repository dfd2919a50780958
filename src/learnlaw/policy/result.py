"""What a policy run produces, in memory: the learned policies and the run's record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.policy.config import PolicyConfig
from learnlaw.policy.engine import Policy
from learnlaw.tasks import Task

POLICIES = ("kept", "objective")  # the two learned policies a run keeps
POLICY_MEANING = {
    "kept": "the kept policy: the outer epoch with the smallest loss area on the select set "
    "(on the objective set when there is none)",
    "objective": "the outer epoch with the smallest objective: the optimiser's closest point "
    "to the optimum the Learning Law describes",
}


@dataclass
class LearnedPolicy:
    """One learned policy of a run: its outer epoch and weights (rows x N, ``segment`` steps
    per row)."""

    which: str
    epoch: int
    policy: Policy

    @property
    def meaning(self) -> str:
        return POLICY_MEANING[self.which]


@dataclass
class PolicyResult:
    """A finished (or stopped) policy run, in memory."""

    config: PolicyConfig
    task: Task
    uniform_curves: dict[str, np.ndarray]  # split -> loss at t = 0..T under the uniform policy
    kept: LearnedPolicy
    lowest_objective: LearnedPolicy
    learned_curves: dict[str, np.ndarray]  # the same under the kept policy
    history: list[dict[str, Any]]  # one record per outer epoch
    metrics: dict[str, Any]
    out: Path | None = None
    stopped_early: bool = False

    def policy(self, which: str = "kept") -> LearnedPolicy:
        if which not in POLICIES:
            raise UserError(f"policy {which!r}: expected one of {', '.join(POLICIES)}")
        return self.kept if which == "kept" else self.lowest_objective

    @property
    def acceleration_ratio(self) -> float:
        return self.metrics["acceleration_ratio"]
