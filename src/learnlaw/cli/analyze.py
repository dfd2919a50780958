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
    "--tau",
    type=float,
    default=0.1,
    show_default=True,
    help="Property 1: an example with CT < -tau x std(CT) at a step is clearly harmful.",
)
@click.option(
    "--smooth",
    type=float,
    default=0.01,
    show_default=True,
    help="Also fit the step law to a centred moving average of this fraction of the steps.",
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
def analyze(run_dir, stride, zero_weight, fitted_loss, small_weight, away, tau, smooth, policy):
    """Check the Learning Law on a run; write RUN_DIR/analysis.json and RUN_DIR/report.html."""
    from learnlaw.analysis import Thresholds, analyze
    from learnlaw.analysis.report import analysis_notes, headline_rows
    from learnlaw.files import check_writable
    from learnlaw.policy.runfolder import analysis_names

    th = Thresholds(
        zero_weight=zero_weight,
        fitted_loss=fitted_loss,
        small_weight=small_weight,
        away=away,
        tau=tau,
        smooth=smooth,
    )
    th.validate()
    run_dir = Path(run_dir)
    json_name, report_name, figures = analysis_names(policy)
    check_writable(run_dir)  # before minutes of work, not after
    result = analyze(run_dir, stride=stride, thresholds=th, policy=policy)
    click.echo(table(headline_rows(result.data), ("quantity", "this run", "paper")))
    for note in analysis_notes(result.data):
        click.echo(note)
    result.to_json(run_dir / json_name)
    result.to_html(run_dir / report_name, figures=run_dir / figures)
    click.echo(f"wrote {run_dir / json_name} and {run_dir / report_name}")
