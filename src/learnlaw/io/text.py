"""Text logs: CSV / TSV with a header (plain logs, Weights & Biases exports) and JSON lines,
and ``read_table``, which picks the reader for a path."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError
from learnlaw.io.table import (
    LOSS_ALIASES,
    LR_ALIASES,
    SIZE_ALIASES,
    STEP_ALIASES,
    Table,
    assemble,
    check_step,
    normalise,
    parse_number,
)


def _strip_tracker_name(name: str) -> str | None:
    """W&B panel exports name columns 'run-name - train/loss' plus '__MIN'/'__MAX' bands."""
    if name.endswith("__MIN") or name.endswith("__MAX"):
        return None
    if " - " in name:
        name = name.split(" - ")[-1]
    return name.strip()


def read_csv_table(path: str | Path) -> Table:
    """CSV or TSV with a header row: plain logs and Weights & Biases history exports."""
    p = str(path)
    text = read_text(path)
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
            step = check_step(p, f"row {row_no}", parse_number(cell))
        except ValueError:
            raise UserError(
                f"{p}: row {row_no}, column {header[step_idx]!r}: {cell!r} is not a number"
            ) from None
        values = {}
        for i, name in enumerate(columns):
            if i == step_idx or name is None or i >= len(row) or not row[i].strip():
                continue
            try:
                values[name] = parse_number(row[i])
            except ValueError:
                if normalise(name) in (*LR_ALIASES, *LOSS_ALIASES, *SIZE_ALIASES):
                    raise UserError(
                        f"{p}: row {row_no}, column {header[i]!r}: {row[i]!r} is not a number"
                    ) from None
                # other columns (run names, timestamps as text) are not ours to judge
        rows.append((row_no, step, values))
    if not rows:
        raise UserError(f"{p}: the file has a header but no data rows")
    return assemble(p, rows)


def read_jsonl_table(path: str | Path) -> Table:
    """JSON lines: one object per line; nested objects are flattened with '/'."""
    p = str(path)
    text = read_text(path)
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
                    v = parse_number(v)
                except ValueError:
                    if normalise(k) in (*LR_ALIASES, *LOSS_ALIASES, *STEP_ALIASES):
                        raise UserError(
                            f"{p}: line {line_no}, field {k!r}: {v!r} is not a number"
                        ) from None
                    continue
            if isinstance(v, (int, float)):
                values[k] = float(v)
        if key not in values:
            raise UserError(f"{p}: line {line_no}, field {key!r}: {flat[key]!r} is not a number")
        step = check_step(p, f"line {line_no}", values.pop(key))
        rows.append((line_no, step, values))
    if not rows:
        raise UserError(f"{p}: no JSON objects found")
    return assemble(p, rows)


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "/"))
        else:
            out[name] = v
    return out


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (a byte-order mark is dropped), with one-line errors."""
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
        from learnlaw.io.tensorboard import read_tensorboard_table

        return read_tensorboard_table(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return read_jsonl_table(path)
    return read_csv_table(path)
