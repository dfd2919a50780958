"""The Learning Law, checked on a run (SPEC A3).

At the optimum every example still in use contributes equally: CT_n(t) = grad L_dsr(theta_t) .
grad l_n(theta_t) is the same for all n with gamma_{n,t} > 0. Measured per step t:

- SIM_t = (sum_n gamma_{n,t} CT_n(t)) / s_t, s_t the standard deviation (n-1) of CT over the
  examples in use; higher = contributions closer to equal;
- Property 1: the share of harmful examples whose weight is (near) zero, at the steps where
  the policy sets some weights to zero; "harmful" is read three ways: CT <= 0 (the theorem's
  words, which include already-fitted examples whose CT is a rounding error below 0),
  CT < -tau * std(CT) at that step (clearly harmful), and the examples the task corrupted (the
  flipped labels of ``perceptron-noisy``);
- Property 2: the share of nearly perfectly fitted examples (loss below a threshold) whose
  weight is below a fraction of the step's largest weight;
- Property 3: the number of zero weights, against N - D for a linear model.

"Zero" is a threshold (``zero_weight / N``): an optimiser never produces exact zeros without an
exact projection, so every statistic states its thresholds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.policy.engine import Policy, run_policy
from learnlaw.tasks.base import Task


@dataclass
class Thresholds:
    zero_weight: float = 0.01  # weight < zero_weight / N counts as zero
    fitted_loss: float = 1e-6  # Property 2: an example with loss below this is "perfectly fitted"
    small_weight: float = 0.2  # Property 2: weight below small_weight x the step's largest weight
    away: float = 0.05  # a step is "away from uniform" when max_n |N gamma_n - 1| > away
    tau: float = 0.1  # Property 1, clearly harmful: CT < -tau x the step's std(CT)
    smooth: float = 0.01  # step law on a centred moving average of this fraction of T

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    def validate(self) -> None:
        checks = {
            "zero_weight": (self.zero_weight, "a non-negative number"),
            "fitted_loss": (self.fitted_loss, "a positive number"),
            "small_weight": (self.small_weight, "a number in [0, 1]"),
            "away": (self.away, "a non-negative number"),
            "tau": (self.tau, "a non-negative number"),
            "smooth": (self.smooth, "a fraction of the run in [0, 0.5]"),
        }
        ok = {
            "zero_weight": self.zero_weight >= 0,
            "fitted_loss": self.fitted_loss > 0,
            "small_weight": 0 <= self.small_weight <= 1,
            "away": self.away >= 0,
            "tau": self.tau >= 0,
            "smooth": 0 <= self.smooth <= 0.5,
        }
        for name, (value, expected) in checks.items():
            if not (math.isfinite(value) and ok[name]):
                option = "--" + name.replace("_", "-")
                raise UserError(f"{option} {value}: expected {expected}")


@dataclass
class PolicyTrace:
    """Per-step Learning-Law statistics of one policy's run (at the recorded steps)."""

    steps: np.ndarray
    sim: np.ndarray
    weighted_ct: np.ndarray
    zero_weights: np.ndarray
    away: np.ndarray  # bool: the step's weights are away from uniform
    prop1_share: np.ndarray  # nan where the step has no zero weights or no CT <= 0 examples
    prop1_counts: np.ndarray  # (harmful examples, of which zero-weighted) per step
    prop1_unfitted_counts: np.ndarray  # the same, for harmful examples not already fitted
    prop1_tau_counts: np.ndarray  # (examples with CT < -tau std(CT), of which zero-weighted)
    prop1_near_zero_fitted: np.ndarray  # CT <= 0 examples already fitted with CT >= -tau std
    prop1_corrupted_counts: np.ndarray  # (corrupted examples, of which zero-weighted)
    prop2_share: np.ndarray  # nan where no example is perfectly fitted
    prop2_counts: np.ndarray
    mean_ct: np.ndarray  # per example, over the recorded steps
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


def sim_statistic(gamma: np.ndarray, ct: np.ndarray, in_use: np.ndarray) -> float:
    """SIM_t for one step (nan when fewer than two examples are in use or CT is constant)."""
    used = ct[in_use]
    if len(used) < 2:
        return float("nan")
    spread = float(np.std(used, ddof=1))
    return float(np.sum(gamma * ct) / spread) if spread > 0 else float("nan")


