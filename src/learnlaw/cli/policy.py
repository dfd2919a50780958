"""``learnlaw policy optimize | evaluate``: learn a data policy, re-check a saved one."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from learnlaw.cli.common import table
from learnlaw.errors import UserError
from learnlaw.policy.config import load_config, parse_override


@click.group()
def policy() -> None:
    """Learn a data policy (a weight for every training example at every step)."""


def print_summary(metrics: dict, out: Path) -> None:
    cr = metrics["compression_ratio"]
    click.echo(f"acceleration ratio (test): {metrics['acceleration_ratio']:.2f}x")
    click.echo(f"AUC ratio (test):          {metrics['auc_ratio']:.3f}")
    click.echo(
        f"compression ratio (test, log{cr['log_base']:g}|V| / nats): "
        f"uniform {cr['uniform']:.3f} -> learned {cr['learned']:.3f}"
    )
    if "best_epoch" in metrics:
        click.echo(
            f"best outer epoch: {metrics['best_epoch']} of {metrics['epochs_run'] - 1}, "
            f"{metrics['seconds_per_epoch']:.2f} s per epoch"
        )
    click.echo(
        f"outputs in {out}/: metrics.json, curves.csv, policy.npz, policy_objective.npz, "
        "loss_curves.png, objective.png, policy_heatmap.png"
    )


@policy.command("optimize")
@click.option("--task", default=None, help="Task to run: perceptron or lm. Default: the config's.")
@click.option(
    "--config",
    "config_path",
    default=None,
    help="TOML config file, or a built-in name (perceptron-paper, perceptron-demo, perceptron-reference, perceptron-learning-law, lm-cpu, lm-paper).",
)
@click.option("--epochs", type=int, default=None, help="Outer epochs (overrides the config).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/policy",
    show_default=True,
    help="Output folder.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config value, e.g. --set outer.method=eg (repeatable).",
)
@click.option("--device", default=None, help="cpu, cuda or cuda:N (overrides the config).")
@click.option(
    "--max-minutes", type=float, default=None, help="Stop after the epoch that passes this budget."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def optimize_command(task, config_path, epochs, out, resume, overrides, device, max_minutes, quiet):
    """Optimise a data policy by exact hypergradients and write the run into --out."""
    from learnlaw.policy.run import optimize_policy

    values = dict(parse_override(o) for o in overrides)
    if epochs is not None:
        values["outer.epochs"] = epochs
    if device is not None:
        values["train.device"] = device
    config = load_config(config_path, task, values)
    out_dir = Path(out)
    if not resume and (out_dir / "checkpoint.pt").exists():
        raise UserError(
            f"{out_dir} already holds a run; continue it with --resume or choose another --out"
        )
    try:
        metrics = optimize_policy(
            config,
            out_dir,
            resume=resume,
            quiet=quiet,
            max_seconds=None if max_minutes is None else 60 * max_minutes,
            command=shlex.join(["learnlaw", *sys.argv[1:]]),
        )
    except KeyboardInterrupt:
        click.echo(
            f"interrupted; the last finished epoch is saved: continue with --resume --out {out_dir}",
            err=True,
        )
        raise SystemExit(130) from None
    print_summary(metrics, out_dir)


@policy.command("evaluate")
@click.argument("run_dir", type=click.Path())
def evaluate_command(run_dir):
    """Retrain from theta_0 with the saved policy and recompute the metrics."""
    import json

    from learnlaw.policy.run import evaluate_run

    metrics = evaluate_run(Path(run_dir))
    saved_path = Path(run_dir) / "metrics.json"
    try:
        saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        saved = {}  # a damaged metrics.json: show the recomputed numbers alone
    rows = []
    for key in ("acceleration_ratio", "auc_ratio"):
        rows.append((key, f"{metrics[key]:.4f}", f"{saved[key]:.4f}" if key in saved else "-"))
    for which in ("uniform", "learned"):
        old = saved.get("compression_ratio", {}).get(which)
        rows.append(
            (
                f"compression_ratio.{which}",
                f"{metrics['compression_ratio'][which]:.4f}",
                f"{old:.4f}" if old is not None else "-",
            )
        )
    click.echo(table(rows, ("metric (test set)", "recomputed", "metrics.json")))
