"""Choosing a schedule through a fitted law: compare candidates, sweep the WSD decay fraction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.schedules import Schedule, parse_schedule


@dataclass
class SchedulePrediction:
    """A schedule's predicted loss at every step 1..total."""

    label: str
    schedule: Schedule
    steps: np.ndarray
    losses: np.ndarray

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def lrs(self) -> np.ndarray:
        return self.schedule.values(int(self.steps[-1]) + 1)


def resolve_total(schedule: Schedule, total: int | None, label: str) -> int:
    total = total if total is not None else schedule.total
    if total is None:
        raise UserError(
            f"{label}: the schedule has no total; give total=N in the spec or --steps N"
        )
    if total < 2:
        raise UserError(f"{label}: total steps must be at least 2, got {total}")
    return int(total)


def predict_schedule(
    law: Law,
    schedule: Schedule,
    total: int | None = None,
    *,
    model_size: float | None = None,
    label: str = "",
    every: int = 1,
) -> SchedulePrediction:
    """The law's curve for ``schedule`` from the end of warmup to ``total``, every ``every`` steps.

    Steps inside the warmup are left out: the laws count warmup at the peak LR, so their
    values there describe no real run.
    """
    label = label or (schedule.spec() if schedule.kind != "points" else "schedule")
    total = resolve_total(schedule, total, label)
    first = max(schedule.warmup, 1)
    if first >= total:
        raise UserError(f"{label}: nothing to predict after a warmup of {first} steps")
    steps = np.unique(np.append(np.arange(first, total + 1, every), total)).astype(np.int64)
    losses = law.predict(schedule, steps, model_size=model_size)
    return SchedulePrediction(label, schedule, steps, losses)


def compare_schedules(
    law: Law,
    specs: list[str],
    total: int | None = None,
    *,
    model_size: float | None = None,
) -> list[SchedulePrediction]:
    """Predicted curves of several schedules (each to its own total unless ``total`` is given)."""
    if not specs:
        raise UserError("give at least one schedule spec to compare")
    return [
        predict_schedule(law, parse_schedule(s), total, model_size=model_size, label=s)
        for s in specs
    ]


def wsd_spec(
    total: int, peak: float, final: float, warmup: int, fraction: float, shape: str
) -> str:
    return (
        f"wsd:peak={peak:g},final={final:g},warmup={warmup},total={total},"
        f"decay_frac={fraction:g},shape={shape}"
    )


def sweep_wsd_fraction(
    law: Law,
    total: int,
    peak: float,
    *,
    final: float = 0.0,
    shape: str = "linear",
    warmup: int = 0,
    fractions: np.ndarray | None = None,
    model_size: float | None = None,
) -> list[tuple[float, float]]:
    """(decay fraction, predicted final loss) for WSD schedules that differ only in the fraction."""
    if fractions is None:
        fractions = np.round(np.arange(0.05, 1.0001, 0.05), 4)
    out = []
    for fraction in fractions:
        start = round(total * (1 - fraction))
        if start < warmup:
            continue  # the decay would begin inside the warmup
        schedule = parse_schedule(wsd_spec(total, peak, final, warmup, float(fraction), shape))
        loss = law.predict(schedule, np.array([total]), model_size=model_size)[0]
        out.append((float(fraction), float(loss)))
    if not out:
        raise UserError(f"no decay fraction fits after a warmup of {warmup} steps in {total} steps")
    return out
