"""learnlaw: optimal data policies and loss-curve laws for language-model training."""

import os

# Torch's default OpenMP busy-waiting slows a shared 2-core machine 15-35x; passive waiting does
# not. This only takes effect if learnlaw is imported before torch (as the CLI does).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from learnlaw.curves import LossCurve, read_curve
from learnlaw.errors import UserError
from learnlaw.schedules import Schedule, parse_schedule

__all__ = ["LossCurve", "Schedule", "UserError", "__version__", "parse_schedule", "read_curve"]
