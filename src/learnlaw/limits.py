"""Memory estimated before allocating, and refused beyond a limit (default 80% of this
machine's memory; ``--max-memory`` or ``set_memory_limit`` changes it)."""

from __future__ import annotations

import math
import os

from learnlaw.errors import UserError

_memory_limit: list[int | None] = [None]  # bytes; None: 80% of this machine's memory


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 16 << 30


def memory_limit() -> int:
    """The most memory one allocation plan may need (bytes)."""
    return _memory_limit[0] or int(0.8 * physical_memory())


def set_memory_limit(n_bytes: int | None) -> None:
    """Raise (or lower) the limit ``check_memory`` enforces; None restores the default."""
    if n_bytes is not None and n_bytes <= 0:
        raise UserError(f"memory limit {n_bytes}: must be positive")
    _memory_limit[0] = n_bytes


def check_memory(what: str, n_bytes: float) -> None:
    """Refuse, before allocating, a plan that would need more memory than the limit."""
    limit = memory_limit()
    if n_bytes > limit:
        default = " (80% of this machine's memory)" if _memory_limit[0] is None else ""
        raise UserError(
            f"{what} would need about {format_bytes(n_bytes)} of memory, more than the limit "
            f"of {format_bytes(limit)}{default}; raise it with --max-memory "
            "(learnlaw.limits.set_memory_limit)"
        )


def format_bytes(n: float) -> str:
    if n >= 1e18:
        return f"{n / 1e15:.2g} PB"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def parse_bytes(text: str) -> int:
    """``"16G"``, ``"512M"``, ``"2e9"`` -> bytes."""
    units = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    t = text.strip().upper().removesuffix("B")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = float("nan")
    if not (value > 0 and math.isfinite(value)):
        raise UserError(f"--max-memory {text!r}: expected a size such as 16G or 512M")
    return int(value)
