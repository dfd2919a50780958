"""How well a fitted law predicts real runs: per-curve and pooled scores, the best run of a
family of equally long runs, and the warning for predictions far beyond the fitted runs.

The command line, the demo and the benchmark all score through here, on the same points a
law is fitted on (``law_points``: steps >= 1 after the warmup).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from learnlaw.curves import LossCurve, as_curves, noise
from learnlaw.laws.base import Law
from learnlaw.laws.inputs import LawInput, law_input
from learnlaw.laws.metrics import curve_metrics
from learnlaw.schedules import Schedule

# Predicting 3x past the fitted steps is the published use (fit 20-24K, predict 60-72K); warn beyond.
EXTRAPOLATION_WARNING = 3.5
# a run's final loss: the mean of its last scored points (one logged point is as noisy as any)
FINAL_POINTS = 10


@dataclass
class CurveScore:
    """A law's accuracy on one curve (errors are fractions, not percent).

    ``noise_floor``: the PredE of a smoothed copy of the curve against itself (no law can do
    better on these points); ``final_real``: the real loss at the last scored step from the
    last ``final_points`` scored points (from step ``final_from`` on; ``final_loss``);
    ``final_predicted``: the law's loss there."""

    name: str
    points: int
    pred_error: float
    worst_error: float
    r2: float
    noise_floor: float
    final_real: float
    final_predicted: float
    final_points: int
    final_from: int

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
    """Score ``law`` on the points of ``curve`` it speaks about (``law.points``; ``predicted``:
    the law's values there, when already computed)."""
    kept = law.points(curve)
    predicted = law.predict(kept) if predicted is None else predicted
    m = curve_metrics(predicted, kept.losses)
    k = min(FINAL_POINTS, len(kept.steps))
    return CurveScore(
        kept.name,
        len(kept.steps),
        m["pred_error"],
        m["worst_error"],
        m["r2"],
        noise(kept.losses).floor,
        final_loss(kept.losses),
        float(predicted[-1]),
        k,
        int(kept.steps[-k]),
    )


def final_loss(losses: np.ndarray, points: int = FINAL_POINTS) -> float:
    """A run's final loss from its last ``points`` logged losses: a quadratic fit of the
    log-loss over them, at the last step. It averages the noise of one logged point without
    the bias a plain mean has while the loss still falls (during a decay)."""
    k = min(points, len(losses))
    if k < 4:
        return float(losses[-1])
    x = np.arange(k, dtype=float)
    coef = np.polyfit(x, np.log(losses[-k:]), 2)
    return float(np.exp(np.polyval(coef, x[-1])))


def score_curves(law: Law, curves: LossCurve | list[LossCurve]) -> Scores:
    """Every curve's score and the overall ones."""
    curves = as_curves(curves, "score_curves")
    scores, rel = [], []
    for c in curves:
        kept = law.points(c)
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


def noise_band(
    curve: LossCurve, first: np.ndarray, second: np.ndarray, replicas: int = 200, seed: int = 0
) -> float:
    """How much of a difference in PredE between two predictions of ``curve``'s points the
    curve's noise alone makes: the standard deviation of PredE(first) - PredE(second) when the
    residuals of the curve around its smoothed copy are redrawn (with replacement) around
    that copy. A difference under about twice this is within the noise."""
    from learnlaw.curves import noise_window, smooth_losses

    smooth = smooth_losses(curve.losses, noise_window(len(curve.losses)))
    if smooth is curve.losses:
        return 0.0
    residual = curve.losses - smooth
    rng = np.random.default_rng(seed)
    draws = smooth + residual[rng.integers(0, len(residual), (replicas, len(residual)))]
    diff = np.mean(np.abs(first - draws) / draws, axis=1) - np.mean(
        np.abs(second - draws) / draws, axis=1
    )
    return float(np.std(diff))


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
    """Runs that end at the same step: which really ended lowest, which each law picks, and
    the final losses behind both (real: ``final_loss``; predicted: at the last step)."""

    last_step: int
    members: list[str]
    real_best: str
    predicted_best: dict[str, str]
    real_final: dict[str, float]
    predicted_final: dict[str, dict[str, float]]

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
        real, predicted = {}, {name: {} for name in laws}
        for c in members:
            for name, law in laws.items():
                score = score_curve(law, c)
                real[c.name] = score.final_real  # the same points for every law
                predicted[name][c.name] = score.final_predicted
        out.append(
            Family(
                last,
                [c.name for c in members],
                min(real, key=real.get),
                {name: min(p, key=p.get) for name, p in predicted.items()},
                real,
                predicted,
            )
        )
    return out


@dataclass
class LawComparison:
    """Several laws fitted on the same curves and scored on others (``compare_laws``).

    ``scores[law]`` per scored curve; ``mean[law]`` the mean PredE over them; ``noise[a, b]``
    the standard deviation that the curves' noise alone gives the difference of two laws' mean
    PredE (``noise_band``, combined over curves); ``families`` the runs of equal length."""

    fit_on: list[str]
    scores: dict[str, Scores]
    families: list[Family]
    noise: dict[tuple[str, str], float]
    seconds: dict[str, float]

    @property
    def mean(self) -> dict[str, float]:
        return {name: s.pred_error for name, s in self.scores.items()}

    @property
    def ranked(self) -> list[str]:
        return sorted(self.mean, key=self.mean.get)

    def within_noise(self, first: str, second: str) -> bool:
        """Whether the two laws' mean PredE differ by less than twice the noise's spread."""
        band = self.noise.get((first, second), self.noise.get((second, first), 0.0))
        return abs(self.mean[first] - self.mean[second]) < 2 * band


def compare_laws(
    laws: dict[str, Law], fit_curves: list[LossCurve], curves: list[LossCurve]
) -> LawComparison:
    """Fit every law on ``fit_curves``; score each on ``curves`` (the other runs), say how much
    of the differences the noise makes, and which run of each family each law picks
    (``families`` also counts the fitted runs)."""
    scores, predictions, seconds = {}, {}, {}
    for name, law in laws.items():
        law.fit(fit_curves)
        seconds[name] = law.fit_info_["seconds"]
        scores[name] = score_curves(law, curves)
        predictions[name] = [law.predict(law.points(c)) for c in curves]
    names = list(laws)
    noise_sd = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            bands = [
                noise_band(laws[a].points(c), pa, pb)
                for c, pa, pb in zip(curves, predictions[a], predictions[b])
            ]
            noise_sd[a, b] = float(np.sqrt(np.sum(np.square(bands))) / len(bands))
    seen = {id(c) for c in curves}
    every = [*curves, *(c for c in fit_curves if id(c) not in seen)]
    return LawComparison(
        [c.name for c in fit_curves],
        scores,
        best_by_family(every, laws),
        noise_sd,
        seconds,
    )
