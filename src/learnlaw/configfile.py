"""TOML configuration files into validated dataclasses, with one-line errors naming the key.

Shared by every command that takes ``--config FILE`` (policy runs, data selection,
pre-training): a file or a built-in name from ``learnlaw/configs/``; unknown keys and values of
the wrong type are errors that name the key and the file.
"""

from __future__ import annotations

import dataclasses
import numbers
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def builtin_config_path(name: str) -> Path | None:
    path = Path(str(resources.files("learnlaw") / "configs" / f"{name}.toml"))
    return path if path.is_file() else None


def read_config_file(path: str | Path) -> tuple[dict[str, Any], str]:
    """The TOML table of a file (or a built-in config name) and how to name it in errors."""
    resolved = Path(path)
    if not resolved.exists() and builtin_config_path(str(path)) is not None:
        resolved = builtin_config_path(str(path))
    where = f"config {path}"
    try:
        return tomllib.loads(resolved.read_text(encoding="utf-8")), where
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"{where}: no such file (nor a built-in config of that name)") from None
    except UnicodeDecodeError:
        raise UserError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc})") from None


def fill(
    cls: type, values: Any, source: str, section: str, mixed_keys: frozenset[str] = frozenset()
) -> Any:
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types.

    ``mixed_keys`` (``section.key``) may hold any type; the dataclass's ``validate`` checks them.
    """
    if not isinstance(values, dict):
        raise UserError(f"{source}: [{section}] must be a table of key = value")
    fields = [f.name for f in dataclasses.fields(cls)]
    defaults = cls()
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise UserError(
                f"{source}: unknown key {section}.{key}; expected one of {', '.join(fields)}"
            )
        name = f"{section}.{key}"
        out[key] = (
            value if name in mixed_keys else coerce(value, getattr(defaults, key), name, source)
        )
    return cls(**out)


def coerce(value: Any, default: Any, name: str, source: str) -> Any:
    """``value`` as the type of ``default`` (an int is a valid float; numpy numbers count), or
    a one-line error."""
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        expected, value = "an integer", int(value) if ok else value
    elif isinstance(default, float):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        expected, value = "a number", float(value) if ok else value
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise UserError(f"{source}: {name} = {value!r}: expected {expected}")
    return value


def check_types(obj: Any, section: str, mixed_keys: frozenset[str] = frozenset()) -> None:
    """The fields of dataclass ``obj`` of their defaults' types, as ``fill`` requires of a
    file: a config built in Python is checked as one read from TOML (numbers made exact)."""
    defaults = type(obj)()
    for f in dataclasses.fields(obj):
        name, default = f"{section}.{f.name}", getattr(defaults, f.name)
        if name not in mixed_keys and isinstance(default, (bool, int, float, str)):
            setattr(obj, f.name, coerce(getattr(obj, f.name), default, name, "config"))


def check_sections(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise UserError(
            f"{where}: unknown key or section {unknown[0]!r}; expected {', '.join(sorted(allowed))}"
        )


def top_level_seed(raw: dict[str, Any], where: str) -> int:
    """The ``seed`` key of a config (default 0), an integer."""
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"{where}: seed = {seed!r}: expected an integer")
    return seed


def top_level_device(raw: dict[str, Any], where: str) -> str:
    """The ``device`` key of a config (default cpu), a string (``check_device`` checks it)."""
    device = raw.get("device", "cpu")
    if not isinstance(device, str):
        raise UserError(f"{where}: device = {device!r}: expected a string")
    return device


def check_device(device: str, key: str = "device", also: tuple[str, ...] = ()) -> None:
    """A one-line error unless ``device`` is cpu, one of ``also``, or CUDA on a machine that
    has a CUDA GPU."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"{key} = {device!r}: no CUDA GPU is available here")
    elif device != "cpu" and device not in also:
        raise UserError(f"{key} = {device!r}: expected {', '.join(['cpu', *also])}, cuda or cuda:N")


def parse_override(text: str) -> tuple[str, Any]:
    """``--set outer.lr=0.01`` -> ("outer.lr", 0.01); values are parsed as TOML scalars."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise UserError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. outer.epochs=50")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word such as eg or std
    return key.strip(), parsed


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Put ``{"section.key": value}`` overrides into a TOML table (in place; returned)."""
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[key] = value
    return raw
