"""The table every log reader produces, the column aliases of common trainers, and cleaning.

A :class:`Table` holds sparse series (column -> steps, values) so that the learning rate and
the loss may be logged at different steps, as trackers do. Cleaning says what it changed:

- NaN or infinite values are dropped and counted;
- repeated steps (a restart that logs some steps again) keep the last value in file order;
- steps are sorted; gaps are fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from learnlaw.errors import UserError

STEP_ALIASES = (
    "step",
    "steps",
    "_step",
    "iter",
    "iters",
    "iteration",
    "global_step",
    "trainer/global_step",
    "train/step",
    "tokens_step",
)
LR_ALIASES = (
    "lr",
    "learning_rate",
    "learning-rate",
    "learningrate",
    "train/lr",
    "train/learning_rate",
    "optimizer/lr",
    "lr-adamw",
    "lr/0",
    "lr_0",
)
# The first match wins: an explicit "loss" first, then validation (what laws are usually fit
# to), then training loss.
LOSS_ALIASES = (
    "loss",
    "val_loss",
    "val/loss",
    "valid/loss",
    "validation/loss",
    "validation_loss",
    "eval/loss",
    "eval_loss",
    "loss/val",
    "loss/valid",
    "train/loss",
    "train_loss",
    "loss/train",
    "training_loss",
    "train/loss_step",
)
SIZE_ALIASES = ("model_size", "params", "n_params", "num_params", "parameters")


@dataclass
class Table:
    """Sparse series read from one file: column name -> (steps, values), in file order.

    ``columns`` names every column of the file (a reader may store only some); ``skipped``
    counts values of a loss or LR column that were no number (lists, booleans) and left out."""

    path: str
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    columns: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the reader left out, and why

    def find(self, aliases: tuple[str, ...], requested: str | None = None) -> list[str]:
        """Columns matching ``requested`` (exactly) or else any alias, in alias order."""
        names = {normalise(c): c for c in self.series}
        if requested is not None:
            hit = names.get(normalise(requested))
            if hit is None:
                found = ", ".join(self.columns or self.series) or "none"
                raise UserError(f"{self.path}: no column {requested!r}; found {found}")
            return [hit]
        return [names[a] for a in aliases if a in names]

    def lr_points(
        self, requested: str | None = None, notes: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The cleaned (steps, learning rates) of the LR column, empty when there is none;
        what cleaning dropped is said in ``notes``."""
        cols = self.find(LR_ALIASES, requested)
        if not cols:
            return np.array([]), np.array([])
        steps, values, counts = clean_series(*self.series[cols[0]])
        if notes is not None:
            dropped = counts["non_finite"] + self.skipped.get(cols[0], 0)
            if dropped:
                notes.append(
                    f"dropped {dropped} learning rates that were NaN, infinite or no number "
                    f"(column {cols[0]!r}); the LR is interpolated between the others"
                )
        return steps, values


def normalise(name: str) -> str:
    return name.strip().lower()


def parse_number(text: str) -> float:
    """A float, with NaN/inf spellings from common loggers; raises ValueError otherwise."""
    t = text.strip().lower()
    if t in ("nan", "-nan", "none", "null"):
        return math.nan
    if t in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if t in ("-inf", "-infinity"):
        return -math.inf
    return float(t)


def check_step(path: str, where: str, value: float) -> float:
    if not math.isfinite(value) or value != int(value) or value < 0:
        raise UserError(f"{path}: {where}: step {value!r} is not a non-negative integer")
    return value


def clean_series(
    steps: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Drop non-finite values, keep the last value of each repeated step, sort by step."""
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    # keep the last occurrence of every step: unique over the reversed arrays
    rev_steps = steps[::-1]
    uniq, first_in_rev = np.unique(rev_steps, return_index=True)
    kept = values[::-1][first_in_rev]
    counts = {
        "non_finite": int((~finite).sum()),
        "duplicates": int(len(steps) - len(uniq)),
        "unsorted": int(np.any(np.diff(steps) < 0)),
    }
    return uniq.astype(np.int64), kept, counts


def clean_losses(
    source: str, column: str, steps: np.ndarray, values: np.ndarray, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Every reader's loss cleaning: validate steps, drop non-finite values and repeated steps
    (saying how many in ``notes``), sort, and require positive losses."""
    steps = np.asarray(steps, dtype=float)
    bad = ~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps))
    if bad.any():
        raise UserError(f"{source}: step {steps[bad][0]!r} is not a non-negative integer")
    steps, values, counts = clean_series(steps.astype(np.int64), np.asarray(values, dtype=float))
    if counts["non_finite"]:
        notes.append(f"dropped {counts['non_finite']} NaN or infinite losses")
    if counts["duplicates"]:
        notes.append(
            f"dropped {counts['duplicates']} repeated steps (kept the last of each, as after a restart)"
        )
    if counts["unsorted"]:
        notes.append("steps were out of order; sorted them")
    if len(steps) == 0:
        raise UserError(f"{source}: column {column!r} has no finite loss values")
    if np.any(values <= 0):
        raise UserError(
            f"{source}: step {int(steps[np.argmax(values <= 0)])}: loss must be positive, "
            f"got {values[values <= 0][0]:g}"
        )
    return steps, values
