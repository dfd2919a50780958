"""``learnlaw law fit | predict``: fit a loss-curve law, predict curves with it."""

from __future__ import annotations

import json

import click
import numpy as np

from learnlaw.cli.common import note, percent, read_curves, table, warn
from learnlaw.curves import LossCurve, parse_model_size, write_curve_csv
from learnlaw.errors import UserError
from learnlaw.laws import LAWS, load_fit, make_law, save_fit
from learnlaw.laws.base import Law, as_run
from learnlaw.laws.metrics import curve_metrics
from learnlaw.planning import predict_schedule
from learnlaw.plots import CurvePanel, plot_predictions
from learnlaw.schedules import parse_schedule


@click.group()
def law() -> None:
    """Fit loss-curve laws to training runs and predict curves under any LR schedule."""


def _size_option(text: str | None) -> float | None:
    return None if text is None else parse_model_size(text)


@law.command("fit")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--law",
    "law_name",
    type=click.Choice(sorted(LAWS)),
    default="momentum",
    show_default=True,
    help="Which law to fit.",
)
@click.option(
    "--lambda",
    "lam",
    default="0.999",
    show_default=True,
    help="Momentum-law decay lambda in [0, 1), or 'auto' to choose it by fit quality.",
)
@click.option(
    "--warmup-steps",
    type=int,
    default=None,
    help="Steps 0..W-1 are a linear warmup (counted at the peak LR). Default: detected.",
)
@click.option(
    "--schedule",
    "schedules",
    multiple=True,
    help="LR schedule spec for files without an LR column (once, or once per file).",
)
@click.option("--loss-column", default=None, help="Column or tag holding the loss.")
@click.option("--size-scaling", is_flag=True, help="Fit the model-size extension (needs sizes).")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="FIT.json to write."
)
@click.option(
    "--plot", type=click.Path(dir_okay=False), default=None, help="Also plot the fit (PNG)."
)
def fit_command(
    files, law_name, lam, warmup_steps, schedules, loss_column, size_scaling, output, plot
):
    """Fit a law jointly to the loss curves in FILES and write it to FIT.json.

    FILES are CSV (step,lr,loss and common aliases), JSON lines, W&B history exports or
    TensorBoard event files. Append @SIZE to a file (run.csv@400M) to give its model size.
    """
    curves = read_curves(
        files, loss_column=loss_column, warmup_steps=warmup_steps, schedules=schedules
    )
    model = make_law(law_name, lam=lam, size_scaling=size_scaling)
    model.fit(curves)
    save_fit(model, output)
    info = model.fit_info_
    points = sum(c["points"] for c in info["curves"])
    click.echo(
        f"{model.name} law fitted on {len(curves)} curves ({points} points) "
        f"in {info['seconds']:.2f} s; {_hyper_text(model)}"
    )
    click.echo("  " + "  ".join(f"{k} = {v:.6g}" for k, v in model.params_.items()))
    rows = [
        (
            c["name"],
            c["points"],
            f"{c['first_step']}-{c['last_step']}",
            c["warmup_steps"],
            percent(c["pred_error"]),
            f"{c['r2']:.5f}",
        )
        for c in info["curves"]
    ]
    click.echo(table(rows, ("curve", "points", "steps", "warmup", "PredE", "R^2")))
    if plot:
        _plot(model, curves, plot, fitted=True)
        click.echo(f"wrote {plot}")
    click.echo(f"wrote {output}")


def _hyper_text(model: Law) -> str:
    return ", ".join(f"{k} {v}" for k, v in model.hyperparameters().items() if k != "delta")


def fit_warmup(model: Law) -> int | None:
    """The warmup every fitted curve shared, if they agree."""
    warmups = {c.get("warmup_steps") for c in model.fit_info_.get("curves", [])}
    return warmups.pop() if len(warmups) == 1 else None


