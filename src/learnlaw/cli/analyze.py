"""``learnlaw analyze DIR``: the Learning-Law analysis and report of a policy run."""

from __future__ import annotations

from pathlib import Path

import click

from learnlaw.cli.common import table


@click.command("analyze")
@click.argument("run_dir", type=click.Path())
@click.option("--stride", type=int, default=1, show_default=True, help="Measure every k-th step.")
@click.option(
    "--zero-weight",
    type=float,
    default=0.01,
    show_default=True,
    help="A weight below this / N counts as zero.",
)
@click.option(
    "--fitted-loss",
    type=float,
    default=1e-6,
    show_default=True,
    help="Property 2: an example with loss below this is perfectly fitted.",
)
@click.option(
    "--small-weight",
    type=float,
    default=0.2,
    show_default=True,
    help="Property 2: a weight below this x the step's largest is small.",
)
@click.option(
    "--away",
    type=float,
    default=0.05,
    show_default=True,
    help="A step is away from uniform when max |N gamma - 1| exceeds this.",
)
@click.option(
    "--policy",
    type=click.Choice(["kept", "objective"]),
    default="kept",
    show_default=True,
    help="kept: the policy chosen on the select set; objective: the one with the lowest "
    "objective (closest to the optimum the Learning Law describes; writes "
    "analysis-objective.json and report-objective.html).",
)
def analyze(run_dir, stride, zero_weight, fitted_loss, small_weight, away, policy):
    """Check the Learning Law on a run; write RUN_DIR/analysis.json and RUN_DIR/report.html."""
    from learnlaw.analysis.analyze import analyze_run, output_names
    from learnlaw.analysis.learning_law import Thresholds
    from learnlaw.analysis.report import analysis_notes, headline_rows

    th = Thresholds(
        zero_weight=zero_weight, fitted_loss=fitted_loss, small_weight=small_weight, away=away
    )
    analysis = analyze_run(Path(run_dir), stride=stride, thresholds=th, policy=policy)
    click.echo(table(headline_rows(analysis), ("quantity", "this run", "paper")))
    for note in analysis_notes(analysis):
        click.echo(note)
    json_name, report_name, _ = output_names(policy)
    click.echo(f"wrote {Path(run_dir) / json_name} and {Path(run_dir) / report_name}")
