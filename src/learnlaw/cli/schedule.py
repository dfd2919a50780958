"""``learnlaw schedule compare | sweep``: choose a schedule through a fitted law."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from learnlaw.cli.common import note, table, warn
from learnlaw.cli.law_common import size_option as _size_option
from learnlaw.errors import UserError
from learnlaw.files import check_output, json_line, write_csv
from learnlaw.laws import load_law
from learnlaw.laws.evaluation import extrapolation_warning
from learnlaw.planning import (
    check_fractions,
    compare_schedules,
    optimize_schedule,
    predict_schedule,
    sweep_wsd,
    with_fit_warmup,
)
from learnlaw.plots import save_figure
from learnlaw.plots.curves import CurvePanel, plot_predictions, plot_sweep
from learnlaw.schedules import DECAY_SHAPES, Schedule, wsd_decay_start


@click.group()
def schedule() -> None:
    """Compare learning-rate schedules by the loss a fitted law predicts for them."""


@schedule.command("compare")
@click.argument("fit_file", metavar="FIT.json", type=click.Path(dir_okay=False))
@click.argument("specs", nargs=-1, required=True)
@click.option("--steps", type=int, default=None, help="Predict every schedule to this step.")
@click.option("--model-size", default=None, help="Model size for fits with size scaling.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default="schedule-compare.png",
    show_default=True,
    help="Where to write the plot.",
)
@click.option("--no-plot", is_flag=True, help="Do not write a plot.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def compare_command(fit_file, specs, steps, model_size, plot, no_plot, as_json):
    """Predicted final loss of every schedule SPEC (best first), as a table and a plot."""
    if not no_plot:
        check_output(plot)
    model = load_law(fit_file)
    schedules = []
    for spec in specs:
        schedule, message = with_fit_warmup(model, Schedule.parse(spec))
        if message and not as_json:
            note(message)
        schedules.append(schedule)
    comparison = compare_schedules(
        model, schedules, steps, labels=list(specs), model_size=_size_option(model_size, model)
    )
    preds = comparison.predictions
    for p in preds:
        message = extrapolation_warning(model, p.schedule, p.steps[-1:])
        if message:
            warn(f"{p.label}: {message}")
    best = comparison.best.final_loss
    ranked = comparison.ranked
    if not no_plot:
        panels = [CurvePanel(p.label, p.steps, p.losses, p.lrs, lr_steps=p.lr_steps) for p in preds]
        title = f"{model.name} law: predicted curves of {len(preds)} schedules"
        save_figure(plot_predictions(panels, title=title), plot)
    tied = dict(zip((p.label for p in preds), _tied(comparison.separation, len(preds))))
    if as_json:
        click.echo(
            json_line(
                {
                    "schedules": [
                        {
                            "schedule": p.label,
                            "steps": int(p.steps[-1]),
                            "final_lr": p.final_lr,
                            "final_loss": p.final_loss,
                            "tied_with_best": bool(tied[p.label]),
                        }
                        for p in ranked
                    ],
                    "separation_level": (
                        comparison.separation.level if comparison.separation else None
                    ),
                }
            )
        )
        return
    rows = [
        (
            p.label,
            int(p.steps[-1]),
            f"{p.final_lr:.3g}",
            f"{p.final_loss:.4f}",
            f"+{p.final_loss - best:.4f}" + (" ~" if tied[p.label] and i else ""),
        )
        for i, p in enumerate(ranked)
    ]
    click.echo(table(rows, ("schedule", "steps", "final lr", "final loss", "vs best")))
    _separation_line(comparison.separation, [p.label for p in preds])
    if not no_plot:
        click.echo(f"wrote {plot}")


def _tied(separation, n: int) -> list[bool]:
    """Which of n schedules the fit cannot separate from the best (none without bootstrap)."""
    return [False] * n if separation is None else [bool(t) for t in separation.tied]


def _separation_line(separation, labels: list[str]) -> None:
    """Say which schedules are as good as the best within the fit's bootstrap band."""
    if separation is None:
        click.echo(
            "(fit with --bootstrap N to see which schedules the fit cannot tell from the best)"
        )
        return
    tied = [x for x, t in zip(labels, separation.tied) if t]
    click.echo(
        f"~: within the fit's {separation.level:.0%} bootstrap band of the best (paired over "
        f"refits), so not separable from it: {', '.join(tied)}"
    )


