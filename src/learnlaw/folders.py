"""Folders that one learnlaw job owns: an OS lock for the job's life, and a ``config.json``
that says which job made the folder, so that it resumes only into its own folder and never
writes into someone else's.

Policy runs keep their richer rules in ``policy/runfolder.py`` (replacing a finished run,
its checkpoint); pre-training and data selection use ``claim_folder`` as it is.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learnlaw.errors import UserError
from learnlaw.files import cannot_write, remove_partial_writes, write_json

LOCK = ".learnlaw.lock"


def lock_folder(path: str | Path, what: str = "run") -> int:
    """Take an OS lock on ``path/.learnlaw.lock`` or refuse (one line): two jobs must never
    write into one folder. Closing the returned descriptor (``unlock_folder``) releases it."""
    path = Path(path)
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - not POSIX
        pass
    except OSError:
        os.close(fd)
        raise UserError(
            f"{path}: another learnlaw {what} is using this folder; wait for it or choose another --out"
        ) from None
    return fd


def unlock_folder(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the lock


def enter_folder(path: str | Path, what: str = "run") -> tuple[Path, int, Callable[[], None]]:
    """``create_folder`` then ``lock_folder``; also returns ``give_up()``, which releases the
    lock and removes what entering made (the lock file, the folders), so that a job refused
    before it wrote anything leaves no trace in a folder that is not its own."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    had_lock = (path / LOCK).exists()
    path = create_folder(path, what)
    fd = lock_folder(path, what)

    def give_up() -> None:
        if not had_lock:
            (path / LOCK).unlink(missing_ok=True)
        unlock_folder(fd)
        for folder in missing:  # deepest first; one that is not empty stays
            try:
                folder.rmdir()
            except OSError:
                break

    return path, fd, give_up


def create_folder(path: str | Path, what: str = "run") -> Path:
    """``path`` as a folder (made with its parents when missing), or a one-line refusal."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{path}: cannot create the {what} folder ({exc.strerror or exc})"
        ) from None
    return path


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; FileNotFoundError as it is, anything damaged one line."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: not valid JSON (a damaged {what})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object (a damaged {what})")
    return obj


def claim_folder(
    path: str | Path, record: dict[str, Any], *, resume: bool, what: str
) -> tuple[int, dict]:
    """Lock ``path`` for a job and return (lock descriptor, the folder's ``config.json``).

    ``record`` is what ``config.json`` holds for this job: its ``format`` names the kind of
    folder and ``config`` the resolved configuration. A new or empty folder gets the record
    and a fresh ``run_id``; with ``resume`` the folder must be one of this kind made with the
    same configuration. Anything else is refused in one line, before anything is written.
    """
    path, fd, give_up = enter_folder(path, what)
    try:
        config_file = path / "config.json"
        try:
            saved = read_json_object(config_file, "config.json")
        except (FileNotFoundError, UserError):
            saved = None
        ours = saved is not None and saved.get("format") == record["format"]
        if resume:
            if not ours:
                raise UserError(f"{path}: not a learnlaw {what} folder; nothing to resume")
            if saved.get("config") != json.loads(json.dumps(record["config"])):
                raise UserError(
                    f"{path}: made with a different configuration; resume it with its own "
                    "(config.json) or choose another --out"
                )
        elif any(p.name != LOCK for p in path.iterdir()):
            hint = (
                "continue it with --resume (resume=True)" if ours else "choose a new or empty --out"
            )
            raise UserError(f"{path}: the folder is not empty; {hint}")
        else:
            saved = {**record, "run_id": uuid.uuid4().hex}
            write_json(config_file, saved)
        remove_partial_writes(path)
    except BaseException:
        give_up()
        raise
    return fd, saved
