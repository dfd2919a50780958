"""Data shipped with the package: example loss curves made by ``scripts/make_example_curves.py``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

EXAMPLE_SCHEDULES = ("constant", "cosine", "wsd", "multistep")


def example_curve_path(name: str) -> Path:
    """Path of a shipped example curve: constant, cosine, wsd or multistep."""
    if name not in EXAMPLE_SCHEDULES:
        raise ValueError(
            f"no example curve {name!r}; expected one of {', '.join(EXAMPLE_SCHEDULES)}"
        )
    return Path(str(resources.files("learnlaw") / "data" / "curves" / f"{name}.csv"))


def example_warmup() -> int:
    """The warmup of the example runs (their CSV rows start after it)."""
    runs = Path(str(resources.files("learnlaw") / "data" / "curves" / "runs.json"))
    return int(json.loads(runs.read_text(encoding="utf-8"))["warmup"])


def example_curve(name: str):
    """A shipped example run as a ``LossCurve`` (a 368K-parameter transformer trained on the
    built-in corpus for 2,000 steps under one of four schedules; warmup 100 steps)."""
    from learnlaw.curves import read_curve

    return read_curve(example_curve_path(name), warmup_steps=example_warmup(), name=name)
