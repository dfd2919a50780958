"""Spec strings ``kind:key=value,...`` (lists separated by ``/``): the keys of every family,
parsing, validation with one-line errors, and the text form of a schedule.

The typed constructors of ``Schedule`` take the same keys and are validated here too.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.errors import UserError
from learnlaw.schedules.families import DECAY_SHAPES, wsd_decay_start

# kind -> (required keys, optional keys with defaults)
KEYS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("peak",), {"warmup": 0, "total": None}),
    "cosine": (("peak", "total"), {"final": 0.0, "warmup": 0}),
    "linear": (("peak", "total"), {"final": 0.0, "warmup": 0}),
    "wsd": (
        ("peak", "total"),
        {"final": 0.0, "warmup": 0, "decay_start": None, "decay_frac": None, "shape": "linear"},
    ),
    "multistep": (
        ("peak", "milestones"),
        {"values": None, "gamma": None, "warmup": 0, "total": None},
    ),
    "cyclic": (
        ("peak", "cycle", "total"),
        {"final": 0.0, "warmup": 0, "rewarmup": 0, "shape": "cosine"},
    ),
}
_INTKEYS = {"warmup", "total", "decay_start", "cycle", "rewarmup"}
_LISTKEYS = {"milestones", "values"}
_STRKEYS = {"shape"}


# ---- parsing ---------------------------------------------------------------------------
def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``kind:key=value,...`` -> (kind, validated params in key order); a csv spec gives
    ("csv", {"path": ..., "warmup": W or None})."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "csv":
        return _parse_csv_spec(spec, rest)
    if kind not in KEYS:
        known = ", ".join([*KEYS, "csv"])
        raise UserError(f"schedule {spec!r}: unknown kind {kind!r}; expected one of {known}")
    required, optional = KEYS[kind]
    params: dict[str, Any] = dict(optional)
    seen = set()
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UserError(f"schedule {spec!r}: expected key=value, got {item!r}")
        if key not in required and key not in optional:
            allowed = ", ".join([*required, *optional])
            raise UserError(
                f"schedule {spec!r}: unknown key {key!r} for {kind}; expected {allowed}"
            )
        if key in seen:
            raise UserError(f"schedule {spec!r}: {key} is given twice")
        params[key] = _parse_value(spec, key, value.strip())
        seen.add(key)
    missing = [k for k in required if k not in seen]
    if missing:
        raise UserError(f"schedule {spec!r}: missing {', '.join(missing)}")
    ordered = {k: params[k] for k in (*required, *optional)}
    validate(spec, kind, ordered)
    return kind, ordered


def _parse_csv_spec(spec: str, rest: str) -> tuple[str, dict[str, Any]]:
    """``csv:path=FILE[,warmup=W]``. The path may itself hold commas: only "warmup=W" before
    or after it is split off."""
    body, warmup_text = rest.strip().removesuffix(",").strip(), None
    head = re.fullmatch(r"warmup\s*=\s*([^,]*),(.*)", body, flags=re.DOTALL | re.I)
    tail = re.fullmatch(r"(.*),\s*warmup\s*=\s*([^,]*)", body, flags=re.DOTALL | re.I)
    if head:
        warmup_text, body = head.group(1), head.group(2).strip()
    elif tail:
        body, warmup_text = tail.group(1).strip(), tail.group(2)
    key, eq, path = body.partition("=")
    path = path.strip()
    if key.strip().lower() != "path" or not eq or not path:
        raise UserError(f"schedule {spec!r}: expected csv:path=FILE[,warmup=W]")
    if "," in path and not Path(path).exists():
        raise UserError(
            f"schedule {spec!r}: no such file {path!r} (expected csv:path=FILE[,warmup=W])"
        )
    warmup = None
    if warmup_text is not None:
        warmup = _parse_value(spec, "warmup", warmup_text.strip())
        if warmup < 0:
            raise UserError(f"schedule {spec!r}: warmup must be non-negative")
    return "csv", {"path": path, "warmup": warmup}


def _parse_value(spec: str, key: str, value: str) -> Any:
    try:
        if key in _STRKEYS:
            return value.lower()
        if key in _LISTKEYS:
            numbers = [float(v) for v in value.split("/") if v.strip()]
            return [int(v) for v in numbers] if key == "milestones" else numbers
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
        if key in _INTKEYS:
            if number != int(number):
                raise ValueError
            return int(number)
        return number
    except ValueError:
        kind = "an integer" if key in _INTKEYS else "a number"
        if key in _LISTKEYS:
            kind = "numbers separated by /"
        raise UserError(f"schedule {spec!r}: {key}={value!r} is not {kind}") from None


def typed_value(kind: str, key: str, value: Any) -> Any:
    """A typed constructor's argument checked like the same key in a spec string."""
    label = f"{kind} schedule: {key}={value!r}"
    if key in _STRKEYS:
        if not isinstance(value, str):
            raise UserError(f"{label}: expected a string")
        return value.lower()
    if key in _LISTKEYS:
        try:
            items = [float(v) for v in value]
        except (TypeError, ValueError):
            raise UserError(f"{label}: expected a list of numbers") from None
        if not all(math.isfinite(v) for v in items):
            raise UserError(f"{label}: expected finite numbers")
        if key == "milestones":
            if any(v != int(v) for v in items):
                raise UserError(f"{label}: expected integers")
            return [int(v) for v in items]
        return items
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{label}: expected a number")
    if not math.isfinite(value):
        raise UserError(f"{label}: expected a finite number")
    if key in _INTKEYS:
        if value != int(value):
            raise UserError(f"{label}: expected an integer")
        return int(value)
    return float(value)


