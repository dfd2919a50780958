"""Scalars from TensorBoard event files, without TensorFlow or the tensorboard package.

An event file is a sequence of TFRecords (length, CRC, payload, CRC); each payload is an
``Event`` protocol buffer whose ``summary`` holds tagged values. Scalars are stored either as
``simple_value`` (PyTorch's SummaryWriter, TF1) or as a one-element ``tensor`` (TF2). This
module decodes just those fields of the protobuf wire format.
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
import numpy as np

from learnlaw.errors import UserError
from learnlaw.io.table import Table

# Field numbers from tensorflow/core/util/event.proto and framework/summary.proto.
_EVENT_STEP, _EVENT_SUMMARY = 2, 5
_SUMMARY_VALUE = 1
_VALUE_TAG, _VALUE_SIMPLE, _VALUE_TENSOR = 1, 2, 8
_TENSOR_DTYPE, _TENSOR_CONTENT, _TENSOR_FLOAT, _TENSOR_DOUBLE = 1, 4, 5, 6
_DT_FLOAT, _DT_DOUBLE = 1, 2
MAX_RECORD = 1 << 30  # bytes; a larger "length" is damage, not data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field number, wire type, value) for every field of one message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _tensor_scalar(buf: bytes) -> float | None:
    dtype, content, floats = None, None, []
    for number, wire, value in _fields(buf):
        if number == _TENSOR_DTYPE:
            dtype = value
        elif number == _TENSOR_CONTENT:
            content = value
        elif number == _TENSOR_FLOAT:
            floats += (
                struct.unpack(f"<{len(value) // 4}f", value)
                if wire == 2
                else struct.unpack("<f", value)
            )
        elif number == _TENSOR_DOUBLE:
            floats += (
                struct.unpack(f"<{len(value) // 8}d", value)
                if wire == 2
                else struct.unpack("<d", value)
            )
    if floats:
        return float(floats[0]) if len(floats) == 1 else None
    if content is not None and dtype in (_DT_FLOAT, _DT_DOUBLE):
        fmt, size = ("<f", 4) if dtype == _DT_FLOAT else ("<d", 8)
        return float(struct.unpack(fmt, content)[0]) if len(content) == size else None
    return None


def _masked_crc(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C, rotated and offset ("masked")."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path: Path, notes: list[str]):
    """Every record's payload, both checksums verified: a damaged length or payload is an
    error (never a silently shorter file); a truncated last record (the writer was stopped
    mid-write) is left out with a note."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with f:
        number = 0
        while True:
            offset = f.tell()
            header = f.read(12)
            if not header:
                return
            number += 1
            if len(header) < 12:
                notes.append(f"{path}: the last record is truncated (left out)")
                return
            length, length_crc = struct.unpack("<QI", header)
            if _masked_crc(header[:8]) != length_crc:
                raise UserError(
                    f"{path}: record {number} (byte {offset}): damaged length (checksum "
                    "mismatch); the file is corrupted"
                )
            if length > MAX_RECORD:
                raise UserError(f"{path}: record {number}: {length} bytes; not an event file")
            payload, footer = f.read(length), f.read(4)
            if len(payload) < length or len(footer) < 4:
                notes.append(f"{path}: the last record is truncated (left out)")
                return
            if _masked_crc(payload) != struct.unpack("<I", footer)[0]:
                raise UserError(
                    f"{path}: record {number} (byte {offset}): damaged data (checksum "
                    "mismatch); the file is corrupted"
                )
            yield payload


def read_event_file(path: Path, notes: list[str] | None = None) -> list[tuple[int, str, float]]:
    """(step, tag, value) for every scalar in one event file, in file order."""
    out = []
    notes = [] if notes is None else notes
    try:
        for record in _records(path, notes):
            step, summary = 0, None
            for number, _, value in _fields(record):
                if number == _EVENT_STEP:
                    step = value - (1 << 64) if value >= 1 << 63 else value
                elif number == _EVENT_SUMMARY:
                    summary = value
            if summary is None:
                continue
            for number, _, value_msg in _fields(summary):
                if number != _SUMMARY_VALUE:
                    continue
                tag, scalar = None, None
                for n, _, v in _fields(value_msg):
                    if n == _VALUE_TAG:
                        tag = v.decode("utf-8", "replace")
                    elif n == _VALUE_SIMPLE:
                        scalar = struct.unpack("<f", v)[0]
                    elif n == _VALUE_TENSOR:
                        scalar = _tensor_scalar(v)
                if tag is not None and scalar is not None:
                    out.append((step, tag, scalar))
    except (IndexError, ValueError, TypeError, AttributeError, struct.error):
        # TypeError/AttributeError: a record whose CRCs match but whose fields have the wrong
        # wire type (a crafted file: bytes where a number belongs, or the reverse)
        raise UserError(f"{path}: not a readable TensorBoard event file") from None
    return out


def _one_run(path: Path, files: list[Path]) -> list[Path]:
    """The event files of the one run in ``path``: one folder is one run (several files there
    are restarts). Event files directly in ``path`` win (trainers write side files such as
    hparams into subfolders); otherwise exactly one subfolder may hold scalars, since sibling
    folders are other runs or splits (train/, validation/) whose same-named tags must not merge."""
    top = [f for f in files if f.parent == path]
    if top:
        return top
    by_folder: dict[str, list[Path]] = {}
    for f in files:
        by_folder.setdefault(str(f.parent.relative_to(path)), []).append(f)
    with_scalars = [d for d, fs in by_folder.items() if any(read_event_file(f) for f in fs)]
    if len(with_scalars) > 1:
        shown = ", ".join(with_scalars[:4]) + (", ..." if len(with_scalars) > 4 else "")
        raise UserError(
            f"{path}: event files of {len(with_scalars)} runs ({shown}); give one run's folder"
        )
    return by_folder[with_scalars[0]] if with_scalars else files


def read_tensorboard_table(path: str | Path) -> Table:
    """All scalars of an event file, or of every event file of one run's folder (by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if "tfevents" in p.name and p.is_file())
        if not files:
            raise UserError(f"{path}: no TensorBoard event files (*tfevents*) in this folder")
        files = _one_run(path, files)
    elif path.is_file():
        files = [path]
    else:
        raise UserError(f"{path}: no such file")
    series: dict[str, tuple[list[int], list[float]]] = {}
    notes: list[str] = []
    for f in files:
        for step, tag, value in read_event_file(f, notes):
            steps, values = series.setdefault(tag, ([], []))
            steps.append(step)
            values.append(value)
    if not series:
        raise UserError(f"{path}: the event files hold no scalar values")
    return Table(
        str(path),
        {k: (np.array(s, dtype=float), np.array(v)) for k, (s, v) in series.items()},
        columns=list(series),
        notes=notes,
    )
