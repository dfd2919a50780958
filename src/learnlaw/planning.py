"""Choosing a schedule through a fitted law: predict one, compare several, sweep the WSD decay
fraction, or optimise the schedule itself (SPEC B2). Results are small dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.laws.inputs import first_law_step
from learnlaw.limits import check_memory
from learnlaw.schedules import Schedule, as_schedule, wsd_decay_start

MAX_PREDICTED = 100_000  # steps of one predicted curve (a longer schedule is predicted every k)


@dataclass
class SchedulePrediction:
    """A schedule's predicted loss at every step from the end of its warmup to ``total``."""

    label: str
    schedule: Schedule
    steps: np.ndarray
    losses: np.ndarray

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def lr_steps(self) -> np.ndarray:
        """Steps 0..total at the predicted points' spacing (``every``), total included: where
        ``lrs`` is given (every step of a long schedule would cost memory, not detail)."""
        total = int(self.steps[-1])
        return np.unique(np.append(np.arange(0, total + 1, self.every), total))

    @property
    def lrs(self) -> np.ndarray:
        """The LR at ``lr_steps``."""
        return self.schedule.lr(self.lr_steps)

    @property
    def final_lr(self) -> float:
        return float(self.schedule.lr(int(self.steps[-1])))

    @property
    def every(self) -> int:
        """Steps between predicted points (1 unless the schedule is very long)."""
        return int(self.steps[1] - self.steps[0]) if len(self.steps) > 1 else 1


def fit_warmup(law: Law) -> int | None:
    """The warmup every curve of ``law``'s fit shared, if they agree (None otherwise)."""
    warmups = {c.get("warmup_steps") for c in getattr(law, "fit_info_", {}).get("curves", [])}
    return warmups.pop() if len(warmups) == 1 else None


def warmup_or_fits(law: Law, warmup: int | None) -> int:
    """``warmup`` if given, else the fit's (0 when its curves disagree): a schedule designed
    through the law starts as the fitted runs did unless told otherwise."""
    return int(warmup) if warmup is not None else fit_warmup(law) or 0


def with_fit_warmup(
    law: Law, schedule: Schedule | str, warmup: int | None = None
) -> tuple[Schedule, str | None]:
    """``schedule`` behind the warmup its prediction should assume, and a note when it was
    not the schedule's own: ``warmup`` if given (it must agree with a warmup the schedule
    has), else the fit's warmup for a schedule without one (a log that starts after its
    warmup, a spec without ``warmup=``), as the fitted runs had."""
    schedule = as_schedule(schedule)
    label = schedule_label(schedule)
    if warmup is not None:
        if schedule.warmup and schedule.warmup != warmup:
            raise UserError(
                f"--warmup-steps {warmup} disagrees with the schedule's warmup={schedule.warmup}; "
                "set warmup in the spec"
            )
        return (
            (schedule.with_warmup(warmup), None) if warmup != schedule.warmup else (schedule, None)
        )
    default = fit_warmup(law) or 0
    if schedule.warmup or not default:
        return schedule, None
    return schedule.with_warmup(default), (
        f"{label}: no warmup in the schedule; using the fit's warmup of {default} steps, as the "
        "fitted runs had (--warmup-steps to choose)"
    )


def schedule_label(schedule: Schedule) -> str:
    return schedule.spec() if schedule.kind != "points" else "schedule"


def resolve_total(schedule: Schedule, total: int | None, label: str) -> int:
    total = total if total is not None else schedule.total
    if total is None:
        raise UserError(
            f"{label}: the schedule has no total; give total=N in the spec, or --steps N "
            "(the total argument)"
        )
    if total < 2:
        raise UserError(f"{label}: total steps must be at least 2, got {total}")
    return int(total)


