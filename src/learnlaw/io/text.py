"""Text logs: CSV / TSV with a header (plain logs, Weights & Biases exports) and JSON lines,
and ``read_table``, which picks the reader for a path.

Files are streamed: lines are read in binary chunks (a line longer than ``MAX_LINE`` bytes, as
in ``/dev/zero``, is refused), and only the columns the caller keeps are stored, as arrays, so
a 2-million-row log costs memory for the few columns a curve needs, not for its text.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from learnlaw.errors import UserError
from learnlaw.io.table import (
    LOSS_ALIASES,
    LR_ALIASES,
    SIZE_ALIASES,
    STEP_ALIASES,
    Table,
    check_step,
    normalise,
    parse_number,
)

MAX_LINE = 1 << 20  # bytes; no log line is longer
MAX_BYTES = 64 << 30  # stop reading a stream that never ends (a device, a pipe)
CHUNK = 1 << 22
BATCH = 1 << 16  # rows converted to arrays at a time
PROGRESS_BYTES = 64 << 20  # show a progress bar for files larger than this
STRICT = frozenset((*LR_ALIASES, *LOSS_ALIASES, *SIZE_ALIASES))  # cells that must be numbers

Keep = Callable[[str], bool]  # which columns to store, by normalised name


def iter_line_blocks(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, lines without newlines) of a UTF-8 file, a few MB at a time,
    with a cap on the length of a line; one-line errors for files that are not text."""
    p = Path(path)
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        size = os.fstat(f.fileno()).st_size
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"reading {p.name}",
            disable=True if size < PROGRESS_BYTES else None,
            leave=False,
        )
        tail, line_no, read = b"", 1, 0
        while True:
            try:
                chunk = f.read(CHUNK)
            except OSError as exc:
                raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
            read += len(chunk)
            bar.update(len(chunk))
            if read > MAX_BYTES:
                raise UserError(f"{path}: more than {MAX_BYTES >> 30} GiB; not a log file")
            if not chunk:
                break
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            body, tail = data[:cut], data[cut:]
            if len(tail) > MAX_LINE:
                long_line = line_no + body.count(b"\n")
                raise UserError(
                    f"{path}: line {long_line} is longer than {MAX_LINE >> 20} MiB; not a log file"
                )
            if body:
                lines = _decode(body, path, line_no).split("\n")[:-1]
                yield line_no, lines
                line_no += len(lines)
        if tail:
            yield line_no, [_decode(tail, path, line_no)]
        bar.close()
    finally:
        f.close()


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8 file (see ``iter_line_blocks``)."""
    for first, lines in iter_line_blocks(path):
        yield from enumerate(lines, start=first)


def _decode(raw: bytes, path, line_no: int) -> str:
    """UTF-8 text of a block of lines starting at ``line_no`` (a byte-order mark dropped,
    Windows line ends kept out of the cells)."""
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
        return text.replace("\r\n", "\n") if "\r" in text else text
    except UnicodeDecodeError as exc:
        bad = line_no + raw[: exc.start].count(b"\n")
        raise UserError(
            f"{path}: line {bad}: not UTF-8 text (expected CSV or JSON lines)"
        ) from None


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file (for small documents), with the same checks as the readers."""
    return "\n".join(line for _, line in iter_lines(path))


def _strip_tracker_name(name: str) -> str | None:
    """W&B panel exports name columns 'run-name - train/loss' plus '__MIN'/'__MAX' bands."""
    if name.endswith("__MIN") or name.endswith("__MAX"):
        return None
    if " - " in name:
        name = name.split(" - ")[-1]
    return name.strip()


