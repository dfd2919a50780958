"""What a law sees of a run (``LawInput``: the LR at every step, the warmup, the model size),
how curves and schedules become one (``law_input``), and which logged points a law fits and
scores (``law_points``: after the warmup, binned, smoothed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from learnlaw.curves import LossCurve
from learnlaw.errors import UserError
from learnlaw.limits import check_memory
from learnlaw.schedules import Schedule, as_schedule


@dataclass
class LawInput:
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

    def forward_area_to(self, last_step: int) -> float:
        """S1 at ``last_step`` with warmup counted at the peak."""
        return float(np.sum(self.lrs_warmup_at_peak()[1 : last_step + 1]))


def forward_area(eta: np.ndarray) -> np.ndarray:
    """S1(s) = sum_{i=1..s} eta_i for every s = 0..len-1 (the area under the LR curve)."""
    return np.concatenate([[0.0], np.cumsum(eta[1:])])


def first_law_step(warmup: int) -> int:
    """The first step a law speaks about: after the warmup, and never step 0."""
    return max(int(warmup), 1)


def _step_array(steps) -> np.ndarray:
    """Steps as a 1-D integer array (a single step becomes one), whole numbers only."""
    arr = np.atleast_1d(np.asarray(steps))
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating)
        and bool(np.all(np.isfinite(arr) & (np.abs(arr) < 2.0**53) & (arr == np.round(arr))))
    )
    if arr.ndim != 1 or not whole:
        raise UserError(
            f"steps: expected whole step numbers, got {np.asarray(steps).tolist()!r:.80}"
        )
    return arr.astype(np.int64)


def law_input(
    target: LossCurve | Schedule | str | LawInput,
    steps: np.ndarray | None = None,
    *,
    warmup_steps: int | None = None,
    model_size: float | None = None,
) -> tuple[LawInput, np.ndarray]:
    """Turn a curve, a schedule (or its spec string) or a law input into ``(LawInput, steps)``.

    Default steps: a curve's logged steps; a schedule's every step from the end of its warmup
    to its total."""
    if isinstance(target, str):
        target = as_schedule(target)
    if steps is not None:
        steps = _step_array(steps)
    if isinstance(target, LawInput):
        if steps is None:
            steps = np.arange(first_law_step(target.warmup), len(target.lrs))
        if len(steps) and int(steps.max()) >= len(target.lrs):
            raise ValueError("the law input's LR array does not reach the last requested step")
        return target, steps
    if isinstance(target, LossCurve):
        steps = target.steps if steps is None else steps
        schedule, name = target.schedule, target.name
        warmup = target.warmup_steps if warmup_steps is None else warmup_steps
        size = target.model_size if model_size is None else model_size
    elif isinstance(target, Schedule):
        schedule, name = target, ""
        warmup = target.warmup if warmup_steps is None else warmup_steps
        if steps is None:
            if target.total is None:
                raise UserError(
                    "this schedule has no total: give the steps to predict at "
                    "(law.predict(schedule, steps))"
                )
            steps = np.arange(first_law_step(warmup), target.total + 1)
        size = model_size
    else:
        raise UserError(
            "a law predicts a LossCurve, a Schedule (or its spec string) or a LawInput, not "
            f"{type(target).__name__}"
        )
    if schedule is None:
        raise UserError(f"{name or 'curve'}: no learning-rate schedule known")
    if len(steps) == 0:
        raise UserError(f"{name or 'curve'}: no steps to predict")
    n = max(int(steps.max()) + 1, warmup + 1)
    # the laws hold about ten arrays of one float per step (LR, areas, momentum, features)
    check_memory(f"{name or 'a schedule'} of {n} steps", 10 * 8 * n)
    return LawInput(schedule.values(n), warmup, size, name), steps


# a log without warmup: its first 5% of steps are left out (typical warmups are 1-10% of a
# run, and no law describes the first steps of training, where the loss falls by half)
AUTO_FIT_FROM = 0.05


def fit_start(curve: LossCurve, fit_from: int | None = None) -> tuple[int, str]:
    """(the first step of ``curve`` a law fits and scores, why): after the warmup and never
    step 0; from ``fit_from`` when given; a log without warmup from 5% of its last step."""
    first = first_law_step(curve.warmup_steps)
    if fit_from is not None:
        return max(first, int(fit_from)), "--fit-from"
    if curve.warmup_steps == 0 and len(curve.steps):
        auto = math.ceil(AUTO_FIT_FROM * curve.last_step)
        if auto > max(first, int(curve.steps[0])):
            return auto, f"automatic: no warmup, so the first {AUTO_FIT_FROM:.0%} of the steps"
    return first, "step 0 or inside the warmup"


def law_points(
    curve: LossCurve,
    max_points: int | None = None,
    *,
    fit_from: int | None = None,
    smooth: int | None = None,
) -> LossCurve:
    """The part of ``curve`` a law speaks about: logged steps from ``fit_start`` on (after
    the warmup), averaged in bins when there are more than ``max_points`` (see
    ``LossCurve.binned``), then smoothed over ``smooth`` points if given (``LossCurve.smoothed``).

    Fitting and every score (predict, plots, compare, benchmarks) use the same points, so a
    log that starts at step 0 or inside the warmup fits and scores without an error.
    """
    kept = _from_start(curve, fit_from)
    kept = kept if max_points is None else kept.binned(max_points)
    return kept.smoothed(smooth) if smooth else kept


def _from_start(curve: LossCurve, fit_from: int | None) -> LossCurve:
    start, why = fit_start(curve, fit_from)
    keep = curve.steps >= start
    if not keep.any():
        raise UserError(
            f"{curve.name or 'curve'}: no logged point from step {start} on ({why}); "
            f"the last logged step is {curve.last_step}"
        )
    if keep.all():
        return curve
    left_out = int((~keep).sum())
    if why == "step 0 or inside the warmup":
        note = f"{curve.name}: left out {left_out} points at step 0 or inside the warmup"
        if curve.warmup_steps:
            note += f" (steps < {curve.warmup_steps})"
    else:
        note = f"{curve.name}: left out {left_out} points before step {start} ({why})"
        if why != "--fit-from":
            note += "; --fit-from STEP to choose"
    return replace(
        curve, steps=curve.steps[keep], losses=curve.losses[keep], notes=[*curve.notes, note]
    )


MAX_POINTS = 1000  # per curve: more points than this are averaged in bins (fit and scores)
