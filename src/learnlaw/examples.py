"""Data shipped with the package: example loss curves made by ``scripts/make_example_curves.py``."""

from __future__ import annotations

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
