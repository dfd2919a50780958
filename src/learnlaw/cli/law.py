"""``learnlaw law fit | predict | compare``: fit loss-curve laws, predict curves with them.

One module per command (``law_fit``, ``law_predict``, ``law_compare``); what they share is in
``law_common``."""

from __future__ import annotations

import click

from learnlaw.cli.law_common import size_option
from learnlaw.cli.law_compare import compare_command
from learnlaw.cli.law_fit import fit_command
from learnlaw.cli.law_predict import predict_command
from learnlaw.planning import fit_warmup

__all__ = ["fit_warmup", "law", "size_option"]


@click.group()
def law() -> None:
    """Fit loss-curve laws to training runs and predict curves under any LR schedule."""


law.add_command(fit_command)
law.add_command(predict_command)
law.add_command(compare_command)