class _Columns:
    """The kept columns of a CSV, converted to arrays one block of rows at a time."""

    def __init__(self, path: str, header: list[str], kept: list[int], strict: set[int]) -> None:
        self.path, self.header, self.kept, self.strict = path, header, kept, strict
        self.series: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {
            i: ([], []) for i in kept
        }
        self.rows = 0

    def add_block(self, row_numbers: np.ndarray, rows: list[list[str]], step_idx: int) -> None:
        """Rows (cells split at least up to the last kept column) of one block."""
        step_cells = [r[step_idx].strip() if step_idx < len(r) else "" for r in rows]
        empty = [k for k, c in enumerate(step_cells) if not c]
        if empty:
            raise UserError(
                f"{self.path}: row {int(row_numbers[empty[0]])}: the step cell is empty"
            )
        steps, _ = _floats(step_cells, row_numbers, lambda r, c: self._bad(r, c, step_idx), True)
        _check_steps(self.path, steps, row_numbers)
        for i in self.kept:
            cells = [r[i] if i < len(r) else "" for r in rows]
            present = np.fromiter((bool(c.strip()) for c in cells), bool, len(cells))
            values, numeric = _floats(
                [c for c, ok in zip(cells, present) if ok],
                row_numbers[present],
                lambda r, c, i=i: self._bad(r, c, i),
                strict=i in self.strict,
            )
            s, v = self.series[i]
            s.append(steps[present][numeric])
            v.append(values[numeric])
        self.rows += len(rows)

    def _bad(self, row: int, cell: str, column: int) -> None:
        raise UserError(
            f"{self.path}: row {row}, column {self.header[column]!r}: {cell!r} is not a number"
        )

    def table(self, columns: list[str | None]) -> Table:
        series = {}
        for i in self.kept:
            s, v = self.series[i]
            if sum(len(x) for x in s):
                series[columns[i]] = (np.concatenate(s), np.concatenate(v))
        return Table(self.path, series, columns=[c for c in columns if c])


def _floats(cells: list[str], rows: np.ndarray, bad, strict: bool):
    """(values, numeric) of cells: fast when all are plain numbers; otherwise cell by cell,
    with the loggers' NaN / inf spellings. A cell that is no number is an error in a
    ``strict`` column (loss, LR, step, size) and not ``numeric`` (left out) in others."""
    try:
        values = np.asarray(cells, dtype=np.float64) if cells else np.zeros(0)
        return values, np.ones(len(values), dtype=bool)
    except (ValueError, OverflowError):
        pass
    values, numeric = np.empty(len(cells)), np.ones(len(cells), dtype=bool)
    for k, cell in enumerate(cells):
        try:
            values[k] = parse_number(cell)
        except ValueError:
            if strict:
                bad(int(rows[k]), cell)
            values[k], numeric[k] = np.nan, False
    return values, numeric


def _check_steps(path: str, steps: np.ndarray, rows: np.ndarray) -> None:
    bad = ~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps))
    if bad.any():
        k = int(np.argmax(bad))
        check_step(path, f"row {int(rows[k])}", float(steps[k]))


def read_csv_table(path: str | Path, keep: Keep | None = None) -> Table:
    """CSV or TSV with a header row: plain logs and Weights & Biases history exports.

    ``keep(name)`` chooses the columns to store by their normalised name (default: all)."""
    p = str(path)
    blocks = _with_header(iter_line_blocks(path), p)
    header_line, header_text = next(blocks)
    delimiter = "\t" if "\t" in header_text else ","
    dialect = "excel-tab" if delimiter == "\t" else "excel"
    header = _csv_rows([header_text], dialect, p, [header_line])[0]
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
    kept = [
        i
        for i, name in enumerate(columns)
        if name and i != step_idx and (keep is None or keep(normalise(name)))
    ]
    strict = {i for i in kept if normalise(columns[i]) in STRICT}
    store = _Columns(p, header, kept, strict)
    needed = max([step_idx, *kept]) + 1  # cells to split off each line
    for first, lines in blocks:
        numbers = np.arange(first, first + len(lines))
        used = [k for k, line in enumerate(lines) if line.strip()]
        if first <= header_line:  # the header's own block: data starts after it
            used = [k for k in used if numbers[k] > header_line]
        if not used:
            continue
        lines = [lines[k] for k in used]
        numbers = numbers[used]
        cells = np.fromiter((line.count(delimiter) for line in lines), int, len(lines)) + 1
        quoted = any('"' in line for line in lines)
        if quoted or cells.max() > len(header):
            rows = (
                _csv_rows(lines, dialect, p, numbers)
                if quoted
                else [ln.split(delimiter) for ln in lines]
            )
            widths = np.array([len(r) for r in rows])
            if widths.max() > len(header):
                k = int(np.argmax(widths > len(header)))
                raise UserError(
                    f"{p}: row {int(numbers[k])}: {widths[k]} cells but the header has {len(header)}"
                )
        else:
            rows = [line.split(delimiter, needed) for line in lines]
        store.add_block(numbers, rows, step_idx)
    if store.rows == 0:
        raise UserError(f"{p}: the file has a header but no data rows")
    return store.table(columns)


