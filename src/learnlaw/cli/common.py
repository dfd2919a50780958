"""Helpers shared by the command modules: messages, reading curves, tables."""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from learnlaw.curves import LossCurve, read_curve
from learnlaw.errors import UserError
from learnlaw.schedules import parse_schedule


def note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def read_curves(
    files: Sequence[str],
    *,
    loss_column: str | None = None,
    warmup_steps: int | None = None,
    schedules: Sequence[str] = (),
) -> list[LossCurve]:
    """Read every file, printing what cleaning did. ``schedules``: one for all or one per file."""
    if schedules and len(schedules) not in (1, len(files)):
        raise UserError(
            f"--schedule given {len(schedules)} times for {len(files)} files; "
            "give it once (for all files) or once per file"
        )
    seen: dict[str, str] = {}
    for path in files:
        real = os.path.realpath(
            str(path).rpartition("@")[0] if "@" in str(path) and not os.path.exists(path) else path
        )
        if real in seen:
            raise UserError(f"{path}: given twice (also as {seen[real]}); give each run once")
        seen[real] = str(path)
    curves = []
    for i, path in enumerate(files):
        spec = schedules[0] if len(schedules) == 1 else (schedules[i] if schedules else None)
        curve = read_curve(
            path,
            loss_column=loss_column,
            warmup_steps=warmup_steps,
            schedule=parse_schedule(spec) if spec else None,
        )
        for message in curve.notes:
            note(f"{path}: {message}")
        curves.append(curve)
    names = [c.name for c in curves]
    if len(set(names)) < len(names):  # same file names in different folders: use the paths
        for c, path in zip(curves, files):
            c.name = str(path)
    return curves


def table(rows: list[Sequence[object]], header: Sequence[str]) -> str:
    """A plain text table with columns padded to their widest cell."""
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percent(x: float) -> str:
    return f"{100 * x:.3f}%"
