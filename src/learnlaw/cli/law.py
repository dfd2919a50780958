"""``learnlaw law fit | predict | compare``: fit loss-curve laws, predict curves with them."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from learnlaw.cli.common import note, percent, read_curves, table, warn
from learnlaw.curves import LossCurve, parse_model_size
from learnlaw.errors import UserError
from learnlaw.files import check_output, json_line, write_csv
from learnlaw.laws import LAWS, Law, law_from_options, load_law
from learnlaw.laws.evaluation import best_by_family, extrapolation_warning, score_curves
from learnlaw.planning import predict_schedule
from learnlaw.plots import save_figure
from learnlaw.plots.curves import CurvePanel, plot_law_comparison, plot_predictions
from learnlaw.schedules import Schedule


@click.group()
def law() -> None:
    """Fit loss-curve laws to training runs and predict curves under any LR schedule."""


def _size_option(text: str | None, model: Law) -> float | None:
    """--model-size, which only a fit with a model-size term can use."""
    if text is None:
        return None
    if not getattr(model, "size_scaling", False):
        raise UserError(
            f"--model-size {text}: this {model.name} fit has no model-size term "
            "(fit with --size-scaling to use one)"
        )
    return parse_model_size(text)


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
    help="Steps 0..W-1 are a linear warmup (each law's convention applies). Default: detected.",
)
@click.option(
    "--schedule",
    "schedules",
    multiple=True,
    help="LR schedule spec for files without an LR column (once, or once per file).",
)
@click.option("--loss-column", default=None, help="Column or tag holding the loss.")
@click.option("--size-scaling", is_flag=True, help="Momentum law: fit the model-size extension.")
@click.option(
    "--bootstrap",
    type=int,
    default=0,
    show_default=True,
    help="Also refit on N resamplings of the points, for 'law predict --bands'.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resampling."
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="FIT.json to write."
)
@click.option(
    "--plot", type=click.Path(dir_okay=False), default=None, help="Also plot the fit (PNG)."
)
def fit_command(
    files,
    law_name,
    lam,
    warmup_steps,
    schedules,
    loss_column,
    size_scaling,
    bootstrap,
    seed,
    output,
    plot,
):
    """Fit a law jointly to the loss curves in FILES and write it to FIT.json.

    FILES are CSV (step,lr,loss and common aliases), JSON lines, W&B history exports or
    TensorBoard event files. Append @SIZE to a file (run.csv@400M) to give its model size.
    """
    model = law_from_options(
        law_name, lam=lam, size_scaling=size_scaling, bootstrap=bootstrap, seed=seed
    )
    for path in (output, plot):
        if path:
            check_output(path)  # before the fit, not after it
    curves = read_curves(
        files, loss_column=loss_column, warmup_steps=warmup_steps, schedules=schedules
    )
    model.fit(curves, progress=True)  # the bar shows only on a terminal
    model.save(output)
    info = model.fit_info_
    for message in info.get("notes", []):
        note(message)
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
    if bootstrap:
        click.echo(f"bootstrap: {bootstrap} refits on resampled points stored for --bands")
    if plot:
        _plot(model, curves, plot, fitted=True)
        click.echo(f"wrote {plot}")
    click.echo(f"wrote {output}")


def _hyper_text(model: Law) -> str:
    """The hyper-parameters that matter to a reader, with what was learned for them."""
    hyper = {
        k: v
        for k, v in model.hyperparameters().items()
        if k not in ("delta", "seed", "bootstrap", "block_growth", "adam_steps", "polish")
    }
    learned = model.learned()
    return ", ".join(
        f"{k} {learned[k]}" + (f" (chosen from {v})" if learned[k] != v else "")
        if k in learned
        else f"{k} {v}"
        for k, v in hyper.items()
    )


def fit_warmup(model: Law) -> int | None:
    """The warmup every fitted curve shared, if they agree."""
    warmups = {c.get("warmup_steps") for c in model.fit_info_.get("curves", [])}
    return warmups.pop() if len(warmups) == 1 else None


def apply_fit_warmup(
    model: Law, curves: list[LossCurve], warmup_steps: int | None, quiet: bool
) -> None:
    """Curves read without --warmup-steps and with no warmup in their LR get the fit's."""
    default = fit_warmup(model)
    for c in curves:
        if warmup_steps is None and c.warmup_steps == 0 and default:
            c.warmup_steps = default
            if not quiet:
                note(f"{c.name}: using the fit's warmup of {default} steps (--warmup-steps)")


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
    """Predict the loss curves of FILES (and score them), or of a --schedule nobody has run."""
    if plot:
        check_output(plot)
    if csv_out:
        check_output(csv_out, force=force)
    model = load_law(fit_file)
    size = _size_option(model_size, model)
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
    apply_fit_warmup(model, curves, warmup_steps, as_json)
    curves = scored_points(model, curves, quiet=as_json)
    for c in curves:
        if size is not None:
            c.model_size = size
        _range_warning(model, c)
    scores = score_curves(model, curves)
    per_file, band_list = [], []
    for path, c, score in zip(files, curves, scores.curves):
        entry = {"file": path, **{k: v for k, v in score.to_json().items() if k != "name"}}
        if bands:
            lo, hi = model.predict_bands(c, level=level)
            entry["band"] = {
                "level": level,
                "coverage": float(np.mean((c.losses >= lo) & (c.losses <= hi))),
                "final": [float(lo[-1]), float(hi[-1])],
            }
            band_list.append((lo, hi))
        per_file.append(entry)
    overall = scores.to_json()["overall"]
    if plot:
        _plot(model, curves, plot, bands=band_list or None)
    if as_json:
        click.echo(json_line({"files": per_file, "overall": overall}))
        return
    header = ["file", "points", "PredE", "worst", "R^2"] + (
        [f"{level:.0%} band covers"] if bands else []
    )
    rows = [
        [
            f["file"],
            f["points"],
            percent(f["pred_error"]),
            percent(f["worst_error"]),
            f"{f['r2']:.5f}",
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
        ]
        + ([""] if bands else [])
    )
    click.echo(table(rows, header))
    if plot:
        click.echo(f"wrote {plot}")


