"""``learnlaw demo``: the main job on built-in data."""

from __future__ import annotations

from pathlib import Path

import click

from learnlaw.cli.common import percent
from learnlaw.cli.policy import print_summary


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="learnlaw-demo",
    show_default=True,
    help="Output folder (its policy/ and laws/ parts are replaced).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(out, quiet):
    """Learn a data policy for the perceptron and predict loss curves with a fitted law."""
    from learnlaw.analysis.analyze import analyze_run
    from learnlaw.demo import law_demo, policy_demo

    out = Path(out)
    click.echo("== Optimal learning: a data policy for the perceptron (config perceptron-demo)")
    metrics = policy_demo(out / "policy", quiet)
    print_summary(metrics, out / "policy")
    analysis = analyze_run(out / "policy")
    sim, law = analysis["sim"], analysis["step_law"]
    if law["B_improvement"] is None:
        coefficients = f"step law: {law['note']}"
    else:
        coefficients = (
            f"step law |dB|/B {100 * law['B_improvement']:.1f}%, "
            f"|dbeta|/beta {100 * law['beta_improvement']:.1f}%"
        )
    click.echo(
        f"Learning Law: SIM uniform {sim['uniform']:.3f} -> learned {sim['learned']:.3f}; {coefficients}"
    )
    click.echo(f"report: {out / 'policy' / 'report.html'}")
    click.echo("\n== Loss-curve law: momentum law fitted on the shipped constant + cosine runs")
    result = law_demo(out / "laws")
    click.echo(
        "  "
        + "  ".join(f"{k} = {v:.4g}" for k, v in result["params"].items())
        + f"  (lambda {result['lam']})"
    )
    for name, m in result["errors"].items():
        click.echo(
            f"  predicts the unseen {name} run with PredE {percent(m['pred_error'])}, "
            f"worst {percent(m['worst_error'])}, R^2 {m['r2']:.4f}"
        )
    click.echo(
        f"  predicted best WSD decay fraction: {100 * result['best_fraction']:.0f}% "
        f"(final loss {result['best_loss']:.4f})"
    )
    click.echo(f"outputs in {result['out']}/: fit.json, predictions.png, wsd_sweep.png")