def trace_policy(
    task: Task,
    policy: Policy,
    eta: float,
    steps: int,
    *,
    stride: int = 1,
    snapshot_steps: tuple[int, ...] = (),
    thresholds: Thresholds | None = None,
) -> PolicyTrace:
    """Train under ``policy`` and measure the Learning Law every ``stride`` steps."""
    th = thresholds or Thresholds()
    n = task.n_train
    rows: dict[str, list] = {
        k: []
        for k in (
            "t",
            "sim",
            "wct",
            "zeros",
            "away",
            "p1",
            "p1c",
            "p1u",
            "p1t",
            "p1z",
            "p1k",
            "p2",
            "p2c",
        )
    }
    corrupted = None if task.corrupted is None else np.asarray(task.corrupted, dtype=bool)
    ct_sum = np.zeros(n)
    snapshots: dict[int, dict[str, np.ndarray]] = {}

    def on_step(t: int, theta: torch.Tensor) -> None:
        if t == steps or t % stride:
            return
        with torch.no_grad():
            ct = task.contributions(theta).double().cpu().numpy()
            loss = task.losses(theta, "train").double().cpu().numpy()
        gamma = policy.at(t).double().cpu().numpy()
        zero = gamma < th.zero_weight / n
        harmful = ct <= 0
        fitted = loss < th.fitted_loss
        rows["t"].append(t)
        rows["sim"].append(sim_statistic(gamma, ct, ~zero))
        rows["wct"].append(float(np.sum(gamma * ct)))
        rows["zeros"].append(int(zero.sum()))
        rows["away"].append(bool(np.max(np.abs(n * gamma - 1)) > th.away))
        rows["p1c"].append((int(harmful.sum()), int((harmful & zero).sum())))
        rows["p1u"].append((int((harmful & ~fitted).sum()), int((harmful & ~fitted & zero).sum())))
        clearly = ct < -th.tau * (np.std(ct, ddof=1) if n > 1 else 0.0)
        rows["p1t"].append((int(clearly.sum()), int((clearly & zero).sum())))
        rows["p1z"].append(int((harmful & fitted & ~clearly).sum()))
        if corrupted is not None:
            rows["p1k"].append((int(corrupted.sum()), int((corrupted & zero).sum())))
        rows["p1"].append(
            rows["p1c"][-1][1] / rows["p1c"][-1][0] if zero.any() and harmful.any() else np.nan
        )
        small = gamma < th.small_weight * gamma.max()
        rows["p2c"].append((int(fitted.sum()), int((fitted & small).sum())))
        rows["p2"].append(rows["p2c"][-1][1] / rows["p2c"][-1][0] if fitted.any() else np.nan)
        ct_sum[:] += ct
        if t in snapshot_steps:
            snapshots[t] = {"ct": ct, "gamma": gamma, "loss": loss}

    run = run_policy(task, policy, eta, steps, on_step=on_step)
    return PolicyTrace(
        steps=np.array(rows["t"]),
        sim=np.array(rows["sim"]),
        weighted_ct=np.array(rows["wct"]),
        zero_weights=np.array(rows["zeros"]),
        away=np.array(rows["away"]),
        prop1_share=np.array(rows["p1"], dtype=float),
        prop1_counts=np.array(rows["p1c"]).reshape(-1, 2),
        prop1_unfitted_counts=np.array(rows["p1u"]).reshape(-1, 2),
        prop1_tau_counts=np.array(rows["p1t"]).reshape(-1, 2),
        prop1_near_zero_fitted=np.array(rows["p1z"], dtype=int),
        prop1_corrupted_counts=np.array(rows["p1k"], dtype=int).reshape(-1, 2),
        prop2_share=np.array(rows["p2"], dtype=float),
        prop2_counts=np.array(rows["p2c"]).reshape(-1, 2),
        mean_ct=ct_sum / max(1, len(rows["t"])),
        curves=run.curves,
        snapshots=snapshots,
    )


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.mean(x)) if len(x) else None


def _shares(counts: np.ndarray) -> np.ndarray:
    """Per step: examples meeting a property / examples, NaN where there are none."""
    counts = np.asarray(counts, dtype=float).reshape(-1, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[:, 0] > 0, counts[:, 1] / counts[:, 0], np.nan)