def _csv_rows(lines: list[str], dialect: str, path: str, numbers) -> list[list[str]]:
    """Lines with quoted cells, split by the csv module (one line per row); ``numbers`` are
    the lines' numbers in the file."""
    rows = []
    for number, line in zip(numbers, lines):
        try:
            rows.append(next(csv.reader([line], dialect), []))
        except csv.Error as exc:
            raise UserError(f"{path}: row {int(number)}: {exc}") from None
    return rows


def _with_header(blocks, path: str):
    """First (line number, text) of the header (the first non-blank line), then every block
    (the header's block again, which the caller skips up to the header)."""
    pending = []
    for first, lines in blocks:
        pending.append((first, lines))
        for k, line in enumerate(lines):
            if line.strip():
                yield first + k, line
                yield from pending
                yield from blocks
                return
    raise UserError(f"{path}: the file is empty")


def read_jsonl_table(path: str | Path, keep: Keep | None = None) -> Table:
    """JSON lines: one object per line; nested objects are flattened with '/'. Values of a
    loss or learning-rate field that are not numbers (lists, booleans, null) are dropped and
    counted in ``Table.skipped``."""
    p = str(path)
    series: dict[str, tuple[list[float], list[float]]] = {}
    skipped: dict[str, int] = {}
    seen_columns: dict[str, None] = {}
    rows = 0
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{p}: line {line_no}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise UserError(f"{p}: line {line_no}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise UserError(f"{p}: line {line_no}: expected a JSON object")
        flat = _flatten(obj)
        lowered = {k.lower(): k for k in flat}
        key = next((lowered[a] for a in STEP_ALIASES if a in lowered), None)
        if key is None:
            raise UserError(
                f"{p}: line {line_no}: no step field; expected one of {', '.join(STEP_ALIASES[:6])}"
            )
        step = _json_number(flat[key], p, line_no, key, strict=True)
        if step is None:
            raise UserError(f"{p}: line {line_no}, field {key!r}: {flat[key]!r} is not a number")
        check_step(p, f"line {line_no}", step)
        rows += 1
        for k, v in flat.items():
            seen_columns.setdefault(k)
            if k == key or (keep is not None and not keep(normalise(k))):
                continue
            strict = normalise(k) in STRICT
            value = _json_number(v, p, line_no, k, strict=strict)
            if value is None:
                if strict:
                    skipped[k] = skipped.get(k, 0) + 1
                continue
            s, vals = series.setdefault(k, ([], []))
            s.append(step)
            vals.append(value)
    if rows == 0:
        raise UserError(f"{p}: no JSON objects found")
    table = Table(p, {k: (np.array(s), np.array(v)) for k, (s, v) in series.items()})
    table.skipped = skipped
    table.columns = list(seen_columns)
    return table


def _json_number(value: Any, path: str, line_no: int, key: str, strict: bool) -> float | None:
    """A JSON value as a number; None for values that are no number (strings that are no
    number are an error in a strict field)."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, str):
        try:
            return parse_number(value)
        except ValueError:
            if strict:
                raise UserError(
                    f"{path}: line {line_no}, field {key!r}: {value!r} is not a number"
                ) from None
            return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range
            return float("inf")
    return None


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "/"))
        else:
            out[name] = v
    return out


def read_table(path: str | Path, keep: Keep | None = None) -> Table:
    """Read any supported log into sparse series, choosing the reader by name and content;
    ``keep(name)`` chooses the columns to store (default: all)."""
    path = Path(path)
    if path.is_dir() or "tfevents" in path.name:
        from learnlaw.io.tensorboard import read_tensorboard_table

        return read_tensorboard_table(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return read_jsonl_table(path, keep)
    return read_csv_table(path, keep)
