"""What every loss-curve law shares: its inputs (per-step LR, warmup, model size), the
estimator interface (``fit`` / ``predict``), validation at the boundary, and the JSON form."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from learnlaw.curves import LossCurve
from learnlaw.errors import UserError
from learnlaw.laws.metrics import curve_metrics
from learnlaw.schedules import Schedule

FIT_FORMAT = "learnlaw.fit"
FIT_FORMAT_VERSION = 1
# Predicting 3x past the fitted steps is the published use (fit 20-24K, predict 60-72K); warn beyond.
EXTRAPOLATION_WARNING = 3.5


@dataclass
class Run:
    """What a law sees of one run: the LR at every step 0..S, the warmup length, the size."""

    lrs: np.ndarray
    warmup: int = 0
    model_size: float | None = None
    name: str = ""

    @property
    def peak(self) -> float:
        """The LR right after warmup: the value warmup steps are counted at."""
        return float(self.lrs[min(self.warmup, len(self.lrs) - 1)])

    def lrs_warmup_at_peak(self) -> np.ndarray:
        """Per-step LR with the warmup steps replaced by the peak (the laws' convention)."""
        eta = self.lrs.astype(float).copy()
        eta[: self.warmup] = self.peak
        return eta


def forward_area(eta: np.ndarray) -> np.ndarray:
    """S1(s) = sum_{i=1..s} eta_i for every s = 0..len-1 (the area under the LR curve)."""
    return np.concatenate([[0.0], np.cumsum(eta[1:])])


def as_run(
    target: LossCurve | Schedule | Run,
    steps: np.ndarray | None = None,
    *,
    warmup_steps: int | None = None,
    model_size: float | None = None,
) -> tuple[Run, np.ndarray]:
    """Turn a curve, a schedule or a run into ``(Run, steps)`` covering every requested step."""
    if isinstance(target, LossCurve):
        steps = target.steps if steps is None else np.asarray(steps, dtype=np.int64)
        schedule, name = target.schedule, target.name
        warmup = target.warmup_steps if warmup_steps is None else warmup_steps
        size = target.model_size if model_size is None else model_size
    elif isinstance(target, Schedule):
        if steps is None:
            raise ValueError("predicting a schedule needs the steps to predict at")
        steps = np.asarray(steps, dtype=np.int64)
        schedule, name = target, ""
        warmup = target.warmup if warmup_steps is None else warmup_steps
        size = model_size
    else:
        steps = np.asarray(steps, dtype=np.int64)
        if int(steps.max()) >= len(target.lrs):
            raise ValueError("the run's LR array does not reach the last requested step")
        return target, steps
    if schedule is None:
        raise UserError(f"{name or 'curve'}: no learning-rate schedule known")
    if len(steps) == 0:
        raise UserError(f"{name or 'curve'}: no steps to predict")
    n = int(steps.max()) + 1
    return Run(schedule.values(max(n, warmup + 1)), warmup, size, name), steps


def law_points(curve: LossCurve) -> LossCurve:
    """The part of ``curve`` a law speaks about: logged steps >= 1 after the warmup.

    Fitting and every score (predict, plots, compare, benchmarks) use the same points, so a
    log that starts at step 0 or inside the warmup fits and scores without an error.
    """
    keep = curve.steps >= max(curve.warmup_steps, 1)
    if not keep.any():
        raise UserError(
            f"{curve.name or 'curve'}: every logged point is at step 0 or inside the warmup "
            f"of {curve.warmup_steps} steps"
        )
    if keep.all():
        return curve
    left_out = int((~keep).sum())
    note = f"{curve.name}: left out {left_out} points at step 0 or inside the warmup"
    if curve.warmup_steps:
        note += f" (steps < {curve.warmup_steps})"
    return replace(
        curve, steps=curve.steps[keep], losses=curve.losses[keep], notes=[*curve.notes, note]
    )


class Law:
    """Base class of the laws: hyper-parameters in ``__init__``, learned values end in ``_``.

    Subclasses define ``name``, ``param_names``, ``n_params()``, ``_fit(runs, steps, losses)``
    (returning the parameter dict and the objective) and ``_predict(run, steps)``.
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]

    params_: dict[str, float]
    fit_info_: dict[str, Any]

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def n_params(self) -> int:
        return len(self.param_names)

    # ---- public API -----------------------------------------------------------------------
    def fit(self, curves: list[LossCurve], start: dict[str, float] | None = None) -> Law:
        """Fit jointly to every curve (equal weight per logged point); returns self.

        ``start`` (parameters, e.g. a previous fit's ``params_``) replaces the grid of starting
        points by one warm start; a momentum law then keeps its lambda (set ``lam`` to a number).
        """
        runs, steps, losses, notes = self.fit_points(curves)
        total = sum(len(s) for s in steps)
        if total <= self.n_params():
            raise UserError(
                f"{total} loss points in all, but the {self.name} law has {self.n_params()} "
                "parameters: fit on more points"
            )
        began = time.perf_counter()
        self.params_, objective = self._fit(runs, steps, losses, start=start)
        seconds = time.perf_counter() - began
        per_curve = []
        for c, run, s, y in zip(curves, runs, steps, losses):
            m = curve_metrics(self._predict(run, s), y)
            per_curve.append(
                {
                    "name": c.name,
                    "source": c.metadata.get("source", c.name),
                    "first_step": int(s[0]),
                    "last_step": int(s[-1]),
                    "points": len(s),
                    "warmup_steps": run.warmup,
                    "model_size": run.model_size,
                    "pred_error": m["pred_error"],
                    "r2": m["r2"],
                }
            )
        self.fit_info_ = {
            "curves": per_curve,
            "notes": notes,
            "objective": float(objective),
            "seconds": seconds,
            "max_fitted_step": max(int(s[-1]) for s in steps),
            "max_fitted_area": max(
                float(np.sum(r.lrs_warmup_at_peak()[1 : s[-1] + 1])) for r, s in zip(runs, steps)
            ),
        }
        return self

    def fit_points(self, curves: list[LossCurve]):
        """(runs, steps, losses, notes) of the points a fit uses (see ``law_points``)."""
        if not curves:
            raise UserError("no curves to fit")
        runs, steps, losses, notes = [], [], [], []
        for c in curves:
            kept = law_points(c)
            notes.extend(kept.notes[len(c.notes) :])
            run, s = as_run(kept)
            self._check_run(run, s)
            runs.append(run)
            steps.append(s)
            losses.append(kept.losses)
        sizes = {r.model_size for r in runs if r.model_size}
        if len(sizes) > 1 and not getattr(self, "size_scaling", False):
            notes.append(
                f"curves of {len(sizes)} model sizes are fitted by one size-free {self.name} law"
            )
        return runs, steps, losses, notes

    def bootstrap(self, curves: list[LossCurve], replicas: int, seed: int = 0) -> Law:
        """Refit on ``replicas`` resamplings of the fitted points (drawn with replacement within
        each curve), warm-started from the fit; the parameter sets go into ``fit_info_``."""
        self._require_fitted()
        if replicas < 2:
            raise UserError(f"--bootstrap {replicas}: needs at least 2 replicas")
        rng = np.random.default_rng(seed)
        runs, steps, losses, _ = self.fit_points(curves)
        sets = []
        for _ in range(replicas):
            picks = [np.sort(rng.integers(0, len(s), len(s))) for s in steps]
            params, _ = self._fit(
                runs,
                [s[i] for s, i in zip(steps, picks)],
                [y[i] for y, i in zip(losses, picks)],
                start=self.params_,
            )
            sets.append(params)
        self.fit_info_["bootstrap"] = {
            "replicas": sets,
            "seed": seed,
            "method": "pairs bootstrap of the fitted points within each curve",
        }
        return self

    def predict_bands(
        self, target, steps=None, *, level: float = 0.9, **kwargs
    ) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` band of the bootstrap replicas' predictions (needs ``bootstrap``)."""
        sets = getattr(self, "fit_info_", {}).get("bootstrap", {}).get("replicas")
        if not sets:
            raise UserError(
                "this fit has no bootstrap replicas; refit with 'learnlaw law fit --bootstrap N'"
            )
        fitted = self.params_
        try:
            preds = []
            for params in sets:
                self.params_ = params
                preds.append(self.predict(target, steps, **kwargs))
        finally:
            self.params_ = fitted
        tail = 100 * (1 - level) / 2
        return np.percentile(preds, tail, axis=0), np.percentile(preds, 100 - tail, axis=0)

    def predict(
        self,
        target: LossCurve | Schedule | Run,
        steps: np.ndarray | None = None,
        *,
        warmup_steps: int | None = None,
        model_size: float | None = None,
    ) -> np.ndarray:
        """Predicted loss at ``steps`` (a curve's own steps by default) under its schedule."""
        self._require_fitted()
        run, steps = as_run(target, steps, warmup_steps=warmup_steps, model_size=model_size)
        self._check_run(run, steps)
        return self._predict(run, steps)

    # ---- validation -----------------------------------------------------------------------
    def _check_run(self, run: Run, steps: np.ndarray) -> None:
        label = run.name or "schedule"
        if np.any(steps < 1):
            raise UserError(f"{label}: the laws need steps >= 1 (found step {int(steps.min())})")
        eta = run.lrs_warmup_at_peak()[: int(steps.max()) + 1]
        if not run.peak > 0:
            raise UserError(
                f"{label}: the learning rate after warmup must be positive, got {run.peak:g}"
            )
        if np.any(eta < 0):
            bad = int(np.argmax(eta < 0))
            raise UserError(f"{label}: step {bad}: negative learning rate {eta[bad]:g}")

    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError(f"this {self.name} law has not been fitted")

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        from learnlaw.files import versions

        self._require_fitted()
        return {
            "format": FIT_FORMAT,
            "format_version": FIT_FORMAT_VERSION,
            "law": self.name,
            "hyperparameters": self.hyperparameters(),
            "params": {k: float(v) for k, v in self.params_.items()},
            "fit": self.fit_info_,
            "versions": versions(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Law:
        law = cls(**obj["hyperparameters"])
        law.params_ = {k: float(obj["params"][k]) for k in law.active_param_names()}
        law.fit_info_ = obj.get("fit", {})
        return law

    def active_param_names(self) -> tuple[str, ...]:
        return self.param_names

    def fitted_range_note(self, run: Run, last_step: int) -> str | None:
        """A warning when a prediction reaches far beyond the fitted steps, else None."""
        info = getattr(self, "fit_info_", {})
        fitted = info.get("max_fitted_step")
        if not fitted:
            return None
        area = float(np.sum(run.lrs_warmup_at_peak()[1 : last_step + 1]))
        fitted_area = info.get("max_fitted_area") or area
        ratio = max(last_step / fitted, area / fitted_area)
        if ratio <= EXTRAPOLATION_WARNING:
            return None
        return (
            f"predicting to step {last_step}, {ratio:.1f}x beyond the longest fitted run "
            f"(step {fitted}); treat the prediction as an extrapolation"
        )
