"""How well a fitted law predicts real runs: per-curve and pooled scores, the best run of a
family of equally long runs, and the warning for predictions far beyond the fitted runs.

The command line, the demo and the benchmark all score through here, on the same points a
law is fitted on (``law_points``: steps >= 1 after the warmup).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from learnlaw.curves import LossCurve
from learnlaw.laws.base import Law, LawInput, law_input, law_points
from learnlaw.laws.metrics import curve_metrics
from learnlaw.schedules import Schedule

# Predicting 3x past the fitted steps is the published use (fit 20-24K, predict 60-72K); warn beyond.
EXTRAPOLATION_WARNING = 3.5


@dataclass
class CurveScore:
    """A law's accuracy on one curve (errors are fractions, not percent)."""

    name: str
    points: int
    pred_error: float
    worst_error: float
    r2: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Scores:
    """Scores of several curves: ``pred_error`` is the mean of the curves' PredE (the published
    tables' convention), ``pred_error_pooled`` the mean over all points."""

    curves: list[CurveScore]
    pred_error: float
    worst_error: float
    r2: float
    points: int
    pred_error_pooled: float

    def to_json(self) -> dict:
        return {
            "curves": [c.to_json() for c in self.curves],
            "overall": {
                "pred_error": self.pred_error,
                "worst_error": self.worst_error,
                "r2": self.r2,
                "points": self.points,
                "pred_error_pooled": self.pred_error_pooled,
            },
        }


def score_curve(law: Law, curve: LossCurve, predicted: np.ndarray | None = None) -> CurveScore:
    """Score ``law`` on ``curve``'s points after the warmup (``predicted``: the law's values
    there, when already computed)."""
    kept = law_points(curve, law.max_points)
    predicted = law.predict(kept) if predicted is None else predicted
    m = curve_metrics(predicted, kept.losses)
    return CurveScore(kept.name, len(kept.steps), m["pred_error"], m["worst_error"], m["r2"])


def score_curves(law: Law, curves: list[LossCurve]) -> Scores:
    """Every curve's score and the overall ones."""
    scores, rel = [], []
    for c in curves:
        kept = law_points(c, law.max_points)
        predicted = law.predict(kept)
        scores.append(score_curve(law, kept, predicted))
        rel.append(np.abs(predicted - kept.losses) / kept.losses)
    pooled = np.concatenate(rel)
    return Scores(
        scores,
        float(np.mean([s.pred_error for s in scores])),
        float(pooled.max()),
        float(np.mean([s.r2 for s in scores])),
        len(pooled),
        float(pooled.mean()),
    )


def extrapolation_warning(
    law: Law, target: LossCurve | Schedule | LawInput, steps: np.ndarray | None = None
) -> str | None:
    """A warning when a prediction reaches far beyond the fitted runs (in steps or in LR
    area), else None."""
    info = getattr(law, "fit_info_", {})
    fitted = info.get("max_fitted_step")
    if not fitted:
        return None
    inp, steps = law_input(target, steps)
    last = int(steps.max())
    area = inp.forward_area_to(last)
    fitted_area = info.get("max_fitted_area") or area
    ratio = max(last / fitted, area / fitted_area)
    if ratio <= EXTRAPOLATION_WARNING:
        return None
    return (
        f"{inp.name or 'schedule'}: predicting to step {last}, {ratio:.1f}x beyond the longest "
        f"fitted run (step {fitted}); treat the prediction as an extrapolation"
    )


@dataclass
class Family:
    """Runs that end at the same step: which really ended lowest, which each law picks."""

    last_step: int
    members: list[str]
    real_best: str
    predicted_best: dict[str, str]

    def to_json(self) -> dict:
        return asdict(self)


def best_by_family(curves: list[LossCurve], laws: dict[str, Law]) -> list[Family]:
    """For every group of at least two runs of equal length (e.g. WSD variants)."""
    groups: dict[int, list[LossCurve]] = {}
    for c in curves:
        groups.setdefault(c.last_step, []).append(c)
    out = []
    for last, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        real = min(members, key=lambda c: c.losses[-1])
        predicted = {
            name: min(members, key=lambda c, m=m: m.predict(c, np.array([last]))[0]).name
            for name, m in laws.items()
        }
        out.append(Family(last, [c.name for c in members], real.name, predicted))
    return out
