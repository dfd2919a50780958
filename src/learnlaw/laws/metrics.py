"""Accuracy of a predicted loss curve against the real one. Errors are fractions, not percent."""

from __future__ import annotations

import numpy as np


def pred_error(predicted: np.ndarray, real: np.ndarray) -> float:
    """PredE: mean relative error |predicted - real| / real over the points."""
    return float(np.mean(np.abs(predicted - real) / real))


def worst_error(predicted: np.ndarray, real: np.ndarray) -> float:
    """Largest relative error over the points."""
    return float(np.max(np.abs(predicted - real) / real))


def r_squared(predicted: np.ndarray, real: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (nan for a flat real curve)."""
    ss_tot = float(np.sum((real - np.mean(real)) ** 2))
    if ss_tot == 0:
        return float("nan")
    return 1.0 - float(np.sum((predicted - real) ** 2)) / ss_tot


def rmse(predicted: np.ndarray, real: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - real) ** 2)))


def mae(predicted: np.ndarray, real: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - real)))


def curve_metrics(predicted: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Every metric at once, as plain floats keyed by name."""
    predicted = np.asarray(predicted, dtype=float)
    real = np.asarray(real, dtype=float)
    return {
        "pred_error": pred_error(predicted, real),
        "worst_error": worst_error(predicted, real),
        "r2": r_squared(predicted, real),
        "rmse": rmse(predicted, real),
        "mae": mae(predicted, real),
    }
