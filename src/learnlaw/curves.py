"""Loss curves: the ``LossCurve`` type, readers for real (dirty) logs, and writers.

Every reader produces a :class:`Table` of sparse series (column -> steps, values), so that the
learning rate and the loss may be logged at different steps (as trackers do). ``read_curve``
then picks the step, learning-rate and loss columns by name (common aliases accepted), cleans
the series and says what it changed in ``LossCurve.notes``:

- NaN or infinite values are dropped and counted;
- repeated steps (a restart that logs some steps again) keep the last value in file order;
- steps are sorted; gaps are fine.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.files import write_csv
from learnlaw.files import write_json as _write_json_file
from learnlaw.schedules import Schedule

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

    ``schedule`` gives the learning rate at any step (a spec family or interpolated logged
    points). Steps ``0..warmup_steps-1`` are a linear warmup, which each law treats by its own
    convention (the momentum law counts it at the peak LR; the Multi-Power Law by its area).
    """

    steps: np.ndarray
    losses: np.ndarray
    schedule: Schedule | None = None
    warmup_steps: int = 0
    name: str = ""
    model_size: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.steps = np.asarray(self.steps, dtype=np.int64)
        self.losses = np.asarray(self.losses, dtype=float)
        if self.steps.shape != self.losses.shape or self.steps.ndim != 1:
            raise ValueError("steps and losses must be 1-D arrays of equal length")

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


# ---- tables of sparse series ---------------------------------------------------------------
@dataclass
class Table:
    """Sparse series read from one file: column name -> (steps, values), in file order."""

    path: str
    series: dict[str, tuple[np.ndarray, np.ndarray]]

    def find(self, aliases: tuple[str, ...], requested: str | None = None) -> list[str]:
        """Columns matching ``requested`` (exactly) or else any alias, in alias order."""
        names = {_normalise(c): c for c in self.series}
        if requested is not None:
            hit = names.get(_normalise(requested))
            if hit is None:
                raise UserError(
                    f"{self.path}: no column {requested!r}; found {', '.join(self.series)}"
                )
            return [hit]
        return [names[a] for a in aliases if a in names]

    def lr_points(self, requested: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        cols = self.find(LR_ALIASES, requested)
        if not cols:
            return np.array([]), np.array([])
        steps, values, _ = clean_series(*self.series[cols[0]])
        return steps, values


def _normalise(name: str) -> str:
    return name.strip().lower()


def _strip_tracker_name(name: str) -> str | None:
    """W&B panel exports name columns 'run-name - train/loss' plus '__MIN'/'__MAX' bands."""
    if name.endswith("__MIN") or name.endswith("__MAX"):
        return None
    if " - " in name:
        name = name.split(" - ")[-1]
    return name.strip()


def _parse_number(text: str) -> float:
    """A float, with NaN/inf spellings from common loggers; raises ValueError otherwise."""
    t = text.strip().lower()
    if t in ("nan", "-nan", "none", "null"):
        return math.nan
    if t in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if t in ("-inf", "-infinity"):
        return -math.inf
    return float(t)


def _assemble(path: str, rows: list[tuple[int, float, dict[str, float]]]) -> Table:
    series: dict[str, tuple[list[float], list[float]]] = {}
    for _, step, values in rows:
        for name, value in values.items():
            s, v = series.setdefault(name, ([], []))
            s.append(step)
            v.append(value)
    return Table(path, {k: (np.array(s), np.array(v)) for k, (s, v) in series.items()})


def _check_step(path: str, where: str, value: float) -> float:
    if not math.isfinite(value) or value != int(value) or value < 0:
        raise UserError(f"{path}: {where}: step {value!r} is not a non-negative integer")
    return value


def read_csv_table(path: str | Path) -> Table:
    """CSV or TSV with a header row: plain logs and Weights & Biases history exports."""
    p = str(path)
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"{p}: the file is empty")
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    reader = csv.reader(text.splitlines(), dialect=dialect)
    header = next(reader)
    columns = [_strip_tracker_name(h) for h in header]
    named = [c for c in columns if c]
    if len(set(named)) < len(named):  # several runs in one panel export: never merge them
        twice = next(c for c in named if named.count(c) > 1)
        raise UserError(
            f"{p}: several columns are {twice!r} (an export of several runs?); "
            "export one run per file"
        )
    lowered = [c.lower() if c else None for c in columns]
    step_idx = next((lowered.index(a) for a in STEP_ALIASES if a in lowered), None)
    if step_idx is None:
        raise UserError(
            f"{p}: missing a step column; expected one of {', '.join(STEP_ALIASES[:6])} "
            f"(header: {', '.join(header)})"
        )
    rows = []
    for row_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise UserError(f"{p}: row {row_no}: {len(row)} cells but the header has {len(header)}")
        cell = row[step_idx].strip() if step_idx < len(row) else ""
        if not cell:
            raise UserError(f"{p}: row {row_no}: the step cell is empty")
        try:
            step = _check_step(p, f"row {row_no}", _parse_number(cell))
        except ValueError:
            raise UserError(
                f"{p}: row {row_no}, column {header[step_idx]!r}: {cell!r} is not a number"
            ) from None
        values = {}
        for i, name in enumerate(columns):
            if i == step_idx or name is None or i >= len(row) or not row[i].strip():
                continue
            try:
                values[name] = _parse_number(row[i])
            except ValueError:
                if _normalise(name) in (*LR_ALIASES, *LOSS_ALIASES, *SIZE_ALIASES):
                    raise UserError(
                        f"{p}: row {row_no}, column {header[i]!r}: {row[i]!r} is not a number"
                    ) from None
                # other columns (run names, timestamps as text) are not ours to judge
        rows.append((row_no, step, values))
    if not rows:
        raise UserError(f"{p}: the file has a header but no data rows")
    return _assemble(p, rows)


