"""Readers of training logs: every format becomes a :class:`Table` of sparse series.

This package knows file formats and nothing about schedules or laws: CSV/TSV (plain logs and
Weights & Biases exports), JSON lines and TensorBoard event files. ``learnlaw.curves`` turns a
table into a loss curve; ``learnlaw.schedules`` reads learning-rate points from one.
"""

from learnlaw.io.table import (
    LOSS_ALIASES,
    LR_ALIASES,
    SIZE_ALIASES,
    STEP_ALIASES,
    Table,
    clean_losses,
    clean_series,
)
from learnlaw.io.text import read_table

__all__ = [
    "LOSS_ALIASES",
    "LR_ALIASES",
    "SIZE_ALIASES",
    "STEP_ALIASES",
    "Table",
    "clean_losses",
    "clean_series",
    "read_table",
]