def _share(counts) -> float | None:
    """(examples, of which meeting a property) -> the share, or None without examples."""
    return float(counts[1] / counts[0]) if counts[0] else None


def learning_law_summary(
    uniform: PolicyTrace,
    learned: PolicyTrace,
    n_train: int,
    dim: int | None,
    thresholds: Thresholds,
) -> dict:
    """The headline Learning-Law numbers of both policies, with the thresholds they used."""
    away = learned.away
    p1_steps = np.isfinite(learned.prop1_share)
    zeroing = learned.zero_weights > 0  # the steps where the policy zeroes some weights
    # (examples, of which meeting the property) summed over the steps; (0, 0) when none
    p1_pooled = learned.prop1_counts[p1_steps].sum(axis=0)
    p1_unfitted = learned.prop1_unfitted_counts[p1_steps].sum(axis=0)
    tau_pooled = learned.prop1_tau_counts[zeroing].sum(axis=0)
    has_corrupted = len(learned.prop1_corrupted_counts) > 0
    corrupted_pooled = (
        learned.prop1_corrupted_counts[zeroing].sum(axis=0) if has_corrupted else None
    )
    p2_steps = np.isfinite(learned.prop2_share)
    p2_pooled = learned.prop2_counts[p2_steps].sum(axis=0)
    out = {
        "thresholds": thresholds.to_json(),
        "recorded_steps": len(learned.steps),
        "sim": {
            "uniform": _mean(uniform.sim),
            "learned": _mean(learned.sim),
            "away_steps": int(away.sum()),
            "uniform_away_steps": _mean(uniform.sim[away]) if away.any() else None,
            "learned_away_steps": _mean(learned.sim[away]) if away.any() else None,
            # at the optimum sum_n gamma_n CT_n = -dL_dsr/dt > 0 at every step: a negative value
            # means the policy's step raises the desired loss (to first order)
            "negative_weighted_ct_share": {
                "uniform": _mean((uniform.weighted_ct < 0).astype(float)),
                "learned": _mean((learned.weighted_ct < 0).astype(float)),
            },
        },
        "property1": {
            "description": "share of examples with CT <= 0 whose weight < zero_weight / N, at steps with zero weights",
            "share_mean_over_steps": _mean(learned.prop1_share),
            "share_pooled": _share(p1_pooled),
            "steps": int(p1_steps.sum()),
            # CT <= 0 mixes harmful examples with already-fitted ones whose CT is ~0 (or exactly
            # 0): the latter are Property 2's, so Property 1 is also given without them
            "already_fitted_share": _share((p1_pooled[0], p1_pooled[0] - p1_unfitted[0])),
            "share_pooled_not_fitted": _share(p1_unfitted),
            # clearly harmful: CT below -tau x the step's standard deviation of CT
            "below_tau": {
                "tau": thresholds.tau,
                "share_pooled": _share(tau_pooled),
                "share_mean_over_steps": _mean(_shares(learned.prop1_tau_counts[zeroing])),
                "examples_per_step": float(learned.prop1_tau_counts[:, 0].mean())
                if len(learned.steps)
                else None,
            },
            # CT <= 0 but within tau std of 0 and already fitted: Property 2's, not harmful
            "near_zero_fitted_per_step": float(learned.prop1_near_zero_fitted[zeroing].mean())
            if zeroing.any()
            else None,
            # the examples the task corrupted (flipped labels, edited sequences)
            "corrupted": None
            if corrupted_pooled is None
            else {
                "share_pooled": _share(corrupted_pooled),
                "share_mean_over_steps": _mean(_shares(learned.prop1_corrupted_counts[zeroing])),
                "examples": int(learned.prop1_corrupted_counts[0, 0]),
            },
            "zeroing_steps": int(zeroing.sum()),
        },
        "property2": {
            "description": "share of examples with loss < fitted_loss whose weight < small_weight x max weight",
            "share_mean_over_steps": _mean(learned.prop2_share),
            "share_pooled": _share(p2_pooled),
            "steps": int(p2_steps.sum()),
        },
        "property3": {
            "zero_weights_mean": float(np.mean(learned.zero_weights))
            if len(learned.zero_weights)
            else None,
            "zero_weights_max": int(np.max(learned.zero_weights))
            if len(learned.zero_weights)
            else None,
            "n_train": n_train,
            "n_minus_dim": None if dim is None else n_train - dim,
        },
    }
    return out
