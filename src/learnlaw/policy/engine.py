"""Policy-weighted training and its exact hypergradient (SPEC A1, A4).

Training is full-batch gradient descent in which step t weights the N training examples by
gamma_t (a row of the policy):  theta_{t+1} = theta_t - eta * grad sum_n gamma_{n,t} l_n(theta_t).
The objective is the normalised loss area J = (1/T) sum_{t=1..T} L_dsr(theta_t).

The hypergradient dJ/dgamma comes from the discrete adjoint, swept backwards:
    lambda_T = (1/T) grad L_dsr(theta_T)
    dJ/dgamma_{n,t} = -eta * grad l_n(theta_t) . lambda_{t+1}
    lambda_t = [t >= 1] (1/T) grad L_dsr(theta_t) + lambda_{t+1} - eta * H_t lambda_{t+1}
Memory: theta is kept every k steps in the forward run; each segment of k steps is recomputed
from its checkpoint during the backward sweep, so O(T/k + k) parameter vectors are held
(k = 1 keeps the whole trajectory and recomputes nothing).

On several processes (a task from ``Task.for_run``) the policy holds this rank's columns,
the task returns this rank's shares, and the full-batch sums are all-reduced here: one
all-reduce per step forward (the weighted gradient), one per step backward (the
Hessian-vector product with the desired-loss gradient), and one per run for all the
evaluation curves. theta and the adjoint are then the same on every rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.tasks.base import Task


class DivergenceError(UserError):
    """The inner run produced NaN or infinite values."""


@dataclass
class Policy:
    """Weights on the simplex: one row per segment of ``segment`` steps (1 = a row per step)."""

    weights: torch.Tensor  # rows x N
    segment: int = 1

    @classmethod
    def uniform(
        cls,
        steps: int,
        n: int,
        segment: int = 1,
        dtype=torch.float64,
        device="cpu",
        columns: int | None = None,
    ) -> Policy:
        """Weights 1/n; ``columns`` of them per row (default n: a rank holds its own)."""
        rows = math.ceil(steps / segment)
        shape = (rows, n if columns is None else columns)
        return cls(torch.full(shape, 1.0 / n, dtype=dtype, device=device), segment)

    def row(self, t: int) -> int:
        return t // self.segment

    def at(self, t: int) -> torch.Tensor:
        return self.weights[t // self.segment]

    def per_step(self, steps: int) -> torch.Tensor:
        """The T x N matrix of weights, expanding segments."""
        return self.weights.repeat_interleave(self.segment, dim=0)[:steps]


@dataclass
class InnerRun:
    """Loss curves over t = 0..T of one training run, and the kept parameter checkpoints."""

    curves: dict[str, np.ndarray]
    checkpoints: dict[int, torch.Tensor] = field(default_factory=dict)
    final_theta: torch.Tensor | None = None

    @property
    def objective(self) -> float:
        """J = (1/T) sum_{t=1..T} L_dsr(theta_t) on the objective set."""
        c = self.curves["objective"]
        return float(np.mean(c[1:]))


def _check_finite(x: torch.Tensor, what: str, step: int) -> None:
    if not torch.isfinite(x).all():
        raise DivergenceError(f"the inner run diverged: {what} is NaN or infinite at step {step}")


def run_policy(
    task: Task,
    policy: Policy,
    eta: float,
    steps: int,
    keep_every: int | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> InnerRun:
    """Train from theta_0 under ``policy``; record every set's mean loss at t = 0..T.

    ``keep_every=k`` keeps theta_t for t divisible by k (for the adjoint); ``on_step(t, theta)``
    sees every theta_t (for analyses that need the whole trajectory without storing it).
    """
    comm = task.comm
    theta = task.theta0.clone()
    records: list[dict[str, float]] = []  # this rank's shares of every set's mean loss
    kept: dict[int, torch.Tensor] = {}
    for t in range(steps + 1):
        records.append(task.evaluate(theta))
        if on_step is not None:
            on_step(t, theta)
        if t == steps:
            break
        if keep_every and t % keep_every == 0:
            kept[t] = theta
        with torch.no_grad():
            theta = theta - eta * comm.sum(task.train_gradient(theta, policy.at(t)))
        _check_finite(theta, "theta", t + 1)
    curves = _curves(records, comm)
    for split, curve in curves.items():  # every reported number comes from these curves
        if not np.all(np.isfinite(curve)):
            bad = int(np.argmax(~np.isfinite(curve)))
            what = "desired" if split == "objective" else split
            raise DivergenceError(
                f"the inner run diverged: the {what} loss is NaN or infinite at step {bad}"
            )
    return InnerRun(curves, kept, theta)


def _curves(records: list[dict[str, float]], comm) -> dict[str, np.ndarray]:
    """The loss curves from every step's shares (summed over the ranks in one all-reduce)."""
    splits = list(records[0])
    if comm.single:
        return {k: np.asarray([r[k] for r in records]) for k in splits}
    shares = torch.tensor([[r[k] for k in splits] for r in records], dtype=torch.float64)
    summed = comm.sum(shares).numpy()
    return {k: summed[:, i].copy() for i, k in enumerate(splits)}


def default_checkpoint_every(steps: int) -> int:
    return max(1, math.ceil(math.sqrt(steps)))


def hypergradient(
    task: Task,
    policy: Policy,
    eta: float,
    steps: int,
    checkpoint_every: int | None = None,
) -> tuple[InnerRun, torch.Tensor]:
    """The forward run under ``policy`` and dJ/d(policy rows), by the checkpointed adjoint."""
    k = checkpoint_every or default_checkpoint_every(steps)
    comm = task.comm
    run = run_policy(task, policy, eta, steps, keep_every=k)
    grads = torch.zeros_like(policy.weights)
    with torch.no_grad():
        _, g_final = task.objective_value_and_grad(run.final_theta)
        lam = comm.sum(g_final) / steps
        _check_finite(lam, "the adjoint", steps)
        for seg_start in reversed(range(0, steps, k)):
            seg_end = min(seg_start + k, steps)
            thetas = [run.checkpoints.pop(seg_start)]
            for t in range(seg_start, seg_end - 1):
                g = comm.sum(task.train_gradient(thetas[-1], policy.at(t)))
                thetas.append(thetas[-1] - eta * g)
            for t in reversed(range(seg_start, seg_end)):
                theta = thetas.pop()
                dots, hvp = task.dots_and_hvp(theta, policy.at(t), lam)
                grads[policy.row(t)] -= eta * dots
                if t == 0:
                    break  # lambda_0 is not needed
                # the HVP and the desired-loss gradient summed over the ranks in one all-reduce
                hvp, g = comm.sum(hvp, task.objective_value_and_grad(theta)[1])
                lam = lam - eta * hvp
                lam = lam + g / steps
                _check_finite(lam, "the adjoint", t)
    return run, grads
