"""``learnlaw law predict``: a fitted law's curves for logged runs (scored) or for a schedule."""

from __future__ import annotations

import click
import numpy as np

from learnlaw.cli.common import note, percent, read_curves, table
from learnlaw.cli.law_common import plot_fit, point_notes, range_warning, size_option
from learnlaw.errors import UserError
from learnlaw.files import check_output, json_line, write_csv
from learnlaw.laws import load_law
from learnlaw.laws.evaluation import FINAL_POINTS, score_curves
from learnlaw.planning import fit_warmup, predict_schedule, with_fit_warmup
from learnlaw.plots import save_figure
from learnlaw.plots.curves import CurvePanel, plot_predictions
from learnlaw.schedules import Schedule


@click.command("predict")
@click.argument("fit_file", metavar="FIT.json", type=click.Path(dir_okay=False))
@click.argument("files", nargs=-1)
@click.option(
    "--warmup-steps",
    type=int,
    default=None,
    help="Steps 0..W-1 are a linear warmup. Default: detected, else the fit's.",
)
@click.option("--loss-column", default=None, help="Column or tag holding the loss.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--plot", type=click.Path(dir_okay=False), default=None, help="Plot predicted vs real (PNG)."
)
@click.option(
    "--schedule",
    "schedule_spec",
    default=None,
    help="Predict this schedule (spec string, or csv:path=RUN) instead of files.",
)
@click.option("--steps", type=int, default=None, help="With --schedule: predict up to step N.")
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --schedule: write step,lr,loss to this CSV.",
)
@click.option(
    "--bands", is_flag=True, help="Add the bootstrap band (needs a fit made with --bootstrap)."
)
@click.option(
    "--force", is_flag=True, help="Replace an existing --csv file learnlaw did not write."
)
@click.option(
    "--level", type=float, default=None, help="Coverage of the --bands band.  [default: 0.9]"
)
@click.option(
    "--model-size", default=None, help="Model size for fits with size scaling (400M, 1.7B)."
)
def predict_command(
    fit_file,
    files,
    warmup_steps,
    loss_column,
    as_json,
    plot,
    schedule_spec,
    steps,
    csv_out,
    bands,
    force,
    level,
    model_size,
):
    """Predict the loss curves of FILES (and score them), or of a --schedule nobody has run.

    FILES are scored on the points the fit used: its --fit-from, smoothing and binning."""
    if plot:
        check_output(plot)
    if csv_out:
        check_output(csv_out, force=force)
    model = load_law(fit_file)
    size = size_option(model_size, model)
    if level is not None and not bands:
        raise UserError("--level goes with --bands")
    level = 0.9 if level is None else level
    if not 0 < level < 1:
        raise UserError(f"--level {level}: must be in (0, 1)")
    if schedule_spec is not None:
        if files:
            raise UserError("give either FILES or --schedule, not both")
        _predict_schedule(
            model,
            schedule_spec,
            steps,
            warmup_steps,
            size,
            csv_out,
            plot,
            as_json,
            level if bands else None,
        )
        return
    if not files:
        raise UserError("give loss-curve FILES to predict, or --schedule SPEC --steps N")
    if steps is not None or csv_out is not None:
        raise UserError("--steps and --csv go with --schedule")
    curves = read_curves(files, loss_column=loss_column, warmup_steps=warmup_steps)
    default = fit_warmup(model)
    for c in curves:
        if warmup_steps is None and c.warmup_steps == 0 and default:
            c.warmup_steps = default
            if not as_json:
                note(f"{c.name}: using the fit's warmup of {default} steps (--warmup-steps)")
        if size is not None:
            c.model_size = size
    if not as_json:
        point_notes(model, curves)
    for c in curves:
        range_warning(model, c)
    scores = score_curves(model, curves)
    per_file, band_list = [], []
    for path, c, score in zip(files, curves, scores.curves):
        entry = {"file": path, **{k: v for k, v in score.to_json().items() if k != "name"}}
        if bands:
            kept = model.points(c)
            lo, hi = model.predict_bands(kept, level=level)
            entry["band"] = {
                "level": level,
                "coverage": float(np.mean((kept.losses >= lo) & (kept.losses <= hi))),
                "final": [float(lo[-1]), float(hi[-1])],
            }
            band_list.append((lo, hi))
        per_file.append(entry)
    overall = scores.to_json()["overall"]
    if plot:
        plot_fit(model, curves, plot, bands=band_list or None)
    if as_json:
        click.echo(json_line({"files": per_file, "overall": overall}))
        return
    header = ["file", "points", "PredE", "worst", "R^2", "noise", "final real", "predicted"] + (
        [f"{level:.0%} band covers"] if bands else []
    )
    rows = [
        [
            f["file"],
            f["points"],
            percent(f["pred_error"]),
            percent(f["worst_error"]),
            f"{f['r2']:.5f}",
            percent(f["noise_floor"]),
            f"{f['final_real']:.4f}",
            f"{f['final_predicted']:.4f}",
        ]
        + ([f"{f['band']['coverage']:.0%} of points"] if bands else [])
        for f in per_file
    ]
    rows.append(
        [
            "overall (mean of files)",
            overall["points"],
            percent(overall["pred_error"]),
            percent(overall["worst_error"]),
            f"{overall['r2']:.5f}",
            "",
            "",
            "",
        ]
        + ([""] if bands else [])
    )
    click.echo(table(rows, header))
    click.echo(
        "final real: a quadratic fit over the last "
        f"{FINAL_POINTS} scored points (from the step in --json's final_from), at the last "
        "step; predicted: the law there; noise: PredE of a smoothed copy against the curve"
    )
    if plot:
        click.echo(f"wrote {plot}")


