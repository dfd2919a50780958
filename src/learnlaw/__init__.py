"""learnlaw: optimal data policies and loss-curve laws for language-model training.

    from learnlaw import MomentumLaw, Schedule, read_curve, sweep_wsd     # loss-curve laws
    import learnlaw.policy, learnlaw.analysis, learnlaw.tasks              # optimal learning
    import learnlaw.selection, learnlaw.pretrain                          # data selection

Names are imported on first use, so ``import learnlaw`` is quick and loads no torch. Importing
learnlaw changes no environment variable and no matplotlib setting.
"""

from __future__ import annotations

import importlib

from learnlaw._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "LossCurve": "learnlaw.curves",
    "read_curve": "learnlaw.curves",
    "UserError": "learnlaw.errors",
    "Law": "learnlaw.laws",
    "MomentumLaw": "learnlaw.laws",
    "MultiPowerLaw": "learnlaw.laws",
    "ForwardMomentumLaw": "learnlaw.laws",
    "select_law": "learnlaw.laws.selection",
    "compare_laws": "learnlaw.laws.evaluation",
    "load_law": "learnlaw.laws",
    "score_curves": "learnlaw.laws.evaluation",
    "example_curve": "learnlaw.examples",
    "Schedule": "learnlaw.schedules",
    "OptimizedSchedule": "learnlaw.planning",
    "ScheduleComparison": "learnlaw.planning",
    "SchedulePrediction": "learnlaw.planning",
    "WsdSweep": "learnlaw.planning",
    "compare_schedules": "learnlaw.planning",
    "optimize_schedule": "learnlaw.planning",
    "predict_schedule": "learnlaw.planning",
    "sweep_wsd": "learnlaw.planning",
}
_SUBPACKAGES = ("analysis", "laws", "planning", "policy", "pretrain", "selection", "tasks")

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"learnlaw.{name}")
    raise AttributeError(f"module 'learnlaw' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBPACKAGES])
