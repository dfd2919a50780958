"""Atomic file writes and the run record (versions, config) written next to every output."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError

PARTIAL = "learnlaw-partial"  # in the name of every temporary file of atomic_write


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C while writing leaves the previous file untouched, and a hidden
    ``.NAME.learnlaw-partial.XXXX.tmp`` that ``remove_partial_writes`` clears.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{PARTIAL}.", suffix=".tmp"
        )
    except (FileExistsError, NotADirectoryError):
        raise UserError(
            f"{path}: cannot write there: a part of the folder path is a file"
        ) from None
    except OSError as exc:
        raise cannot_write(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes private files; outputs are not
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, or the target is a folder: name the target, not the tmp
        raise cannot_write(path, exc) from None
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def remove_partial_writes(folder: Path, earlier_names: Iterable[str] = ()) -> None:
    """Delete the temporaries that a killed ``atomic_write`` left in ``folder`` (only files
    named as it names them: nothing else in the folder is touched). ``earlier_names``: files
    whose temporaries may have the form that learnlaw used before, ``.NAME.XXXXXXXX.tmp``
    (mkstemp's eight characters), which are deleted too."""
    import re

    names = "|".join(map(re.escape, earlier_names))
    earlier = re.compile(rf"\.({names})\.[a-z0-9_]{{8}}\.tmp") if names else None
    for p in folder.glob(".*.tmp"):
        ours = f".{PARTIAL}." in p.name or (earlier is not None and earlier.fullmatch(p.name))
        if ours and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)


def cannot_write(path: Path, exc: OSError) -> UserError:
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

    from learnlaw._version import __version__

    return {
        "learnlaw": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


# ---- state files: nested numbers, strings, lists, dicts and arrays, without pickles ----------
STATE_META = "__meta__"


def save_state(path: str | Path, state: Any) -> Path:
    """Write ``state`` (dicts, lists, numbers, strings, None, numpy arrays and torch tensors)
    atomically as one ``.npz`` file: the arrays as arrays, the structure as JSON. Nothing in it
    is a pickle, so loading a file someone else made runs no code. A tensor or array that
    appears several times is stored once."""
    import numpy as np

    arrays: dict[str, Any] = {}
    seen: dict[int, int] = {}

    def pack(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {"__dict__": [[str(k), pack(v)] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return [pack(v) for v in obj]
        if hasattr(obj, "detach") and hasattr(obj, "dtype"):  # a torch tensor
            key = seen.get(id(obj))
            if key is None:
                key = seen[id(obj)] = len(arrays)
                arrays[f"a{key}"] = obj.detach().cpu().double().numpy()
            return {"__tensor__": key, "dtype": str(obj.dtype).removeprefix("torch.")}
        if isinstance(obj, np.ndarray):
            key = seen.get(id(obj))
            if key is None:
                key = seen[id(obj)] = len(arrays)
                arrays[f"a{key}"] = obj
            return {"__array__": key}
        if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
            return {"__float__": repr(float(obj))}
        if isinstance(obj, np.generic):
            return obj.item()
        return obj

    meta = json.dumps(pack(state))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, **{STATE_META: np.array(meta)})

    return atomic_write(path, write)


def load_state(path: str | Path) -> Any:
    """Read a file written by ``save_state`` (tensors come back as torch tensors of their
    dtype). Raises ``UserError`` naming the file when it is damaged or not such a file."""
    import numpy as np
    import torch

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[STATE_META]))
            arrays = {k: data[k] for k in data.files if k != STATE_META}
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zip, foreign file, pickled arrays refused, bad JSON
        raise UserError(
            f"{path}: not a readable learnlaw state file ({type(exc).__name__})"
        ) from None

    tensors: dict[int, Any] = {}  # a tensor stored once comes back as one shared tensor

    def unpack(obj: Any) -> Any:
        if isinstance(obj, list):
            return [unpack(v) for v in obj]
        if isinstance(obj, dict):
            if "__dict__" in obj:
                return {k: unpack(v) for k, v in obj["__dict__"]}
            if "__tensor__" in obj:
                key = obj["__tensor__"]
                if key not in tensors:
                    dtype = getattr(torch, obj["dtype"])
                    if not isinstance(dtype, torch.dtype):
                        raise ValueError(f"unknown tensor dtype {obj['dtype']!r}")
                    tensors[key] = torch.from_numpy(arrays[f"a{key}"]).to(dtype)
                return tensors[key]
            if "__array__" in obj:
                return arrays[f"a{obj['__array__']}"]
            if "__float__" in obj:
                return float(obj["__float__"])
        return obj

    try:
        return unpack(meta)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: damaged learnlaw state file ({exc})") from None


def check_writable(folder: str | Path) -> None:
    """Refuse early (one line) when files cannot be created in ``folder``, before any work."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # the command reports a missing folder itself
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".learnlaw-write-check.", suffix=".tmp")
    except OSError as exc:
        raise cannot_write(folder, exc) from None
    os.close(fd)
    os.unlink(tmp)


# ---- outputs: never replace a file learnlaw did not write ----------------------------------
PNG_MARK = b"Software\x00learnlaw"  # a tEXt chunk of every PNG learnlaw writes


def written_by_learnlaw(path: Path) -> bool:
    """Whether an existing file is one learnlaw wrote (JSON with a learnlaw "format", PNG with
    learnlaw's Software tag), so replacing it loses nothing of the user's."""
    try:
        if path.suffix.lower() == ".png":
            with open(path, "rb") as f:
                return PNG_MARK in f.read(1 << 16)
        if path.suffix.lower() == ".json" and path.stat().st_size < (256 << 20):
            obj = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(obj, dict) and str(obj.get("format", "")).startswith("learnlaw.")
    except (OSError, ValueError):
        return False
    return False


def check_output(path: str | Path, *, force: bool = False) -> Path:
    """Refuse early (one line, before any work) an output path learnlaw must not write: a
    folder, a path through a file, a folder it cannot write, or an existing file that learnlaw
    did not write (unless ``force``)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file name")
    if path.exists() and not force and not written_by_learnlaw(path):
        if path.suffix.lower() == ".csv":  # a CSV cannot say who wrote it
            raise UserError(f"{path}: exists; choose another name, or --force to replace it")
        raise UserError(f"{path}: exists and was not written by learnlaw; choose another name")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{path}: cannot write there: a part of the folder path is a file")
    if parent is not None:
        check_writable(parent)
    return path
