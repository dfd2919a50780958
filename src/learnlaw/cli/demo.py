"""``learnlaw demo``: the main job on built-in data."""

from __future__ import annotations

from pathlib import Path

import click

from learnlaw.cli.common import percent
from learnlaw.cli.policy import print_summary


def learning_law_lines(analysis) -> list[str]:
    """The paper's claims on the demo's own run, with their signs: SIM, the step law's B and
    beta, and the closed-form acceleration against the measured one."""
    sim, law = analysis.sim, analysis["step_law"]
    lines = [
        f"Learning Law: SIM uniform {sim['uniform']:.3f} -> learned {sim['learned']:.3f} "
        f"({sim['learned'] / sim['uniform']:.1f}x; the paper: 0.17 -> 0.52, rising with CR)"
    ]
    if law["B_change"] is None:
        lines.append(f"step law: {law['note']}")
        return lines
    verdict = [
        "B down" if law["improvement"]["B_down"] else "B UP (not the paper's improvement)",
        "beta up" if law["improvement"]["beta_up"] else "beta DOWN (not the paper's improvement)",
    ]
    lines.append(
        f"step law L0 + (B/t)^beta on the test curves: B {100 * law['B_change']:+.1f}%, "
        f"beta {100 * law['beta_change']:+.1f}% ({', '.join(verdict)}; the paper: -96.6%, +21.2%)"
    )
    closed, measured = law["acceleration_closed_form"], law["acceleration_measured"]
    lines.append(
        f"acceleration from the fitted laws {closed:.2f}x vs measured {measured:.2f}x "
        f"({100 * (closed / measured - 1):+.0f}%); extrapolated to 1e7 steps: "
        f"{law['extrapolated_acceleration']['1e+07']:.3g}x (the paper: > 9x)"
    )
    return lines


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="learnlaw-demo",
    show_default=True,
    help="Output folder (a previous demo's policy/ and laws/ files are replaced).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(out, quiet):
    """Learn a data policy for the perceptron and predict loss curves with a fitted law."""
    from learnlaw.demo import law_demo, policy_demo

    out = Path(out)
    click.echo("== Optimal learning: a data policy for the perceptron (config perceptron-demo)")
    result, analysis = policy_demo(out / "policy", quiet)
    print_summary(result.metrics, out / "policy")
    for line in learning_law_lines(analysis):
        click.echo(line)
    click.echo(f"report: {out / 'policy' / 'report.html'}")
    click.echo("\n== Loss-curve law: momentum law fitted on the shipped constant + cosine runs")
    result = law_demo(out / "laws")
    click.echo(
        "  "
        + "  ".join(f"{k} = {v:.4g}" for k, v in result.law.params_.items())
        + f"  (lambda {result.law.lam_})"
    )
    for name, score in result.scores.items():
        click.echo(
            f"  predicts the unseen {name} run with PredE {percent(score.pred_error)}, "
            f"worst {percent(score.worst_error)}, R^2 {score.r2:.4f}"
        )
    best = result.sweep.best
    click.echo(
        f"  predicted best WSD decay fraction: {100 * best.fraction:.0f}% "
        f"(final loss {best.final_loss:.4f})"
    )
    click.echo(f"outputs in {result.out}/: fit.json, predictions.png, wsd_sweep.png")