@law.command("predict")
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
    help="Predict this schedule (spec string) instead of files.",
)
@click.option("--steps", type=int, default=None, help="With --schedule: predict steps 1..N.")
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --schedule: write step,lr,loss to this CSV.",
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
    model_size,
):
    """Predict the loss curves of FILES (and score them), or of a --schedule nobody has run."""
    model = load_fit(fit_file)
    size = _size_option(model_size)
    if schedule_spec is not None:
        if files:
            raise UserError("give either FILES or --schedule, not both")
        _predict_schedule(model, schedule_spec, steps, warmup_steps, size, csv_out, plot, as_json)
        return
    if not files:
        raise UserError("give loss-curve FILES to predict, or --schedule SPEC --steps N")
    if steps is not None or csv_out is not None:
        raise UserError("--steps and --csv go with --schedule")
    curves = read_curves(files, loss_column=loss_column, warmup_steps=warmup_steps)
    default_warmup = fit_warmup(model)
    for c in curves:
        if warmup_steps is None and c.warmup_steps == 0 and default_warmup:
            c.warmup_steps = default_warmup
            if not as_json:
                note(f"{c.name}: using the fit's warmup of {default_warmup} steps (--warmup-steps)")
        if size is not None:
            c.model_size = size
    results = []
    for path, c in zip(files, curves):
        predicted = model.predict(c)
        _range_warning(model, c)
        results.append((path, c, predicted, curve_metrics(predicted, c.losses)))
    per_file = [
        {
            "file": p,
            "pred_error": m["pred_error"],
            "worst_error": m["worst_error"],
            "r2": m["r2"],
            "points": len(c.steps),
        }
        for p, c, _, m in results
    ]
    all_rel = np.concatenate([np.abs(pred - c.losses) / c.losses for _, c, pred, _ in results])
    overall = {
        "pred_error": float(np.mean([f["pred_error"] for f in per_file])),
        "worst_error": float(all_rel.max()),
        "r2": float(np.mean([f["r2"] for f in per_file])),
        "points": len(all_rel),
        "pred_error_pooled": float(all_rel.mean()),
    }
    if plot:
        _plot(model, curves, plot, predictions=[r[2] for r in results])
    if as_json:
        click.echo(json.dumps({"files": per_file, "overall": overall}))
        return
    rows = [
        (
            f["file"],
            f["points"],
            percent(f["pred_error"]),
            percent(f["worst_error"]),
            f"{f['r2']:.5f}",
        )
        for f in per_file
    ]
    rows.append(
        (
            "overall (mean of files)",
            overall["points"],
            percent(overall["pred_error"]),
            percent(overall["worst_error"]),
            f"{overall['r2']:.5f}",
        )
    )
    click.echo(table(rows, ("file", "points", "PredE", "worst", "R^2")))
    if plot:
        click.echo(f"wrote {plot}")


def _range_warning(model: Law, target, steps=None) -> None:
    run, s = as_run(target, steps)
    message = model.fitted_range_note(run, int(s.max()))
    if message:
        warn(f"{run.name or 'schedule'}: {message}")


def _predict_schedule(model, spec, steps, warmup_steps, size, csv_out, plot, as_json):
    schedule = parse_schedule(spec)
    if warmup_steps is not None and warmup_steps != schedule.warmup:
        raise UserError(
            f"--warmup-steps {warmup_steps} disagrees with the schedule's warmup="
            f"{schedule.warmup}; set warmup in the spec"
        )
    pred = predict_schedule(model, schedule, steps, model_size=size, label=spec)
    _range_warning(model, schedule, pred.steps)
    lrs = schedule.lr(pred.steps)
    if csv_out:
        write_curve_csv(LossCurve(pred.steps, pred.losses, schedule, name=spec), csv_out)
    if plot:
        plot_predictions(
            [CurvePanel(spec, pred.steps, pred.losses, pred.lrs)],
            plot,
            title=f"{model.name} law: predicted curve",
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "schedule": spec,
                    "steps": pred.steps.tolist(),
                    "lr": lrs.tolist(),
                    "loss": pred.losses.tolist(),
                }
            )
        )
        return
    marks = np.unique(np.linspace(0, len(pred.steps) - 1, 11).round().astype(int))
    rows = [(int(pred.steps[i]), f"{lrs[i]:.4g}", f"{pred.losses[i]:.4f}") for i in marks]
    click.echo(table(rows, ("step", "lr", "predicted loss")))
    click.echo(f"predicted final loss at step {int(pred.steps[-1])}: {pred.final_loss:.4f}")
    for path in (csv_out, plot):
        if path:
            click.echo(f"wrote {path}")


def _plot(
    model: Law, curves: list[LossCurve], out: str, fitted: bool = False, predictions=None
) -> None:
    fitted_names = {c["name"] for c in model.fit_info_.get("curves", [])}
    panels = []
    for i, c in enumerate(curves):
        predicted = predictions[i] if predictions is not None else model.predict(c)
        panels.append(
            CurvePanel(
                c.name,
                c.steps,
                predicted,
                c.lrs(),
                c.losses,
                fitted=fitted or c.name in fitted_names,
            )
        )
    info = model.fit_info_.get("curves", [])
    span = (min(x["first_step"] for x in info), max(x["last_step"] for x in info)) if info else None
    plot_predictions(
        panels, out, title=f"{model.name} law: predicted (lines) vs real (dots)", fitted_range=span
    )