def scored_points(model: Law, curves: list[LossCurve], quiet: bool) -> list[LossCurve]:
    """Each curve cut to the points ``model`` speaks about (binned when long), saying what was
    left out or averaged."""
    kept = [model.points(c) for c in curves]
    if not quiet:
        for c, k in zip(curves, kept):
            for message in k.notes[len(c.notes) :]:
                note(message)
    return kept


def _range_warning(model: Law, target, steps=None) -> None:
    message = extrapolation_warning(model, target, steps)
    if message:
        warn(message)


def _predict_schedule(model, spec, steps, warmup_steps, size, csv_out, plot, as_json, level):
    schedule = Schedule.parse(spec)
    if warmup_steps is not None and warmup_steps != schedule.warmup:
        raise UserError(
            f"--warmup-steps {warmup_steps} disagrees with the schedule's warmup="
            f"{schedule.warmup}; set warmup in the spec"
        )
    pred = predict_schedule(model, schedule, steps, model_size=size, label=spec)
    if pred.every > 1 and not as_json:
        note(f"predicted every {pred.every} steps ({len(pred.steps)} points) of this long schedule")
    _range_warning(model, schedule, pred.steps)
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
            spec, pred.steps, pred.losses, pred.lrs, band=None if lo is None else (lo, hi)
        )
        save_figure(plot_predictions([panel], title=f"{model.name} law: predicted curve"), plot)
    if as_json:
        obj = {
            "schedule": spec,
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


def _plot(model: Law, curves: list[LossCurve], out: str, fitted: bool = False, bands=None) -> None:
    fitted_names = {c["name"] for c in model.fit_info_.get("curves", [])}
    panels = []
    for i, c in enumerate(scored_points(model, curves, quiet=True)):
        predicted = model.predict(c)
        panels.append(
            CurvePanel(
                c.name,
                c.steps,
                predicted,
                c.lrs(),
                c.losses,
                fitted=fitted or c.name in fitted_names,
                band=bands[i] if bands is not None else None,
            )
        )
    info = model.fit_info_.get("curves", [])
    span = (min(x["first_step"] for x in info), max(x["last_step"] for x in info)) if info else None
    figure = plot_predictions(
        panels, title=f"{model.name} law: predicted (lines) vs real (dots)", fitted_range=span
    )
    save_figure(figure, out)


@law.command("compare")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--fit-on",
    required=True,
    help="Comma-separated names (file stems) or paths of the curves to fit.",
)
@click.option("--warmup-steps", type=int, default=None, help="Steps 0..W-1 are a linear warmup.")
@click.option("--loss-column", default=None, help="Column or tag holding the loss.")
@click.option(
    "--lambda", "lam", default="0.999", show_default=True, help="The momentum law's lambda."
)
@click.option(
    "--plot", type=click.Path(dir_okay=False), default="law-compare.png", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def compare_command(files, fit_on, warmup_steps, loss_column, lam, plot, as_json):
    """Fit both laws on --fit-on curves; score each on every other curve of FILES."""
    check_output(plot)
    curves = read_curves(files, loss_column=loss_column, warmup_steps=warmup_steps)
    wanted = [x.strip() for x in fit_on.split(",") if x.strip()]
    by_key = {}
    for path, c in zip(files, curves):
        by_key[c.name] = by_key[str(path)] = by_key[Path(path).stem] = c
    missing = [w for w in wanted if w not in by_key]
    if missing:
        raise UserError(f"--fit-on {missing[0]!r}: not among FILES (give a file stem or a path)")
    fit_curves = [by_key[w] for w in wanted]
    others = [c for c in curves if all(c is not f for f in fit_curves)]
    if not others:
        raise UserError("every file is in --fit-on: give other curves to predict")
    laws = {
        "momentum": law_from_options("momentum", lam=lam),
        "multipower": law_from_options("multipower"),
    }
    others = scored_points(laws["momentum"], others, quiet=as_json)
    scores = {}
    for name, model in laws.items():
        model.fit(fit_curves)
        scores[name] = {s.name: s for s in score_curves(model, others).curves}
    mean = {n: float(np.mean([s.pred_error for s in scores[n].values()])) for n in laws}
    families = [f.to_json() for f in best_by_family(curves, laws)]
    predictions = {n: {c.name: m.predict(c) for c in others} for n, m in laws.items()}
    save_figure(plot_law_comparison(others, predictions), plot)
    if as_json:
        click.echo(
            json_line(
                {
                    "fit_on": [c.name for c in fit_curves],
                    "curves": [
                        {
                            "curve": c.name,
                            **{
                                n: {
                                    "pred_error": scores[n][c.name].pred_error,
                                    "worst_error": scores[n][c.name].worst_error,
                                    "r2": scores[n][c.name].r2,
                                }
                                for n in laws
                            },
                        }
                        for c in others
                    ],
                    "overall": {n: {"pred_error": mean[n]} for n in laws},
                    "families": families,
                    "fit_seconds": {n: m.fit_info_["seconds"] for n, m in laws.items()},
                }
            )
        )
        return
    rows = []
    for c in others:
        mm, mp = scores["momentum"][c.name], scores["multipower"][c.name]
        rows.append(
            (
                c.name,
                percent(mm.pred_error),
                percent(mp.pred_error),
                percent(mm.worst_error),
                percent(mp.worst_error),
                f"{mm.r2:.4f}",
                f"{mp.r2:.4f}",
            )
        )
    rows.append(("mean", percent(mean["momentum"]), percent(mean["multipower"]), "", "", "", ""))
    click.echo(
        f"fitted on: {', '.join(c.name for c in fit_curves)} "
        f"(momentum {laws['momentum'].fit_info_['seconds']:.1f} s, multipower "
        f"{laws['multipower'].fit_info_['seconds']:.1f} s)"
    )
    click.echo(
        table(
            rows,
            ("curve", "PredE MTL", "PredE MPL", "worst MTL", "worst MPL", "R^2 MTL", "R^2 MPL"),
        )
    )
    better = min(mean, key=mean.get)
    click.echo(
        f"more accurate here: the {better} law ({percent(mean[better])} vs "
        f"{percent(max(mean.values()))} mean PredE)"
    )
    for f in families:
        click.echo(
            f"runs ending at step {f['last_step']}: real best {f['real_best']}; predicted best "
            f"momentum {f['predicted_best']['momentum']}, multipower {f['predicted_best']['multipower']}"
        )
    click.echo(f"wrote {plot}")
