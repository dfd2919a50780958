"""How much faster a learned policy learns (SPEC A2, A5): AUC, AUC ratio, acceleration ratio,
compression ratio; and where it puts its weight when some examples are corrupted. Curves are
arrays over steps t = 0..T (index t holds L(theta_t))."""

from __future__ import annotations

import math

import numpy as np


def loss_auc(curve: np.ndarray) -> float:
    """Area under the loss curve: sum_{t=1..T} L(theta_t) (theta_0 does not depend on the policy)."""
    return float(np.sum(np.asarray(curve, dtype=float)[1:]))


def auc_ratio(conventional: np.ndarray, learned: np.ndarray) -> float:
    """Conventional AUC / learned AUC (> 1: the learned policy compresses better)."""
    return loss_auc(conventional) / loss_auc(learned)


def compression_ratio(curve: np.ndarray, n_classes: int, log_base: float = 2.0) -> float:
    """CR = T * log_base(|V|) / sum_{t=1..T} L(theta_t), the loss in nats (SPEC A2 convention)."""
    steps = len(curve) - 1
    return steps * math.log(n_classes, log_base) / loss_auc(curve)


def first_step_reaching(curve: np.ndarray, level: float) -> int | None:
    """The first t >= 1 with L(theta_t) <= level, or None."""
    hits = np.flatnonzero(np.asarray(curve)[1:] <= level)
    return int(hits[0]) + 1 if len(hits) else None


def acceleration_ratio(conventional: np.ndarray, learned: np.ndarray) -> float:
    """AR = T / min{t : L_learned(t) <= L_conventional(T)}.

    If the learned curve never reaches the conventional final loss, the learned policy is the
    slower one: AR = t' / T < 1 with t' the first step where the conventional curve reaches the
    learned final loss.
    """
    steps = len(conventional) - 1
    t = first_step_reaching(learned, float(conventional[-1]))
    if t is not None:
        return steps / t
    t_back = first_step_reaching(conventional, float(learned[-1]))
    return (t_back if t_back is not None else steps) / steps


def speedup_metrics(
    conventional: np.ndarray, learned: np.ndarray, n_classes: int, log_base: float = 2.0
) -> dict:
    """The headline numbers of a run, on one pair of curves (the test set's, by convention)."""
    return {
        "acceleration_ratio": acceleration_ratio(conventional, learned),
        "auc_ratio": auc_ratio(conventional, learned),
        "compression_ratio": {
            "uniform": compression_ratio(conventional, n_classes, log_base),
            "learned": compression_ratio(learned, n_classes, log_base),
            "log_base": log_base,
        },
        "final_loss": {"uniform": float(conventional[-1]), "learned": float(learned[-1])},
        "auc": {"uniform": loss_auc(conventional), "learned": loss_auc(learned)},
    }


def group_mean_weights(
    per_step: np.ndarray, corrupted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """At every step: (mean weight on clean examples, mean weight on corrupted ones)."""
    return per_step[:, ~corrupted].mean(axis=1), per_step[:, corrupted].mean(axis=1)


def corruption_summary(per_step: np.ndarray, corrupted: np.ndarray | None) -> dict | None:
    """Where a policy puts its weight when the task records corrupted examples (else None).

    ``per_step`` holds the policy's weights at every step (T x N): the ratio is computed per
    step, so a policy with one row per segment of steps counts each row once per step."""
    if corrupted is None or not np.any(corrupted) or np.all(corrupted):
        return None
    corrupted = np.asarray(corrupted, dtype=bool)
    clean, dirty = group_mean_weights(per_step, corrupted)
    ratio = dirty / clean
    steps = len(ratio)
    return {
        "mean": float(ratio.mean()),
        "first_step": float(ratio[0]),
        "last_step": float(ratio[-1]),
        "at_fraction_of_run": {
            f"{f:g}": float(ratio[min(steps - 1, int(f * steps))]) for f in (0.1, 0.25, 0.5, 0.75)
        },
        "every_step": ratio[:: max(1, steps // 100)].tolist(),
        "corrupted_examples": int(corrupted.sum()),
        "definition": "mean weight on corrupted training examples / mean weight on clean ones, "
        "at every step t, averaged over t",
    }
