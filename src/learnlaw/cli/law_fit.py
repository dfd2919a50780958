"""``learnlaw law fit``: fit a law (or choose one by cross-validation) and write FIT.json."""

from __future__ import annotations

import click

from learnlaw.cli.common import note, percent, read_curves, table
from learnlaw.cli.law_common import data_options, plot_fit
from learnlaw.files import check_output
from learnlaw.laws import LAWS, Law, law_from_options
from learnlaw.laws.selection import default_candidates, select_law


@click.command("fit")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--law",
    "law_name",
    type=click.Choice([*sorted(LAWS), "auto"]),
    default="momentum",
    show_default=True,
    help="Which law to fit; 'auto': choose by leave-one-curve-out cross-validation.",
)
@click.option(
    "--lambda",
    "lam",
    default="0.999",
    show_default=True,
    help="Momentum-law decay lambda in [0, 1), 'auto' (best of a grid) or 'fit' (a parameter).",
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
@click.option(
    "--size-scaling",
    is_flag=True,
    help="Momentum and forward-momentum laws: fit the model-size term (sizes: FILE@400M).",
)
@click.option(
    "--bootstrap",
    type=int,
    default=0,
    show_default=True,
    help="Also refit on N resamplings of the points, for bands and schedule separation.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap resampling."
)
@data_options
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
    data,
    output,
    plot,
):
    """Fit a law jointly to the loss curves in FILES and write it to FIT.json.

    FILES are CSV (step,lr,loss and common aliases), JSON lines, W&B history exports or
    TensorBoard event files. Append @SIZE to a file (run.csv@400M) to give its model size
    (or log a model_size column).
    """
    options = {"lam": lam, "size_scaling": size_scaling, "bootstrap": bootstrap, "seed": seed}
    # validates every option (the name is checked separately for auto)
    model = law_from_options("momentum" if law_name == "auto" else law_name, **options, **data)
    for path in (output, plot):
        if path:
            check_output(path)  # before the fit, not after it
    curves = read_curves(
        files, loss_column=loss_column, warmup_steps=warmup_steps, schedules=schedules
    )
    selection = None
    if law_name == "auto":
        common = {k: v for k, v in model.common_hyperparameters().items()}
        candidates = default_candidates(curves, model.lam, size_scaling)
        selection = select_law(curves, candidates, progress=True, **common)
        model = selection.law
        model.fit_info_["selection"] = selection.to_json()
    else:
        model.fit(curves, progress=True)  # the bar shows only on a terminal
    model.save(output)
    info = model.fit_info_
    for message in [*(selection.notes if selection else []), *info.get("notes", [])]:
        note(message)
    if selection is not None:
        _print_selection(selection)
    points = sum(c["points"] for c in info["curves"])
    click.echo(
        f"{model.name} law fitted on {len(curves)} curve{'s' * (len(curves) != 1)} "
        f"({points} points) "
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
            percent(c["noise_floor"]),
            f"{c['r2']:.5f}",
        )
        for c in info["curves"]
    ]
    click.echo(table(rows, ("curve", "points", "steps", "warmup", "PredE", "noise", "R^2")))
    click.echo("noise: PredE of a smoothed copy of the curve against itself (no law can beat it)")
    if bootstrap:
        click.echo(f"bootstrap: {bootstrap} refits on resampled points stored for --bands")
    if plot:
        plot_fit(model, curves, plot, fitted=True)
        click.echo(f"wrote {plot}")
    click.echo(f"wrote {output}")


def _print_selection(selection) -> None:
    """The cross-validation behind --law auto: one row per fold, one column per law."""
    names = list(selection.scores)
    rows = [
        (
            f"{held}" + (f" (from step {cut})" if kind == "tail" else ""),
            *tuple(percent(selection.per_fold[n][i]) for n in names),
        )
        for i, (held, kind, cut) in enumerate(selection.folds)
    ]
    rows.append(("mean", *tuple(percent(selection.scores[n]) for n in names)))
    if rows[:-1]:
        click.echo("cross-validation: PredE on each held-out curve's points after its decay starts")
        click.echo(table(rows, ("held out", *names)))
    click.echo(selection.reason)


def _hyper_text(model: Law) -> str:
    """The hyper-parameters that matter to a reader, with what was learned for them."""
    skip = ("seed", "bootstrap", "block_growth", "adam_steps", "polish", "max_points")
    hyper = {k: v for k, v in model.hyperparameters().items() if k not in skip and v is not None}
    learned = {**model.learned(), "delta": model.delta_used()}
    return ", ".join(
        f"{k} {learned[k]:.4g}" + (f" (chosen from {v})" if learned[k] != v else "")
        if k in learned
        else f"{k} {v}"
        for k, v in hyper.items()
    )
