"""Learning-rate schedules: ``Schedule`` (typed constructors, spec strings, per-step LR)."""

from learnlaw.schedules.families import DECAY_SHAPES, decay_curve, wsd_decay_start
from learnlaw.schedules.schedule import (
    Schedule,
    as_schedule,
    detect_warmup,
    parse_schedule,
    read_schedule_csv,
)

__all__ = [
    "DECAY_SHAPES",
    "Schedule",
    "as_schedule",
    "decay_curve",
    "detect_warmup",
    "parse_schedule",
    "read_schedule_csv",
    "wsd_decay_start",
]
