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


def noisy_law_curves(law, specs, steps, noise: float, rng, **fields) -> list:
    """Curves a fitted ``law`` predicts for schedule ``specs``, times (1 + noise * N(0, 1)).

    ``steps`` is an array, or a function of the parsed schedule; each curve is named by its
    schedule's kind and starts its fit after the schedule's warmup."""
    from learnlaw.curves import LossCurve
    from learnlaw.schedules import parse_schedule

    curves = []
    for spec in specs:
        sched = parse_schedule(spec)
        at = steps(sched) if callable(steps) else steps
        clean = law.predict(sched, at)
        noisy = clean * (1 + noise * rng.standard_normal(len(at)))
        curves.append(
            LossCurve(
                at, noisy, sched, warmup_steps=sched.warmup, name=spec.split(":")[0], **fields
            )
        )
    return curves