def _fractions(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    try:
        values = [float(x) for x in text.split("/") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise UserError(f"--fractions {text!r}: expected numbers separated by /, e.g. 0.1/0.2/0.3")
    return check_fractions(values, f"--fractions {text!r}")


@schedule.command("sweep")
@click.argument("fit_file", metavar="FIT.json", type=click.Path(dir_okay=False))
@click.option("--total", type=int, required=True, help="Total training steps.")
@click.option("--peak", type=float, required=True, help="Peak learning rate.")
@click.option(
    "--final", type=float, default=0.0, show_default=True, help="LR at the end of the decay."
)
@click.option("--shape", type=click.Choice(DECAY_SHAPES), default="linear", show_default=True)
@click.option("--warmup", type=int, default=None, help="Warmup steps (default: the fit's).")
@click.option(
    "--fractions", default=None, help="Decay fractions to try, e.g. 0.1/0.2/0.3 (default 0.05..1)."
)
@click.option("--model-size", default=None, help="Model size for fits with size scaling.")
@click.option(
    "--plot", type=click.Path(dir_okay=False), default="schedule-sweep.png", show_default=True
)
@click.option("--no-plot", is_flag=True, help="Do not write a plot.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def sweep_command(
    fit_file, total, peak, final, shape, warmup, fractions, model_size, plot, no_plot, as_json
):
    """Predicted final loss of WSD schedules against the fraction of steps spent decaying."""
    if not no_plot:
        check_output(plot)
    model = load_law(fit_file)
    sweep = sweep_wsd(
        model,
        total,
        peak,
        final=final,
        shape=shape,
        warmup=warmup,
        fractions=_fractions(fractions),
        model_size=_size_option(model_size, model),
    )
    best, warmup = sweep.best, sweep.warmup
    message = extrapolation_warning(model, best.schedule, np.array([total]))
    if message:
        warn(message)
    if not no_plot:
        title = (
            f"{model.name} law: WSD ({shape} decay to {final:g}), "
            f"{total} steps, peak {peak:g}, warmup {warmup}"
        )
        save_figure(plot_sweep(sweep.fractions, sweep.final_losses, title), plot)
    pairs = list(zip(sweep.fractions.tolist(), sweep.final_losses.tolist()))
    if as_json:
        click.echo(
            json_line(
                {
                    "warmup": warmup,
                    "sweep": [
                        {"decay_frac": f, "final_loss": v, "tied_with_best": bool(t)}
                        for (f, v), t in zip(pairs, _tied(sweep.separation, len(pairs)))
                    ],
                    "separation_level": sweep.separation.level if sweep.separation else None,
                    "best": {
                        "decay_frac": best.fraction,
                        "final_loss": best.final_loss,
                        "schedule": best.schedule.spec(),
                    },
                }
            )
        )
        return
    tied = _tied(sweep.separation, len(pairs))
    table_rows = [
        (
            f"{100 * f:.0f}%",
            wsd_decay_start({"total": total, "decay_frac": f}),
            f"{v:.4f}",
            "<- best" if f == best.fraction else ("~ best" if tied[i] else ""),
        )
        for i, (f, v) in enumerate(pairs)
    ]
    click.echo(table(table_rows, ("decay", "decay starts", "final loss", "best")))
    click.echo(
        f"predicted best decay fraction: {100 * best.fraction:.0f}% (final loss "
        f"{best.final_loss:.4f}); schedule: {best.schedule.spec()}"
    )
    _separation_line(sweep.separation, [f"{100 * f:.0f}%" for f, _ in pairs])
    if not no_plot:
        click.echo(f"wrote {plot}")


@schedule.command("optimize")
@click.argument("fit_file", metavar="FIT.json", type=click.Path(dir_okay=False))
@click.option("--total", type=int, required=True, help="Total training steps.")
@click.option("--peak", type=float, required=True, help="Peak learning rate.")
@click.option("--warmup", type=int, default=None, help="Warmup steps (default: the fit's).")
@click.option(
    "--min-lr", type=float, default=0.0, show_default=True, help="Lowest learning rate allowed."
)
@click.option("--iterations", type=int, default=3000, show_default=True, help="Adam iterations.")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="SCHEDULE.csv (step,lr)."
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Plot path (default: next to the CSV, .png).",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing output CSV learnlaw did not write."
)
def optimize_command(fit_file, total, peak, warmup, min_lr, iterations, output, plot, force):
    """The schedule that minimises the law's predicted final loss (Multi-Power Law fits)."""
    plot = plot or str(Path(output).with_suffix(".png"))
    check_output(output, force=force)
    check_output(plot)
    model = load_law(fit_file)
    # no --model-size: only the momentum law scales with size, and it cannot design schedules
    result = optimize_schedule(
        model, total, peak, warmup=warmup, min_lr=min_lr, iterations=iterations
    )
    warmup = result.warmup  # the fit's unless --warmup
    write_csv(output, ("step", "lr"), (range(len(result.lrs)), result.lrs))
    message = extrapolation_warning(model, result.schedule, np.array([total]))
    if message:
        warn(message)
    best = sweep_wsd(model, total, peak, final=min_lr, warmup=warmup).best
    best_frac, best_wsd = best.fraction, best.final_loss
    schedules = (
        ("optimized", result.schedule),
        ("cosine", Schedule.cosine(peak, total, final=min_lr, warmup=warmup)),
        (f"best WSD ({100 * best_frac:.0f}% linear decay)", best.schedule),
    )
    panels = []
    for label, sched in schedules:
        pred = predict_schedule(model, sched, total)
        panels.append(CurvePanel(label, pred.steps, pred.losses, pred.lrs, lr_steps=pred.lr_steps))
    title = f"{model.name} law: optimized schedule vs cosine and the best WSD"
    save_figure(plot_predictions(panels, title=title), plot)
    cos_loss = panels[1].predicted[-1]
    rows = [
        ("optimized", f"{result.final_loss:.4f}", ""),
        ("cosine", f"{cos_loss:.4f}", f"{cos_loss - result.final_loss:+.4f}"),
        (
            f"best WSD, linear decay over {100 * best_frac:.0f}%",
            f"{best_wsd:.4f}",
            f"{best_wsd - result.final_loss:+.4f}",
        ),
    ]
    click.echo(table(rows, ("schedule", "predicted final loss", "vs optimized")))
    click.echo(
        f"optimized schedule: decay starts at step {result.decay_start} "
        f"(last {total - result.decay_start} steps, {100 * (total - result.decay_start) / total:.0f}%), "
        f"shape about (1 - tau)^{result.decay_power:.2f}"
    )
    click.echo(f"wrote {output} and {plot}")
