"""Loss curves: the ``LossCurve`` type, ``read_curve`` for real (dirty) logs, and writers.

The readers in ``learnlaw.io`` turn a file into a table of sparse series; ``read_curve`` picks
the step, learning-rate and loss columns by name (common aliases accepted), cleans the series,
attaches the learning-rate schedule and says what it changed in ``LossCurve.notes``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.files import write_csv
from learnlaw.files import write_json as _write_json_file
from learnlaw.io import LOSS_ALIASES, LR_ALIASES, SIZE_ALIASES, Table, clean_losses, read_table
from learnlaw.io.table import normalise
from learnlaw.io.text import read_text
from learnlaw.schedules import Schedule, as_schedule

# model sizes in millions or billions (a "K" suffix in a file name is usually a step count)
_SIZE_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)([MBT])$", re.IGNORECASE)
_SIZE_UNIT = {"M": 1e6, "B": 1e9, "T": 1e12}


def parse_model_size(text: str) -> float:
    """``'400M'`` -> 4e8, ``'1.7B'`` -> 1.7e9, ``'125000000'`` -> 1.25e8."""
    m = _SIZE_TOKEN.match(text.strip())
    try:
        value = float(m.group(1)) * _SIZE_UNIT[m.group(2).upper()] if m else float(text)
    except ValueError:
        raise UserError(f"model size {text!r}: expected a number such as 4e8 or 400M") from None
    if not value > 0:
        raise UserError(f"model size {text!r}: must be positive")
    return value


@dataclass
class LossCurve:
    """One training run: losses at logged steps and the learning rate at every step.

    ``schedule`` gives the learning rate at any step (a ``Schedule`` or a spec string: a spec
    family or interpolated logged points, step changes held). Steps ``0..warmup_steps-1`` are a
    linear warmup (default: the schedule's), which each law treats by its own convention (the
    momentum law counts it at the peak LR; the Multi-Power Law by its area).

    Built from arrays, a curve is cleaned as ``read_curve`` cleans a log: NaN or infinite
    losses and repeated steps are dropped and sorted (saying so in ``notes``); steps that are
    not whole non-negative numbers and losses that are not positive are refused.
    """

    steps: np.ndarray
    losses: np.ndarray
    schedule: Schedule | None = None
    warmup_steps: int | None = None
    name: str = ""
    model_size: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        label = self.name or "curve"
        self.notes = list(self.notes)  # its own: cleaning adds to it
        if self.schedule is not None:
            self.schedule = as_schedule(self.schedule, f"{label}: schedule")
        if self.warmup_steps is None:
            self.warmup_steps = self.schedule.warmup if self.schedule is not None else 0
        if not (float(self.warmup_steps).is_integer() and self.warmup_steps >= 0):
            raise UserError(
                f"{label}: warmup_steps {self.warmup_steps}: expected a whole number >= 0"
            )
        self.warmup_steps = int(self.warmup_steps)
        steps, losses = np.asarray(self.steps), np.asarray(self.losses, dtype=float)
        if steps.ndim != 1 or steps.shape != losses.shape:
            raise UserError(
                f"{label}: steps and losses must be 1-D arrays of equal length, got shapes "
                f"{steps.shape} and {losses.shape}"
            )
        if len(steps) == 0:
            raise UserError(f"{label}: no points (steps and losses are empty)")
        clean = (
            np.issubdtype(steps.dtype, np.integer)
            and len(steps) > 0
            and steps[0] >= 0
            and bool(np.all(np.diff(steps) > 0))
            and bool(np.all(np.isfinite(losses) & (losses > 0)))
        )
        if clean:  # the common case, without a copy
            self.steps, self.losses = steps.astype(np.int64, copy=False), losses
        else:
            self.steps, self.losses = clean_losses(label, "losses", steps, losses, self.notes)

    @property
    def last_step(self) -> int:
        return int(self.steps[-1])

    def lrs(self, n: int | None = None) -> np.ndarray:
        """Per-step learning rates for steps 0..n-1 (default: through the last logged step)."""
        if self.schedule is None:
            raise UserError(f"{self.name or 'curve'}: no learning rate known for this curve")
        return self.schedule.values(self.last_step + 1 if n is None else n)

    def logged_lrs(self) -> np.ndarray:
        return self.lrs()[self.steps]

    def binned(self, max_points: int, relative_width: float = 0.05) -> LossCurve:
        """The curve averaged in at most about ``max_points`` bins of steps (itself when it has
        no more points), saying so in ``notes``.

        A long per-step log holds far more points than a law needs: bins keep the cost of a
        fit bounded and average the batch noise. A bin spans at most 1/max_points of the
        logged range and at most ``relative_width`` x its first step, so early bins, where the
        curve bends most, stay narrow: a bin's mean loss then differs from the loss at its
        mean step by under 1e-4 relatively (second order in the width)."""
        n = len(self.steps)
        if n <= max_points:
            return self
        first, last = int(self.steps[0]), int(self.steps[-1])
        width = max(1.0, (last - first) / max_points)
        edges = [first]
        while edges[-1] <= last:
            edges.append(edges[-1] + max(1, int(min(width, relative_width * max(edges[-1], 1)))))
        bins = np.searchsorted(np.asarray(edges), self.steps, side="right") - 1
        counts = np.bincount(bins)
        used = counts > 0
        steps = np.bincount(bins, weights=self.steps)[used] / counts[used]
        losses = np.bincount(bins, weights=self.losses)[used] / counts[used]
        note = (
            f"{self.name or 'curve'}: averaged {n} logged points into {int(used.sum())} bins of "
            f"steps (at most {width:.0f} steps wide) to fit and score"
        )
        return replace(
            self,
            steps=np.round(steps).astype(np.int64),
            losses=losses,
            notes=[*self.notes, note],
        )

    def smoothed(self, window: int) -> LossCurve:
        """The curve with each loss replaced by a local quadratic fit over ``window`` neighbouring
        points (``smooth_losses``), saying so in ``notes``."""
        losses = smooth_losses(self.losses, window)
        if losses is self.losses:
            return self
        note = (
            f"{self.name or 'curve'}: smoothed over {window} neighbouring points to fit and score"
        )
        return replace(self, losses=losses, notes=[*self.notes, note])


def as_curves(curves: LossCurve | Iterable[LossCurve], what: str = "curves") -> list[LossCurve]:
    """A list of curves from one ``LossCurve`` or several; anything else (a file name: read
    it with ``read_curve``) is refused naming ``what``."""
    if isinstance(curves, Mapping):
        raise UserError(f"{what}: got a dict; pass its curves, e.g. list(runs.values())")
    items = [curves] if isinstance(curves, LossCurve) else curves
    if isinstance(items, (str, Path)) or not isinstance(items, Iterable):
        items = [items]
    items = list(items)
    for item in items:
        if not isinstance(item, LossCurve):
            hint = " (read a log with learnlaw.read_curve)" if isinstance(item, (str, Path)) else ""
            raise UserError(f"{what}: expected LossCurve objects, got {type(item).__name__}{hint}")
    if not items:
        raise UserError(f"{what}: no curves given")
    return items


def smooth_losses(losses: np.ndarray, window: int) -> np.ndarray:
    """A local quadratic (Savitzky-Golay) fit of log-loss over ``window`` neighbouring points
    (rounded up to odd; the losses themselves when there are too few points).

    Log space, because batch noise is relative; quadratic, so the curve's bend over the window
    costs only a third-order bias (a running mean would lift a convex curve)."""
    from scipy.signal import savgol_filter

    window = int(window) | 1  # odd
    if window < 5 or len(losses) < window:
        return losses
    return np.exp(savgol_filter(np.log(losses), window, 2, mode="interp"))


def noise_window(n: int) -> int:
    """The window ``noise`` smooths over: about 5% of the points, at least 7."""
    return 2 * max(3, n // 40) + 1


@dataclass
class Noise:
    """A curve's noise: ``floor`` is the mean relative error of a smoothed copy against the
    curve itself (no law can score better on these points); ``sigma`` a robust standard
    deviation of the log residuals (1.4826 x their median absolute value)."""

    floor: float
    sigma: float
    window: int


def noise(losses: np.ndarray) -> Noise:
    """The noise of a sequence of losses (see ``Noise``), smoothed by ``smooth_losses`` over
    ``noise_window`` points. Zero for curves too short to smooth."""
    losses = np.asarray(losses, dtype=float)
    window = noise_window(len(losses))
    smooth = smooth_losses(losses, window)
    if smooth is losses:
        return Noise(0.0, 0.0, window)
    residual = np.log(losses) - np.log(smooth)
    floor = float(np.mean(np.abs(losses - smooth) / losses))
    return Noise(floor, float(1.4826 * np.median(np.abs(residual))), window)


def read_curve(
    path: str | Path,
    *,
    loss_column: str | None = None,
    lr_column: str | None = None,
    schedule: Schedule | str | None = None,
    warmup_steps: int | None = None,
    model_size: float | None = None,
    name: str | None = None,
) -> LossCurve:
    """Read one loss curve from CSV, JSON lines, our JSON, or TensorBoard event files.

    The learning rate comes from ``schedule`` if given, else from the file's LR column
    (linearly interpolated between logged steps, the first value held before it). A path may
    end in ``@SIZE`` (``run.csv@400M``) to attach a model size. ``warmup_steps=None`` detects a
    linear warmup at the start of the LR; give it explicitly when the log starts after warmup.
    """
    path_text = str(path)
    if "@" in path_text and not Path(path_text).exists():
        path_text, _, size_text = path_text.rpartition("@")
        model_size = parse_model_size(size_text)
    path = Path(path_text)
    if path.suffix.lower() == ".json" and path.is_file() and _is_curve_json(path):
        curve = _read_curve_json(path)
    else:
        wanted = {normalise(c) for c in (loss_column, lr_column) if c}
        aliases = set(LOSS_ALIASES) | set(LR_ALIASES) | set(SIZE_ALIASES) | wanted
        table = read_table(path, keep=lambda name: name in aliases)
        curve = _curve_from_table(table, loss_column, lr_column)
    if schedule is not None:
        schedule = as_schedule(schedule)
        if curve.schedule is not None:
            curve.notes.append("the given schedule replaces the learning rates in the file")
        curve.schedule = schedule
    if curve.schedule is None:
        raise UserError(
            f"{path}: no learning-rate column (expected one of {', '.join(LR_ALIASES[:4])}); "
            "give the schedule (--schedule SPEC; schedule= in Python)"
        )
    if warmup_steps is not None:
        if warmup_steps < 0:
            raise UserError(f"--warmup-steps {warmup_steps}: must be non-negative")
        curve.warmup_steps = warmup_steps
    elif schedule is not None and schedule.warmup:
        curve.warmup_steps = schedule.warmup
    elif not curve.warmup_steps:
        curve.warmup_steps = curve.schedule.warmup  # detected when the file's points were read
        if curve.warmup_steps and curve.schedule.kind == "points":
            curve.notes.append(f"detected a linear warmup over steps 0..{curve.warmup_steps - 1}")
    if model_size is not None:
        curve.model_size = model_size
    elif curve.model_size is None:
        curve.model_size = _size_from_path(path)
    curve.name = name or curve.name or path.stem
    return curve


def _curve_from_table(table: Table, loss_column: str | None, lr_column: str | None) -> LossCurve:
    losses = table.find(LOSS_ALIASES, loss_column)
    if not losses:
        raise UserError(
            f"{table.path}: missing a loss column; expected one of {', '.join(LOSS_ALIASES[:8])} "
            f"(found {', '.join(table.columns or table.series) or 'none'}); choose one with "
            "--loss-column (loss_column= in Python)"
        )
    notes = list(table.notes)
    if len(losses) > 1:
        notes.append(
            f"used column {losses[0]!r} for the loss (also found {', '.join(losses[1:])}; "
            "choose with --loss-column)"
        )
    if table.skipped.get(losses[0]):
        notes.append(
            f"dropped {table.skipped[losses[0]]} rows whose {losses[0]!r} is no number "
            "(a list, a boolean or null)"
        )
    steps, values = clean_losses(table.path, losses[0], *table.series[losses[0]], notes)
    lr_steps, lr_values = table.lr_points(lr_column, notes)
    schedule = Schedule.from_points(lr_steps, lr_values) if len(lr_steps) else None
    if schedule is not None and len(schedule.point_steps) > len(lr_steps):
        changes = len(schedule.point_steps) - len(lr_steps)
        notes.append(
            f"the LR changes abruptly between {changes} pair(s) of logged steps with a flat LR "
            "on both sides: each is taken as a step change at the later logged step, not "
            "interpolated"
        )
    if schedule is not None and np.any(lr_values < 0):
        raise UserError(
            f"{table.path}: step {int(lr_steps[np.argmax(lr_values < 0)])}: negative learning rate"
        )
    size = None
    size_cols = table.find(SIZE_ALIASES)
    if size_cols:
        size = float(table.series[size_cols[0]][1][-1])
    return LossCurve(
        steps,
        values,
        schedule,
        warmup_steps=0,  # read_curve takes it from the schedule or detects it, with a note
        model_size=size,
        notes=notes,
        metadata={"source": table.path, "loss_column": losses[0]},
    )


def _size_from_path(path: Path) -> float | None:
    """A model size written as a path component such as ``400M/`` or ``run-1.7B.csv``."""
    for part in [path.stem, *(p.name for p in path.parents)][:3]:
        for token in re.split(r"[_\-\s]", part):
            if _SIZE_TOKEN.match(token):
                return parse_model_size(token)
    return None


# ---- our own JSON form and writers ---------------------------------------------------------
CURVE_FORMAT = "learnlaw.curve"


def _is_curve_json(path: Path) -> bool:
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("format") == CURVE_FORMAT


def _read_curve_json(path: Path) -> LossCurve:
    obj = json.loads(read_text(path))
    notes: list[str] = []
    try:
        steps = np.array(obj["steps"], dtype=float)
        losses = np.array(obj["losses"], dtype=float)
        if steps.ndim != 1 or steps.shape != losses.shape:
            raise ValueError("steps and losses must be lists of equal length")
        steps, losses = clean_losses(str(path), "losses", steps, losses, notes)
        schedule = Schedule.from_json(obj["schedule"]) if obj.get("schedule") else None
        return LossCurve(
            steps,
            losses,
            schedule,
            warmup_steps=int(obj.get("warmup_steps", 0)),
            name=obj.get("name", ""),
            model_size=obj.get("model_size"),
            metadata=obj.get("metadata", {}),
            notes=notes,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a valid learnlaw curve file ({exc})") from None
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def curve_to_json(curve: LossCurve) -> dict[str, Any]:
    return {
        "format": CURVE_FORMAT,
        "name": curve.name,
        "steps": curve.steps.tolist(),
        "losses": curve.losses.tolist(),
        "schedule": curve.schedule.to_json() if curve.schedule is not None else None,
        "warmup_steps": curve.warmup_steps,
        "model_size": curve.model_size,
        "metadata": curve.metadata,
    }


def write_curve_json(curve: LossCurve, path: str | Path) -> Path:
    return _write_json_file(path, curve_to_json(curve))


def write_curve_csv(curve: LossCurve, path: str | Path) -> Path:
    """CSV with ``step,lr,loss`` at the logged steps (lr from the schedule, full precision)."""
    lrs = curve.logged_lrs() if curve.schedule is not None else np.full(len(curve.steps), np.nan)
    return write_csv(path, ("step", "lr", "loss"), (curve.steps.tolist(), lrs, curve.losses))
