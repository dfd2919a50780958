"""Loss-curve laws behind one interface: ``Law().fit(curves)`` then ``.predict(...)``.

A fitted law is saved as FIT.json (``law.save(path)``), a plain document with the law's name
and a format version, and read back by ``load_law``, which validates it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError
from learnlaw.laws.base import FIT_FORMAT, FIT_FORMAT_VERSION, Law
from learnlaw.laws.forward_momentum import ForwardMomentumLaw
from learnlaw.laws.inputs import LawInput, law_input, law_points
from learnlaw.laws.momentum import LAMBDA_CHOICES, MomentumLaw
from learnlaw.laws.multipower import MultiPowerLaw

LAWS: dict[str, type[Law]] = {
    "momentum": MomentumLaw,
    "multipower": MultiPowerLaw,
    "forward-momentum": ForwardMomentumLaw,
}

__all__ = [
    "LAWS",
    "ForwardMomentumLaw",
    "Law",
    "LawInput",
    "MomentumLaw",
    "MultiPowerLaw",
    "law_from_options",
    "law_input",
    "law_points",
    "load_law",
    "parse_lambda",
]


def parse_lambda(lam: str | float) -> str | float:
    """--lambda: a number in [0, 1), 'auto' or 'fit' (validated, naming the option)."""
    text = str(lam).strip().lower()
    if text in LAMBDA_CHOICES:
        return text
    try:
        value = float(lam)
    except ValueError:
        raise UserError(f"--lambda {lam!r}: expected a number in [0, 1), 'auto' or 'fit'") from None
    if not 0 <= value < 1:
        raise UserError(f"--lambda {lam}: expected a number in [0, 1), 'auto' or 'fit'")
    return value


def law_from_options(
    name: str,
    *,
    lam: str | float = "0.999",
    size_scaling: bool = False,
    bootstrap: int = 0,
    seed: int = 0,
    fit_from: int | None = None,
    smooth: int | None = None,
    max_points: int | None = None,
    delta: str | float = "auto",
) -> Law:
    """A law from command-line style options (validated here, once, naming the option)."""
    if name not in LAWS:
        raise UserError(f"--law {name!r}: expected one of {', '.join(LAWS)}")
    if bootstrap and bootstrap < 2:
        raise UserError(f"--bootstrap {bootstrap}: needs at least 2 replicas (or 0 for none)")
    if fit_from is not None and fit_from < 1:
        raise UserError(f"--fit-from {fit_from}: expected a step >= 1")
    if smooth is not None and smooth != 0 and smooth < 5:
        raise UserError(f"--smooth {smooth}: expected a window of at least 5 points (or 0: none)")
    if max_points is not None and max_points < 10:
        raise UserError(f"--max-points {max_points}: expected at least 10")
    common = {
        "bootstrap": bootstrap,
        "seed": seed,
        "fit_from": fit_from,
        "smooth": smooth or None,
        "delta": parse_delta(delta),
    }
    if max_points is not None:
        common["max_points"] = max_points
    if name == "momentum":
        return MomentumLaw(lam=parse_lambda(lam), size_scaling=size_scaling, **common)
    if name == "forward-momentum":
        return ForwardMomentumLaw(size_scaling=size_scaling, **common)
    if size_scaling:
        raise UserError("--size-scaling goes with --law momentum or forward-momentum")
    return LAWS[name](**common)


def parse_delta(delta: str | float) -> str | float:
    """--delta: a positive number or 'auto'."""
    if str(delta).strip().lower() == "auto":
        return "auto"
    try:
        value = float(delta)
    except ValueError:
        raise UserError(f"--delta {delta!r}: expected a positive number or 'auto'") from None
    if not 0 < value < float("inf"):
        raise UserError(f"--delta {delta}: expected a positive number or 'auto'")
    return value


def load_law(path: str | Path, law: str | None = None) -> Law:
    """Read a FIT.json; ``law`` names the law the caller needs (error if it is another)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such fit file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a fit file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(
            f"{path}: not a JSON file (expected a fit written by 'learnlaw law fit')"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FIT_FORMAT:
        raise UserError(f'{path}: not a learnlaw fit (expected "format": "{FIT_FORMAT}")')
    version = obj.get("format_version")
    if version == 1:
        obj = _from_version_1(obj)
    elif version != FIT_FORMAT_VERSION:
        raise UserError(
            f"{path}: fit format version {version!r}; "
            f"this learnlaw reads versions 1 and {FIT_FORMAT_VERSION}"
        )
    name = obj.get("law")
    if not isinstance(name, str) or name not in LAWS:
        raise UserError(f"{path}: unknown law {name!r}; expected one of {', '.join(LAWS)}")
    if law is not None and name != law:
        raise UserError(f"{path}: a fit of the {name} law, but this needs the {law} law")
    try:
        return LAWS[name].from_json(obj)
    except UserError as exc:
        raise UserError(f"{path}: damaged fit file ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: damaged fit file ({type(exc).__name__}: {exc})") from None


def _from_version_1(obj: dict[str, Any]) -> dict[str, Any]:
    """Version 1 stored the chosen lambda as the hyper-parameter and the bootstrap refits in
    the fit record."""
    hyper = dict(obj.get("hyperparameters") or {})
    fit = dict(obj.get("fit") or {})
    replicas = (fit.pop("bootstrap", None) or {}).get("replicas") or []
    learned = {"lam": hyper["lam"]} if "lam" in hyper else {}
    return {
        **obj,
        "hyperparameters": {**hyper, "bootstrap": len(replicas)},
        "learned": learned,
        "bootstrap_params": replicas,
        "fit": fit,
    }