def predict_schedule(
    law: Law,
    schedule: Schedule | str,
    total: int | None = None,
    *,
    model_size: float | None = None,
    label: str = "",
    every: int | None = None,
) -> SchedulePrediction:
    """The law's curve for ``schedule`` from the end of warmup to ``total``, every ``every``
    steps (default: every step, or every k-th so that at most ``MAX_PREDICTED`` steps are
    predicted; the last step always is).

    Steps inside the warmup are left out: the laws count warmup at the peak LR, so their
    values there describe no real run. ``schedule`` may be a spec string.
    """
    schedule = as_schedule(schedule)
    label = label or schedule_label(schedule)
    total = resolve_total(schedule, total, label)
    first = first_law_step(schedule.warmup)
    if first >= total:
        raise UserError(f"{label}: nothing to predict after a warmup of {first} steps")
    if every is None:
        every = max(1, -(-(total - first + 1) // MAX_PREDICTED))
    steps = np.unique(np.append(np.arange(first, total + 1, every), total)).astype(np.int64)
    losses = law.predict(schedule, steps, model_size=model_size)
    return SchedulePrediction(label, schedule, steps, losses)


@dataclass
class Separation:
    """Which schedules the fit can tell apart from the best one: for every schedule the central
    ``level`` band of (its final loss - the best's) over the fit's bootstrap refits. ``tied``
    marks the schedules whose band contains 0 (the best itself included): closer to the best
    than the fit's parameter uncertainty can separate."""

    level: float
    low: np.ndarray
    high: np.ndarray

    @property
    def tied(self) -> np.ndarray:
        return (self.low <= 0) & (self.high >= 0)


def separation(
    law: Law,
    schedules: list[Schedule],
    total: int | None,
    best: int,
    *,
    level: float = 0.9,
    model_size: float | None = None,
) -> Separation | None:
    """The ``Separation`` of ``schedules`` from ``schedules[best]`` at their final steps, or
    None when the fit has no bootstrap refits. Paired: each refit predicts every schedule, so
    what the schedules share (the level of the curve) cancels in the differences."""
    if not getattr(law, "bootstrap_params_", None):
        return None
    finals = np.array(
        [
            law.predict_replicas(
                s,
                np.array([resolve_total(s, total, schedule_label(s))]),
                model_size=model_size,
            )[:, 0]
            for s in schedules
        ]
    )  # schedules x replicas
    diff = finals - finals[best]
    tail = 100 * (1 - level) / 2
    return Separation(
        level, np.percentile(diff, tail, axis=1), np.percentile(diff, 100 - tail, axis=1)
    )


@dataclass
class ScheduleComparison:
    """Several schedules' predicted curves, in the order given; ``ranked`` is best first.
    ``separation`` (in the order given) when the fit has bootstrap refits."""

    predictions: list[SchedulePrediction]
    separation: Separation | None = None

    @property
    def ranked(self) -> list[SchedulePrediction]:
        return sorted(self.predictions, key=lambda p: p.final_loss)

    @property
    def best(self) -> SchedulePrediction:
        return self.ranked[0]


def compare_schedules(
    law: Law,
    schedules: list[Schedule | str],
    total: int | None = None,
    *,
    labels: list[str] | None = None,
    model_size: float | None = None,
    level: float = 0.9,
) -> ScheduleComparison:
    """Predicted curves of several schedules (each to its own total unless ``total`` is given),
    and which of them the fit cannot separate from the best (``Separation`` at ``level``; fits
    with bootstrap refits). Schedules may be spec strings; ``labels`` (default: the specs) has
    one name per schedule."""
    if isinstance(schedules, (str, Schedule)):
        raise UserError("schedules: expected a list of schedules, got a single one")
    schedules = [as_schedule(s, f"schedules[{i}]") for i, s in enumerate(schedules)]
    if not schedules:
        raise UserError("give at least one schedule to compare")
    if labels is None:
        labels = [schedule_label(s) for s in schedules]
    elif isinstance(labels, str) or len(labels) != len(schedules):
        got = "a string" if isinstance(labels, str) else len(labels)
        raise UserError(f"labels: expected one per schedule ({len(schedules)}), got {got}")
    predictions = [
        predict_schedule(law, s, total, model_size=model_size, label=label)
        for s, label in zip(schedules, labels)
    ]
    best = int(np.argmin([p.final_loss for p in predictions]))
    sep = separation(law, schedules, total, best, level=level, model_size=model_size)
    return ScheduleComparison(predictions, sep)


@dataclass
class WsdChoice:
    fraction: float
    final_loss: float
    schedule: Schedule


@dataclass
class WsdSweep:
    """Predicted final losses of WSD schedules that differ only in their decay fraction, and
    (fits with bootstrap refits) which of them the fit cannot separate from the best."""

    fractions: np.ndarray
    final_losses: np.ndarray
    schedules: list[Schedule]
    warmup: int  # the schedules' (given, or the fit's)
    separation: Separation | None = None

    @property
    def best(self) -> WsdChoice:
        i = int(np.argmin(self.final_losses))
        return WsdChoice(float(self.fractions[i]), float(self.final_losses[i]), self.schedules[i])


def check_fractions(fractions, what: str = "fractions") -> np.ndarray:
    """``fractions`` as an array of WSD decay fractions, each in (0, 1]; anything else is
    refused naming ``what``."""
    try:
        values = np.asarray(fractions, dtype=float)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or len(values) == 0:
        raise UserError(f"{what}: expected a list of decay fractions, e.g. [0.1, 0.2, 0.3]")
    bad = values[~((values > 0) & (values <= 1))]  # NaN included
    if len(bad):
        raise UserError(f"{what}: every fraction must be in (0, 1], got {bad[0]:g}")
    return values


def sweep_wsd(
    law: Law,
    total: int,
    peak: float,
    *,
    final: float = 0.0,
    shape: str = "linear",
    warmup: int | None = None,
    fractions: np.ndarray | list[float] | None = None,
    model_size: float | None = None,
    level: float = 0.9,
) -> WsdSweep:
    """Sweep the decay fraction of ``Schedule.wsd(peak, total, ...)`` (default 5%, 10%, ...,
    100%); fractions whose decay would start inside the warmup are skipped. ``warmup``
    defaults to the fit's, as the fitted runs had (0 when their warmups differ)."""
    warmup = warmup_or_fits(law, warmup)
    if total <= warmup:
        raise UserError(
            f"total {total} (--total): must exceed the warmup ({warmup} steps; --warmup)"
        )
    if fractions is None:
        fractions = np.round(np.arange(0.05, 1.0001, 0.05), 4)
    kept, losses, schedules = [], [], []
    for fraction in check_fractions(fractions):
        start = wsd_decay_start({"total": total, "decay_frac": float(fraction)})
        if start < warmup or start >= total:
            continue  # the decay would begin inside the warmup, or not at all
        schedule = Schedule.wsd(
            peak, total, decay_frac=float(fraction), final=final, warmup=warmup, shape=shape
        )
        kept.append(float(fraction))
        losses.append(float(law.predict(schedule, np.array([total]), model_size=model_size)[0]))
        schedules.append(schedule)
    if not kept:
        raise UserError(f"no decay fraction fits after a warmup of {warmup} steps in {total} steps")
    best = int(np.argmin(losses))
    sep = separation(law, schedules, total, best, level=level, model_size=model_size)
    return WsdSweep(np.array(kept), np.array(losses), schedules, warmup, sep)


@dataclass
class OptimizedSchedule:
    """The result of ``optimize_schedule``: per-step LR, its predicted final loss, a summary."""

    lrs: np.ndarray  # steps 0..total (warmup included): the loss at step `total` uses all of them
    warmup: int
    final_loss: float
    decay_start: int  # first step below 99% of the peak
    decay_power: float  # p in lr = min + (peak - min) (1 - tau)^p over the decay

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_array(self.lrs, self.warmup)


def optimize_schedule(
    law: Law,
    total: int,
    peak: float,
    *,
    warmup: int | None = None,
    min_lr: float = 0.0,
    iterations: int = 3000,
) -> OptimizedSchedule:
    """Minimise the law's predicted final loss over non-increasing schedules (SPEC B2);
    ``warmup`` defaults to the fit's, as in ``sweep_wsd``.

    The schedule after warmup is peak minus the running sum of non-negative per-step
    decrements (kept >= 0 by clipping after every Adam step), clipped to [min_lr, peak].
    Starts from the cosine schedule's decrements. Needs a law whose ``final_loss_torch``
    is differentiable in the schedule (the Multi-Power Law).
    """
    import torch

    if not hasattr(law, "final_loss_torch"):
        raise UserError(
            f"the {law.name} law cannot design a schedule: its optimal schedule is degenerate "
            "(stay at the peak, then drop to zero at the last step); fit --law multipower"
        )
    warmup = warmup_or_fits(law, warmup)
    if not (peak > 0 and np.isfinite(peak)):
        raise UserError(f"--peak {peak:g}: must be a positive number")
    if warmup < 0:
        raise UserError(f"--warmup {warmup}: must be >= 0")
    if iterations < 1:
        raise UserError(f"--iterations {iterations}: must be >= 1")
    if not 0 <= min_lr < peak:
        raise UserError(f"--min-lr (min_lr) {min_lr:g}: must be in [0, peak={peak:g})")
    if total - warmup < 2:
        raise UserError(f"--total {total} leaves no steps after a warmup of {warmup}")
    # Adam over one decrement per step, through the law's differentiable double sum: about
    # forty float64 arrays of the schedule's length (values, gradients, optimiser moments)
    check_memory(f"optimising a schedule of {total} steps", 40 * 8 * total)
    n = total - warmup  # steps after warmup: eta_0 = peak, eta_1..eta_n
    scale = (peak - min_lr) / n
    cosine = Schedule.cosine(peak, total, final=min_lr, warmup=warmup).values(total + 1)
    start_eta = cosine[warmup:]
    v = torch.tensor(
        np.maximum(start_eta[:-1] - start_eta[1:], 0.0) / scale,
        dtype=torch.float64,
        requires_grad=True,
    )
    opt = torch.optim.Adam([v], lr=0.05)
    best_loss, best_v = float("inf"), v.detach().clone()

    def schedule_of(v: torch.Tensor) -> torch.Tensor:
        eta = peak - scale * torch.cumsum(v, 0)
        return torch.cat([torch.tensor([peak], dtype=torch.float64), eta.clamp(min_lr, peak)])

    for _ in range(iterations):
        opt.zero_grad()
        loss = law.final_loss_torch(schedule_of(v), warmup)
        if loss.item() < best_loss:
            best_loss, best_v = loss.item(), v.detach().clone()
        loss.backward()
        opt.step()
        with torch.no_grad():
            v.clamp_(min=0.0)
    eta = schedule_of(best_v).detach().numpy()
    lrs = np.concatenate([cosine[:warmup], eta])  # steps 0..total
    # the law's prediction for exactly the schedule written out, through the same predict path
    # as every other schedule's
    final = float(law.predict(Schedule.from_array(lrs, warmup), np.array([total]))[0])
    start, power = summarize_decay(lrs, peak, min_lr)
    return OptimizedSchedule(lrs, warmup, final, start, power)


def summarize_decay(lrs: np.ndarray, peak: float, min_lr: float) -> tuple[int, float]:
    """(first step below 99% of the peak after warmup, the power p that best fits the decay).

    ``lrs`` holds steps 0..total; without a decay the start is ``total``."""
    total = len(lrs) - 1
    top = int(np.argmax(lrs >= peak * (1 - 1e-12)))
    below = np.flatnonzero(lrs[top:] < 0.99 * peak)
    if len(below) == 0:
        return total, float("nan")
    start = top + int(below[0])
    tau = (np.arange(start, total + 1) - start) / max(total - start, 1)
    target = lrs[start:]
    powers = np.linspace(0.2, 5.0, 481)
    errs = [np.sum((min_lr + (peak - min_lr) * (1 - tau) ** p - target) ** 2) for p in powers]
    return start, float(powers[int(np.argmin(errs))])
