"""Shared fixtures. Tests that read ../shared/ skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SHARED_CURVES = ROOT.parent / "shared" / "data" / "loss-curves" / "multipowerlaw"


@pytest.fixture
def shared_curves() -> Path:
    if not SHARED_CURVES.is_dir():
        pytest.skip("../shared/data/loss-curves is not present")
    return SHARED_CURVES


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``learnlaw ARGS`` in-process; return (exit code, stdout, stderr)."""
    from learnlaw.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err
