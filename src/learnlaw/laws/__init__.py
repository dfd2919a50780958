"""Loss-curve laws behind one interface: ``Law().fit(curves)`` then ``.predict(schedule, steps)``.

FIT.json files carry the law's name and a format version; ``load_fit`` checks both.
"""

from __future__ import annotations

import json
from pathlib import Path

from learnlaw.errors import UserError
from learnlaw.files import write_json
from learnlaw.laws.base import FIT_FORMAT, FIT_FORMAT_VERSION, Law, Run, as_run
from learnlaw.laws.momentum import MomentumLaw
from learnlaw.laws.multipower import MultiPowerLaw

LAWS: dict[str, type[Law]] = {"momentum": MomentumLaw, "multipower": MultiPowerLaw}

__all__ = [
    "LAWS",
    "Law",
    "MomentumLaw",
    "MultiPowerLaw",
    "Run",
    "as_run",
    "load_fit",
    "make_law",
    "save_fit",
]


def make_law(name: str, *, lam: str | float = "0.999", size_scaling: bool = False) -> Law:
    """A law from command-line style options (validated here, once)."""
    if name not in LAWS:
        raise UserError(f"--law {name!r}: expected one of {', '.join(LAWS)}")
    if name == "momentum":
        if str(lam).strip().lower() == "auto":
            return MomentumLaw(lam="auto", size_scaling=size_scaling)
        try:
            value = float(lam)
        except ValueError:
            raise UserError(f"--lambda {lam!r}: expected a number in [0, 1) or 'auto'") from None
        if not 0 <= value < 1:
            raise UserError(f"--lambda {lam}: must be in [0, 1)")
        return MomentumLaw(lam=value, size_scaling=size_scaling)
    return LAWS[name]()


def save_fit(law: Law, path: str | Path) -> Path:
    return write_json(path, law.to_json())


def load_fit(path: str | Path, law: str | None = None) -> Law:
    """Read a FIT.json; ``law`` names the law the caller needs (error if it is another)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such fit file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(
            f"{path}: not a JSON file (expected a fit written by 'learnlaw law fit')"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FIT_FORMAT:
        raise UserError(f'{path}: not a learnlaw fit (expected "format": "{FIT_FORMAT}")')
    if obj.get("format_version") != FIT_FORMAT_VERSION:
        raise UserError(
            f"{path}: fit format version {obj.get('format_version')!r}; "
            f"this learnlaw reads version {FIT_FORMAT_VERSION}"
        )
    name = obj.get("law")
    if name not in LAWS:
        raise UserError(f"{path}: unknown law {name!r}; expected one of {', '.join(LAWS)}")
    if law is not None and name != law:
        raise UserError(f"{path}: a fit of the {name} law, but this needs the {law} law")
    try:
        return LAWS[name].from_json(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: damaged fit file ({exc})") from None
