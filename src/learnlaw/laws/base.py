"""What every loss-curve law shares: the estimator interface (``fit`` / ``predict``), the
Huber delta, the bootstrap, validation at the boundary, and the JSON form (the law's input and
the points it fits: ``learnlaw.laws.inputs``).

Conventions (scikit-learn's): the constructor stores hyper-parameters and nothing else;
``fit(curves)`` learns and returns ``self``; learned values end in ``_``; ``predict`` and
``predict_bands`` are pure.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from learnlaw.curves import LossCurve, as_curves, noise
from learnlaw.errors import UserError
from learnlaw.laws import fitting
from learnlaw.laws.inputs import LawInput, first_law_step, law_input, law_points
from learnlaw.laws.metrics import curve_metrics
from learnlaw.schedules import Schedule

FIT_FORMAT = "learnlaw.fit"
FIT_FORMAT_VERSION = 2


# the Huber delta of "auto": the published 1e-3, or 3 noise sigmas when the points are noisier,
# so that noise is fitted in the least-squares regime (the mean loss), and only outliers
# beyond 3 sigma are down-weighted (a delta well under the noise fits the median instead,
# which skewed batch noise puts below the mean)
DELTA_FLOOR = 1e-3
DELTA_NOISE = 3.0
COMMON_HYPERPARAMETERS = ("delta", "max_points", "fit_from", "smooth", "bootstrap", "seed")


class Law:
    """Base class of the laws.

    Subclasses define ``name``, ``param_names``, ``hyperparameters()``, ``_fit(inputs, steps,
    losses, start)`` (returning the parameter dict and the objective) and ``_predict(params,
    inp, steps)``; they may learn more than ``params_`` (``learned()`` lists it for saving).

    Hyper-parameters every law has (``COMMON_HYPERPARAMETERS``), about its data: ``delta``
    (the Huber delta of the log residuals, or ``"auto"``: ``DELTA_FLOOR`` or ``DELTA_NOISE``
    noise sigmas of the fitted points, whichever is larger; the value used is ``delta_``),
    ``max_points`` (per curve; more are averaged in bins), ``fit_from`` (the first step fitted
    and scored; None: after the warmup, and from 5% of the steps of a log without warmup),
    ``smooth`` (a window of points to smooth noisy logs over before fitting and scoring, or
    None), ``bootstrap`` and ``seed`` (refits on resampled points, for ``predict_bands``).
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    # per curve, the most points the fit itself uses (more are averaged in bins for the fit
    # only, with a note); None: every point of ``points``
    fit_points: ClassVar[int | None] = None

    delta: float | str
    max_points: int
    fit_from: int | None
    smooth: int | None
    bootstrap: int
    seed: int

    params_: dict[str, float]
    fit_info_: dict[str, Any]
    bootstrap_params_: list[dict[str, float]]

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def common_hyperparameters(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in COMMON_HYPERPARAMETERS}

    def check_hyperparameters(self) -> None:
        """One-line errors for hyper-parameters of the wrong type or range (subclasses extend)."""
        _check_int(self, "bootstrap", 0)
        _check_int(self, "seed", None)
        _check_int(self, "max_points", 10)
        _check_int(self, "fit_from", 1)
        _check_int(self, "smooth", 5)
        delta = self.delta
        if delta != "auto" and not (_is_number(delta) and 0 < delta < float("inf")):
            raise UserError(
                f"{self.name} law: delta = {delta!r}: expected a positive number or 'auto'"
            )

    def points(self, curve: LossCurve) -> LossCurve:
        """The points of ``curve`` this law fits and scores (``law_points`` with its
        ``max_points``, ``fit_from`` and ``smooth``)."""
        return law_points(curve, self.max_points, fit_from=self.fit_from, smooth=self.smooth)

    def param_bounds(self) -> list[tuple[float | None, float | None]]:
        """(low, high) of every parameter in ``active_param_names()`` order (None: unbounded)."""
        raise NotImplementedError

    def check_params(self, params: dict[str, float]) -> None:
        """Parameters a loaded fit may hold: finite and within the law's bounds."""
        for name, (lo, hi) in zip(self.active_param_names(), self.param_bounds()):
            value = params[name]
            if not (_is_number(value) and math.isfinite(value)):
                raise UserError(f"parameter {name} = {value!r}: expected a finite number")
            if (lo is not None and value < lo - 1e-12) or (hi is not None and value > hi + 1e-12):
                raise UserError(
                    f"parameter {name} = {value!r}: outside the {self.name} law's range "
                    f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
                )

    def active_param_names(self) -> tuple[str, ...]:
        return self.param_names

    def n_params(self) -> int:
        return len(self.active_param_names())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    # ---- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        curves: list[LossCurve],
        start: dict[str, float] | None = None,
        *,
        progress: bool = False,
    ) -> Law:
        """Fit jointly to every curve (equal weight per logged point); returns self.

        Only the points a law speaks about are fitted (see ``law_points``). ``start``
        (parameters, e.g. another fit's ``params_``) replaces the grid of starting points by
        one warm start. With ``bootstrap=N`` the law is also refitted on N resamplings of the
        points (``bootstrap_params_``, used by ``predict_bands``). ``progress`` shows a bar.
        """
        curves = as_curves(curves, f"{self.name} law fit")
        with fitting.progress(f"fitting the {self.name} law", progress):
            return self._fit_all(curves, start)

    def _fit_all(self, curves, start) -> Law:
        self.check_hyperparameters()
        inputs, steps, losses, notes, noises = self._fit_points(curves)
        total = sum(len(s) for s in steps)
        if total <= self.n_params():
            raise UserError(
                f"{total} loss points in all, but the {self.name} law has {self.n_params()} "
                "parameters: fit on more points"
            )
        self.delta_, delta_note = self._choose_delta(losses)
        self._notes: list[str] = [delta_note] if delta_note else []
        began = time.perf_counter()
        self.params_, objective = self._fit(inputs, steps, losses, start=start)
        seconds = time.perf_counter() - began
        notes = [*notes, *self._notes, *_undetermined_annealing(inputs, steps)]
        per_curve = []
        for c, inp, s, y, z in zip(curves, inputs, steps, losses, noises):
            m = curve_metrics(self._predict(self.params_, inp, s), y)
            per_curve.append(
                {
                    "name": c.name,
                    "source": c.metadata.get("source", c.name),
                    "first_step": int(s[0]),
                    "last_step": int(s[-1]),
                    "points": len(s),
                    "warmup_steps": inp.warmup,
                    "model_size": inp.model_size,
                    "pred_error": m["pred_error"],
                    "r2": m["r2"],
                    "noise_floor": z.floor,
                }
            )
        self.fit_info_ = {
            "curves": per_curve,
            "notes": notes,
            "delta": self.delta_,
            "objective": float(objective),
            "seconds": seconds,
            "max_fitted_step": max(int(s[-1]) for s in steps),
            "max_fitted_area": max(
                inp.forward_area_to(int(s[-1])) for inp, s in zip(inputs, steps)
            ),
        }
        self.bootstrap_params_ = self._bootstrap(inputs, steps, losses) if self.bootstrap else []
        return self

    def _fit_points(self, curves: list[LossCurve]):
        """(inputs, steps, losses, notes, noises) of the points a fit uses (``points``); the
        noise is that of the points before any smoothing."""
        if not curves:
            raise UserError("no curves to fit")
        inputs, steps, losses, notes, noises = [], [], [], [], []
        for c in curves:
            kept = self.points(c)
            notes.extend(kept.notes[len(c.notes) :])
            raw = law_points(c, self.max_points, fit_from=self.fit_from) if self.smooth else kept
            noises.append(noise(raw.losses))
            if self.fit_points is not None and len(kept.steps) > self.fit_points:
                # the fit's cost follows the points; a smooth law needs no more than this
                binned = kept.binned(self.fit_points)
                notes.append(
                    f"{kept.name}: fitted on {len(binned.steps)} bins of its {len(kept.steps)} "
                    f"points (the {self.name} law's cost grows with the points; scores use all)"
                )
                kept = binned
            inp, s = law_input(kept)
            self._check_input(inp, s)
            inputs.append(inp)
            steps.append(s)
            losses.append(kept.losses)
        sizes = {inp.model_size for inp in inputs if inp.model_size}
        if len(sizes) > 1 and not getattr(self, "size_scaling", False):
            notes.append(
                f"curves of {len(sizes)} model sizes are fitted by one size-free {self.name} law"
            )
        return inputs, steps, losses, notes, noises

    def _choose_delta(self, fitted: list[np.ndarray]) -> tuple[float, str | None]:
        """(the Huber delta used, a note): the given delta, or for "auto" the larger of
        ``DELTA_FLOOR`` and ``DELTA_NOISE`` x the noise sigma of the fitted points (the median
        over curves; after smoothing, that of the smoothed points)."""
        if self.delta != "auto":
            return float(self.delta), None
        sigma = float(np.median([noise(y).sigma for y in fitted]))
        delta = max(DELTA_FLOOR, DELTA_NOISE * sigma)
        if delta == DELTA_FLOOR:
            return delta, None
        return delta, (
            f"Huber delta {delta:.2g} ({DELTA_NOISE:g} x the noise sigma {sigma:.2g} of the log "
            f"losses) instead of {DELTA_FLOOR:g}, so that noisy points are fitted by their mean"
        )

    def delta_used(self) -> float:
        """The Huber delta of the fit (``delta_``), or the one a fit would start from."""
        if hasattr(self, "delta_"):
            return self.delta_
        return DELTA_FLOOR if self.delta == "auto" else float(self.delta)

    def _note(self, message: str) -> None:
        """A note of the fit in progress (shown by the CLI, kept in ``fit_info_``)."""
        if hasattr(self, "_notes"):
            self._notes.append(message)

    def _bootstrap(self, inputs, steps, losses) -> list[dict[str, float]]:
        """Refits on resamplings of the fitted points (drawn with replacement within each
        curve), warm-started from the fit."""
        if self.bootstrap < 2:
            raise UserError(f"bootstrap={self.bootstrap}: needs at least 2 replicas (or 0)")
        rng = np.random.default_rng(self.seed)
        sets = []
        for _ in range(self.bootstrap):
            picks = [np.sort(rng.integers(0, len(s), len(s))) for s in steps]
            params, _ = self._fit(
                inputs,
                [s[i] for s, i in zip(steps, picks)],
                [y[i] for y, i in zip(losses, picks)],
                start=self.params_,
            )
            sets.append(params)
        return sets

    # ---- prediction ------------------------------------------------------------------------
    def predict(
        self,
        target: LossCurve | Schedule | LawInput,
        steps: np.ndarray | None = None,
        *,
        warmup_steps: int | None = None,
        model_size: float | None = None,
    ) -> np.ndarray:
        """Predicted loss.

        - ``predict(curve)``: at the curve's logged steps;
        - ``predict(schedule, steps)``: at the given steps (a schedule or its spec string; one
          step gives a float);
        - ``predict(schedule)``: at every step from the end of the warmup to the schedule's
          total (``learnlaw.planning.predict_schedule`` returns those steps with the losses).

        NaN at step 0 and inside the warmup: no law describes them (``law_points(curve)``
        gives a curve's points with a prediction).
        """
        out = self._predict_checked(self.params_fitted(), target, steps, warmup_steps, model_size)
        return float(out[0]) if steps is not None and np.ndim(steps) == 0 else out

    def predict_bands(
        self,
        target: LossCurve | Schedule | LawInput,
        steps: np.ndarray | None = None,
        *,
        level: float = 0.9,
        warmup_steps: int | None = None,
        model_size: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` band of the bootstrap refits' predictions (fit with
        ``bootstrap=N``): parameter uncertainty, not the run-to-run noise of the loss."""
        if not 0 < level < 1:
            raise UserError(f"level {level}: must be in (0, 1)")
        preds = self.predict_replicas(
            target, steps, warmup_steps=warmup_steps, model_size=model_size
        )
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(preds, tail, axis=0), np.percentile(preds, 100 - tail, axis=0)
        return (float(low), float(high)) if preds.ndim == 1 else (low, high)

    def predict_replicas(
        self,
        target: LossCurve | Schedule | LawInput,
        steps: np.ndarray | None = None,
        *,
        warmup_steps: int | None = None,
        model_size: float | None = None,
    ) -> np.ndarray:
        """Every bootstrap refit's prediction (replicas x steps, or one per replica for a single
        step; fit with ``bootstrap=N``)."""
        self.params_fitted()
        if not getattr(self, "bootstrap_params_", None):
            raise UserError(
                "this fit has no bootstrap replicas; fit with bootstrap=N "
                "('learnlaw law fit --bootstrap N')"
            )
        out = np.array(
            [
                self._predict_checked(p, target, steps, warmup_steps, model_size)
                for p in self.bootstrap_params_
            ]
        )
        return out[:, 0] if steps is not None and np.ndim(steps) == 0 else out

    def _predict_checked(self, params, target, steps, warmup_steps, model_size) -> np.ndarray:
        inp, steps = law_input(target, steps, warmup_steps=warmup_steps, model_size=model_size)
        if len(steps) and int(steps.min()) < 0:
            raise UserError(f"{inp.name or 'schedule'}: step {int(steps.min())} is negative")
        # NaN where no law speaks (step 0, inside the warmup), whatever the target
        inside = steps >= first_law_step(inp.warmup)
        out = np.full(len(steps), np.nan)
        if inside.any():
            self._check_input(inp, steps[inside])
            out[inside] = self._predict(params, inp, steps[inside])
        return out

    def params_fitted(self) -> dict[str, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError(f"this {self.name} law has not been fitted: call fit(curves)")
        return self.params_

    # ---- validation -----------------------------------------------------------------------
    def _check_input(self, inp: LawInput, steps: np.ndarray) -> None:
        label = inp.name or "schedule"
        if np.any(steps < 1):
            raise UserError(f"{label}: the laws need steps >= 1 (found step {int(steps.min())})")
        eta = inp.lrs_warmup_at_peak()[: int(steps.max()) + 1]
        if not inp.peak > 0:
            raise UserError(
                f"{label}: the learning rate after warmup must be positive, got {inp.peak:g}"
            )
        if np.any(eta < 0):
            bad = int(np.argmax(eta < 0))
            raise UserError(f"{label}: step {bad}: negative learning rate {eta[bad]:g}")

    # ---- subclass hooks ----------------------------------------------------------------------
    def _fit(self, inputs, steps, losses, start=None) -> tuple[dict[str, float], float]:
        raise NotImplementedError

    def _predict(self, params: dict[str, float], inp: LawInput, steps: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def learned(self) -> dict[str, Any]:
        """Learned values besides ``params_`` (saved with the law; e.g. the chosen lambda)."""
        return {}

    def _set_learned(self, values: dict[str, Any]) -> None:
        """Restore ``learned()`` from a saved law."""

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        from learnlaw.files import versions

        self.params_fitted()
        return {
            "format": FIT_FORMAT,
            "format_version": FIT_FORMAT_VERSION,
            "law": self.name,
            "hyperparameters": self.hyperparameters(),
            "params": {k: float(v) for k, v in self.params_.items()},
            "learned": {**self.learned(), "delta": self.delta_used()},
            "bootstrap_params": self.bootstrap_params_,
            "fit": self.fit_info_,
            "versions": versions(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted law as FIT.json (read it back with ``learnlaw.load_law``)."""
        from learnlaw.files import write_json

        return write_json(path, self.to_json())

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Law:
        """A law from its JSON form, every value checked (types, ranges, finiteness)."""
        hyper = obj["hyperparameters"]
        if not isinstance(hyper, dict):
            raise TypeError("hyperparameters must be an object")
        law = cls(**hyper)
        law.check_hyperparameters()
        names = law.active_param_names()
        law.params_ = {k: obj["params"][k] for k in names}
        law.check_params(law.params_)
        learned = obj.get("learned") or {}
        law._set_learned(learned)
        # fits saved before delta was learned used their numeric delta
        delta = learned.get("delta", law.delta if law.delta != "auto" else DELTA_FLOOR)
        if not (_is_number(delta) and 0 < delta < float("inf")):
            raise UserError(f"learned delta = {delta!r}: expected a positive number")
        law.delta_ = float(delta)
        law.bootstrap_params_ = [
            {k: p[k] for k in names} for p in obj.get("bootstrap_params") or []
        ]
        for p in law.bootstrap_params_:
            law.check_params(p)
        info = obj.get("fit") or {}
        law.fit_info_ = info if isinstance(info, dict) else {}
        return law


def _undetermined_annealing(inputs: list[LawInput], steps: list[np.ndarray]) -> list[str]:
    """A note when no fitted run lowers its LR after the warmup: then nothing in the data sets
    the loss drop that a decay brings (C of the momentum law, B of the Multi-Power Law)."""
    for inp, s in zip(inputs, steps):
        eta = inp.lrs[inp.warmup : int(s[-1]) + 1]
        if len(eta) and eta.min() < 0.9 * inp.peak:
            return []
    return [
        "no fitted run lowers its learning rate below 90% of its peak: the law's annealing "
        "term is not determined by these runs, so its predictions for schedules that decay "
        "are guesses; fit a run that decays too"
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(law: Law, name: str, low: int | None) -> None:
    value = getattr(law, name, None)
    if value is None and name != "seed":
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)
    if not ok:
        at_least = "" if low is None else f" >= {low}"
        raise UserError(f"{law.name} law: {name} = {value!r}: expected an integer{at_least}")