def _predict_schedule(model, spec, steps, warmup_steps, size, csv_out, plot, as_json, level):
    schedule, message = with_fit_warmup(model, Schedule.parse(spec), warmup_steps)
    if message and not as_json:
        note(message)
    pred = predict_schedule(model, schedule, steps, model_size=size, label=spec)
    if pred.every > 1 and not as_json:
        note(f"predicted every {pred.every} steps ({len(pred.steps)} points) of this long schedule")
    range_warning(model, schedule, pred.steps)
    lrs = schedule.lr(pred.steps)
    lo = hi = None
    if level is not None:
        lo, hi = model.predict_bands(schedule, pred.steps, level=level, model_size=size)
    if csv_out:
        band = (("loss_low", lo), ("loss_high", hi)) if lo is not None else ()
        columns = (("step", pred.steps.tolist()), ("lr", lrs), ("loss", pred.losses), *band)
        write_csv(csv_out, [name for name, _ in columns], [values for _, values in columns])
    if plot:
        panel = CurvePanel(
            spec,
            pred.steps,
            pred.losses,
            pred.lrs,
            band=None if lo is None else (lo, hi),
            lr_steps=pred.lr_steps,
        )
        save_figure(plot_predictions([panel], title=f"{model.name} law: predicted curve"), plot)
    if as_json:
        obj = {
            "schedule": spec,
            "warmup": schedule.warmup,
            "steps": pred.steps.tolist(),
            "lr": lrs.tolist(),
            "loss": pred.losses.tolist(),
        }
        if lo is not None:
            obj["band"] = {"level": level, "low": lo.tolist(), "high": hi.tolist()}
        click.echo(json_line(obj))
        return
    marks = np.unique(np.linspace(0, len(pred.steps) - 1, 11).round().astype(int))
    header = ["step", "lr", "predicted loss"] + ([f"{level:.0%} band"] if lo is not None else [])
    rows = [
        [int(pred.steps[i]), f"{lrs[i]:.4g}", f"{pred.losses[i]:.4f}"]
        + ([f"{lo[i]:.4f} - {hi[i]:.4f}"] if lo is not None else [])
        for i in marks
    ]
    click.echo(table(rows, header))
    band = f" ({level:.0%} band {lo[-1]:.4f} - {hi[-1]:.4f})" if lo is not None else ""
    click.echo(f"predicted final loss at step {int(pred.steps[-1])}: {pred.final_loss:.4f}{band}")
    for path in (csv_out, plot):
        if path:
            click.echo(f"wrote {path}")
