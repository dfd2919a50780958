"""``learnlaw policy optimize | evaluate``: learn a data policy, re-check a saved one."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from learnlaw.cli.common import table
from learnlaw.configfile import parse_override
from learnlaw.distributed import reports_errors
from learnlaw.errors import UserError
from learnlaw.policy.config import load_config


@click.group()
def policy() -> None:
    """Learn a data policy (a weight for every training example at every step)."""


def print_summary(metrics: dict, out: Path) -> None:
    from learnlaw.policy.runfolder import PLOTS, POLICY_FILES

    cr = metrics["compression_ratio"]
    click.echo(f"acceleration ratio (test): {metrics['acceleration_ratio']:.2f}x")
    click.echo(f"AUC ratio (test):          {metrics['auc_ratio']:.3f}")
    click.echo(
        f"compression ratio (test, log{cr['log_base']:g}|V| / nats): "
        f"uniform {cr['uniform']:.3f} -> learned {cr['learned']:.3f}"
    )
    if "kept_epoch" in metrics:
        click.echo(
            f"kept outer epoch: {metrics['kept_epoch']} of {metrics['epochs_run'] - 1}, "
            f"{metrics['seconds_per_epoch']:.2f} s per epoch"
        )
    files = ["metrics.json", "curves.csv", *POLICY_FILES.values(), *PLOTS]
    click.echo(f"outputs in {out}/: {', '.join(files)}")


@policy.command("optimize")
@click.option(
    "--task",
    default=None,
    help="Task to run: perceptron, lm, or package.module:Class (an importable learnlaw Task). "
    "Default: the config's.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    help="TOML config file, or a built-in name (perceptron-paper, perceptron-demo, perceptron-reference, perceptron-learning-law, perceptron-noisy, lm-cpu, lm-gpu, lm-paper).",
)
@click.option("--epochs", type=int, default=None, help="Outer epochs (overrides the config).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/policy",
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its last checkpoint (with no --config or --set: its own configuration; with more --epochs: extend a run whose outer step does not decay).",
)
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
@click.option(
    "--timeout",
    "timeout_minutes",
    type=float,
    default=10.0,
    show_default=True,
    help="Under torchrun: minutes a process waits for the others before it gives up.",
)
def optimize_command(
    task, config_path, epochs, out, resume, overrides, device, max_minutes, quiet, timeout_minutes
):
    """Optimise a data policy by exact hypergradients and write the run into --out.

    Data parallel: torchrun --standalone --nproc-per-node P -m learnlaw policy optimize ...
    """
    from learnlaw.distributed import joined
    from learnlaw.policy import optimize

    values = dict(parse_override(o) for o in overrides)
    if epochs is not None:
        values["outer.epochs"] = epochs
    if device is not None:
        values["train.device"] = device
    if max_minutes is not None and not max_minutes > 0:
        raise UserError(f"--max-minutes {max_minutes:g}: must be positive")
    if not timeout_minutes > 0:
        raise UserError(f"--timeout {timeout_minutes:g}: must be positive")
    out_dir = Path(out)
    if resume and config_path is None and task is None:
        from learnlaw.configfile import apply_overrides
        from learnlaw.policy.config import config_from_raw
        from learnlaw.policy.runfolder import saved_config

        # the run that is there, with any --set on top (the checkpoint then says what differs)
        raw = apply_overrides(saved_config(out_dir).to_json(), values)
        config = config_from_raw(raw, f"{out_dir / 'config.json'} with --set")
    else:
        config = load_config(config_path, task, values)
    try:
        with joined(config.train.device, timeout_minutes) as comm:
            result = optimize(
                config=config,
                out=out_dir,
                resume=resume,
                quiet=quiet,
                max_seconds=None if max_minutes is None else 60 * max_minutes,
                command=shlex.join(["learnlaw", *sys.argv[1:]]),
            )
    except KeyboardInterrupt:
        if reports_errors():
            k, processes = config.outer.save_every, int(os.environ.get("WORLD_SIZE", "1"))
            # one process saves its finished epochs on the way out; several keep the last save
            saved = (
                "the last finished epoch is saved"
                if k == 1 or processes == 1
                else f"the last checkpoint (every {k} epochs) is kept"
            )
            click.echo(f"interrupted; {saved}: continue with --resume --out {out_dir}", err=True)
        raise SystemExit(130) from None
    if comm.rank != 0:
        return  # rank 0 prints the summary
    if result.stopped_early:
        click.echo(
            f"stopped after outer epoch {result.history[-1]['epoch']} of {config.outer.epochs} "
            f"(--max-minutes); the numbers below are for the run so far: continue with "
            f"--resume --out {out_dir}"
        )
    print_summary(result.metrics, out_dir)


@policy.command("evaluate")
@click.argument("run_dir", type=click.Path())
def evaluate_command(run_dir):
    """Retrain from theta_0 with the saved policy and recompute the metrics."""
    from learnlaw.policy import evaluate
    from learnlaw.policy.runfolder import read_metrics

    metrics = evaluate(Path(run_dir))
    saved = read_metrics(Path(run_dir))  # missing or damaged: the recomputed numbers alone

    def old(value) -> str:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return f"{value:.4f}" if number else "-"

    saved_cr = saved.get("compression_ratio")
    saved_cr = saved_cr if isinstance(saved_cr, dict) else {}
    rows = [
        (key, f"{metrics[key]:.4f}", old(saved.get(key)))
        for key in ("acceleration_ratio", "auc_ratio")
    ]
    for which in ("uniform", "learned"):
        rows.append(
            (
                f"compression_ratio.{which}",
                f"{metrics['compression_ratio'][which]:.4f}",
                old(saved_cr.get(which)),
            )
        )
    click.echo(table(rows, ("metric (test set)", "recomputed", "metrics.json")))
