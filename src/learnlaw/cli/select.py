"""``learnlaw select``: score every sequence of a corpus with a scorer fitted to a proxy's learned
data policy, and keep the best part."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from learnlaw.cli.common import table


@click.command("select")
@click.option(
    "--config",
    "config_path",
    default=None,
    help="TOML config file, or a built-in name (select-mixture). Default: the built-in defaults.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Output folder (new or empty)."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config value, e.g. --set select.fraction=0.5 (repeatable).",
)
@click.option("--resume", is_flag=True, help="Continue the selection in --out where it stopped.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (overrides the config).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def select_command(config_path, out, overrides, resume, device, quiet):
    """Select training data: proxy policy -> data scorer -> scores -> the kept sequences.

    Writes selected.jsonl, scores.npy, histogram.png, report.md and metrics.json into --out.
    Under torchrun the corpus is scored data-parallel (rank 0 writes the outputs)."""
    from learnlaw.configfile import parse_override
    from learnlaw.selection import load_select_config, select

    values = dict(parse_override(o) for o in overrides)
    if device is not None:
        values["device"] = device
    config = load_select_config(config_path, values)
    try:
        result = select(
            config,
            Path(out),
            resume=resume,
            quiet=quiet,
            command=shlex.join(["learnlaw", *sys.argv[1:]]),
        )
    except KeyboardInterrupt:
        click.echo(f"interrupted; continue with --resume --out {out}", err=True)
        raise SystemExit(130) from None
    if result is None:  # a rank other than 0
        return
    m = result.metrics
    rows = [
        (
            name,
            row["sequences"],
            row["kept"],
            "-" if row["kept_share"] is None else f"{100 * row['kept_share']:.1f}%",
            f"{100 * row['share_of_selection']:.1f}%",
        )
        for name, row in m["per_source"].items()
    ]
    click.echo(table(rows, ("source", "sequences", "kept", "kept share", "of selection")))
    rho = m["scorer"]["heldout_spearman"]
    click.echo(
        f"kept {m['selected']} of {m['sequences']} sequences ({m['method']}, fraction "
        f"{m['fraction']:g}); data scorer held-out rank correlation "
        f"{'-' if rho is None else f'{rho:.3f}'}"
    )
    click.echo(
        f"outputs in {out}/: selected.jsonl, scores.npy, sources.npy, histogram.png, report.md, "
        "metrics.json"
    )
