"""Atomic file writes and the run record (versions, config) written next to every output."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C while writing leaves the previous file untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except (FileExistsError, NotADirectoryError):
        raise UserError(
            f"{path}: cannot write there: a part of the folder path is a file"
        ) from None
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes private files; outputs are not
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, or the target is a folder: name the target, not the tmp
        raise _cannot_write(path, exc) from None
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def _cannot_write(path: Path, exc: OSError) -> UserError:
    return UserError(f"{path}: cannot write there ({exc.strerror or exc})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_csv(path: str | Path, header: Sequence[str], columns: Sequence[Sequence[Any]]) -> Path:
    """A CSV of equal-length columns at full precision: integers as they are, floats by repr."""
    lines = [",".join(header)]
    lines += [",".join(_csv_cell(v) for v in row) for row in zip(*columns)]
    return write_text(path, "\n".join(lines) + "\n")


def _csv_cell(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value  # numpy scalars
    return str(value) if isinstance(value, int) else repr(float(value))


def write_json(path: str | Path, obj: Any) -> Path:
    """JSON that every tool can read: NaN and infinities become null."""
    return write_text(
        path, json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n"
    )


def json_line(obj: Any) -> str:
    """One line of JSON for command output (NaN and infinities become null)."""
    return json.dumps(_finite(obj), default=_json_default, allow_nan=False)


def _finite(obj: Any) -> Any:
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):  # floats and arrays were converted by _finite
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def versions() -> dict[str, str]:
    """Versions of everything that can change a number."""
    import numpy
    import scipy
    import torch

    from learnlaw import __version__

    return {
        "learnlaw": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