def read_jsonl_table(path: str | Path) -> Table:
    """JSON lines: one object per line; nested objects are flattened with '/'."""
    p = str(path)
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"{p}: the file is empty")
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{p}: line {line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{p}: line {line_no}: expected a JSON object")
        flat = _flatten(obj)
        lowered = {k.lower(): k for k in flat}
        key = next((lowered[a] for a in STEP_ALIASES if a in lowered), None)
        if key is None:
            raise UserError(
                f"{p}: line {line_no}: no step field; expected one of {', '.join(STEP_ALIASES[:6])}"
            )
        values = {}
        for k, v in flat.items():
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, str):
                try:
                    v = _parse_number(v)
                except ValueError:
                    if _normalise(k) in (*LR_ALIASES, *LOSS_ALIASES, *STEP_ALIASES):
                        raise UserError(
                            f"{p}: line {line_no}, field {k!r}: {v!r} is not a number"
                        ) from None
                    continue
            if isinstance(v, (int, float)):
                values[k] = float(v)
        if key not in values:
            raise UserError(f"{p}: line {line_no}, field {key!r}: {flat[key]!r} is not a number")
        step = _check_step(p, f"line {line_no}", values.pop(key))
        rows.append((line_no, step, values))
    if not rows:
        raise UserError(f"{p}: no JSON objects found")
    return _assemble(p, rows)


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "/"))
        else:
            out[name] = v
    return out


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (expected CSV or JSON lines)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None


def read_table(path: str | Path) -> Table:
    """Read any supported log into sparse series, choosing the reader by name and content."""
    path = Path(path)
    if path.is_dir() or "tfevents" in path.name:
        from learnlaw.tensorboard import read_tensorboard_table

        return read_tensorboard_table(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl_table(path)
    if suffix == ".json":
        return read_jsonl_table(path)
    return read_csv_table(path)


# ---- cleaning --------------------------------------------------------------------------------
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


def read_curve(
    path: str | Path,
    *,
    loss_column: str | None = None,
    lr_column: str | None = None,
    schedule: Schedule | None = None,
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
        curve = _curve_from_table(read_table(path), loss_column, lr_column)
    if schedule is not None:
        if curve.schedule is not None:
            curve.notes.append("the given schedule replaces the learning rates in the file")
        curve.schedule = schedule
    if curve.schedule is None:
        raise UserError(
            f"{path}: no learning-rate column (expected one of {', '.join(LR_ALIASES[:4])}); "
            "give the schedule with --schedule SPEC"
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
            f"(found {', '.join(table.series) or 'none'}); choose one with --loss-column"
        )
    notes = []
    if len(losses) > 1:
        notes.append(
            f"used column {losses[0]!r} for the loss (also found {', '.join(losses[1:])}; "
            "choose with --loss-column)"
        )
    steps, values = clean_losses(table.path, losses[0], *table.series[losses[0]], notes)
    lr_steps, lr_values = table.lr_points(lr_column)
    schedule = Schedule.from_points(lr_steps, lr_values) if len(lr_steps) else None
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
        obj = json.loads(_read_text(path))
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("format") == CURVE_FORMAT


def _read_curve_json(path: Path) -> LossCurve:
    obj = json.loads(_read_text(path))
    try:
        schedule = Schedule.from_json(obj["schedule"]) if obj.get("schedule") else None
        curve = LossCurve(
            np.array(obj["steps"]),
            np.array(obj["losses"], dtype=float),
            schedule,
            warmup_steps=int(obj.get("warmup_steps", 0)),
            name=obj.get("name", ""),
            model_size=obj.get("model_size"),
            metadata=obj.get("metadata", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a valid learnlaw curve file ({exc})") from None
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    curve.steps, curve.losses = clean_losses(
        str(path),
        "losses",
        np.array(obj["steps"], dtype=float),
        np.array(obj["losses"], dtype=float),
        curve.notes,
    )
    return curve


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