def validate(spec: str, kind: str, p: dict[str, Any], prefix: bool = True) -> None:
    def fail(msg: str) -> None:
        raise UserError(f"schedule {spec!r}: {msg}" if prefix else f"{spec}: {msg}")

    if not p["peak"] > 0:
        fail("peak must be positive")
    if p.get("final") is not None and p["final"] < 0:
        fail("final must be non-negative")
    if p.get("final") is not None and p["final"] > p["peak"]:
        fail("final must not exceed peak")
    if p["warmup"] < 0:
        fail("warmup must be non-negative")
    total = p.get("total")
    if total is not None and total <= p["warmup"]:
        fail(f"total={total} must exceed warmup={p['warmup']}")
    if p.get("shape") is not None:
        shapes = ("cosine", "linear") if kind == "cyclic" else DECAY_SHAPES
        if p["shape"] not in shapes:
            fail(f"shape={p['shape']!r}; expected one of {', '.join(shapes)}")
        if p["shape"] == "geometric" and p["final"] <= 0:
            fail("shape=geometric needs final > 0")
    if kind == "wsd":
        if (p["decay_start"] is None) == (p["decay_frac"] is None):
            fail("give exactly one of decay_start and decay_frac")
        if p["decay_frac"] is not None and not 0 < p["decay_frac"] <= 1:
            fail("decay_frac must be in (0, 1]")
        start = wsd_decay_start(p)
        if not p["warmup"] <= start < total:
            fail(f"the decay must start in [warmup, total), got step {start}")
    if kind == "multistep":
        if (p["values"] is None) == (p["gamma"] is None):
            fail("give exactly one of values and gamma")
        ms = p["milestones"]
        if any(b <= a for a, b in itertools.pairwise(ms)):
            fail("milestones must increase")
        if p["values"] is not None and len(p["values"]) != len(ms):
            fail(f"values needs one learning rate per milestone ({len(ms)})")
        if p["values"] is not None and any(v < 0 for v in p["values"]):
            fail("values must be non-negative")
        if p["gamma"] is not None and p["gamma"] <= 0:
            fail("gamma must be positive")
    if kind == "cyclic" and not 0 <= p["rewarmup"] < p["cycle"]:
        fail("rewarmup must be in [0, cycle)")


def typed_params(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """A typed constructor's arguments, checked as a spec string's would be (types, ranges)."""
    required, optional = KEYS[kind]
    params: dict[str, Any] = {}
    for key in (*required, *optional):
        value = given.get(key, optional.get(key))
        params[key] = None if value is None else typed_value(kind, key, value)
    validate(f"{kind} schedule", kind, params, prefix=False)
    return params


def format_spec(kind: str, params: dict[str, Any]) -> str:
    """The spec string of a family schedule (keys with a value, in key order)."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = "/".join(_fmt(v) for v in value)
        parts.append(f"{key}={_fmt(value)}")
    return f"{kind}:" + ",".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)  # full precision: a spec must parse back to the same schedule
    return str(v)
