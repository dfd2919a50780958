"""How much faster a learned policy learns (SPEC A2, A5): AUC, AUC ratio, acceleration ratio,
compression ratio. Curves are arrays over steps t = 0..T (index t holds L(theta_t))."""

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


def largest_rise(curve: np.ndarray, start: int = 0) -> dict[str, float | int]:
    """The largest increase of a loss curve above its running minimum from step ``start`` on:
    ``rise`` = L(to_step) - L(from_step) with ``from_step`` the best step in start..to_step; 0
    for a curve that only falls. A step law L0 + (B/t)^beta only falls, so a large rise in the
    fitted range says why a fit is poor."""
    y = np.asarray(curve, dtype=float)[start:]
    best = np.minimum.accumulate(y)
    to_step = int(np.argmax(y - best))
    from_step = int(np.argmin(y[: to_step + 1]))
    return {
        "rise": float(y[to_step] - y[from_step]),
        "from_step": start + from_step,
        "to_step": start + to_step,
    }


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


def group_mean_weights(weights: np.ndarray, corrupted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per policy row: (mean weight on clean examples, mean weight on corrupted ones)."""
    return weights[:, ~corrupted].mean(axis=1), weights[:, corrupted].mean(axis=1)


def corrupted_weight_ratio(weights: np.ndarray, corrupted: np.ndarray) -> np.ndarray:
    """Per policy row: mean weight on corrupted examples / mean weight on clean ones."""
    clean, dirty = group_mean_weights(weights, corrupted)
    return dirty / clean


def corruption_summary(weights: np.ndarray, corrupted: np.ndarray | None) -> dict | None:
    """Where a policy puts its weight when the task records corrupted examples (else None).

    ``weights`` has one row per policy row (a step when segment = 1)."""
    if corrupted is None or not corrupted.any() or corrupted.all():
        return None
    ratio = corrupted_weight_ratio(weights, corrupted)
    rows = len(ratio)
    return {
        "mean": float(ratio.mean()),
        "first_row": float(ratio[0]),
        "last_row": float(ratio[-1]),
        "at_fraction_of_run": {
            f"{f:g}": float(ratio[min(rows - 1, int(f * rows))]) for f in (0.1, 0.25, 0.5, 0.75)
        },
        "every_row": ratio[:: max(1, rows // 100)].tolist(),
        "corrupted_examples": int(corrupted.sum()),
        "definition": "mean weight on corrupted training examples / mean weight on clean ones, per policy row (a step when segment = 1)",
    }
