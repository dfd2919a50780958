"""The command line: ``learnlaw <command>`` (or ``python -m learnlaw``). Each command parses,
calls the library, prints; see ``learnlaw.cli.app``."""

from __future__ import annotations

import os
import signal
import threading


def main(argv: list[str] | None = None) -> None:
    """The console entry point. Torch's default OpenMP busy-waiting slows a shared machine
    15-35x; passive waiting does not. Set for this process only, before torch is loaded (the
    library itself never touches the environment)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # a termination request (kill, a scheduler's time limit) stops like Ctrl-C: the command
    # says what was kept and how to continue, instead of dying mid-line
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    from learnlaw.cli.app import run

    run(argv)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
