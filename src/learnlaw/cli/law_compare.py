"""``learnlaw law compare``: fit every law on some runs, score each on the others."""

from __future__ import annotations

from pathlib import Path

import click

from learnlaw.cli.common import percent, read_curves, table
from learnlaw.cli.law_common import data_options, point_notes
from learnlaw.errors import UserError
from learnlaw.files import check_output, json_line
from learnlaw.laws import LAWS, law_from_options
from learnlaw.laws.evaluation import FINAL_POINTS, compare_laws
from learnlaw.plots import save_figure
from learnlaw.plots.curves import plot_law_comparison

SHORT = {"momentum": "MTL", "multipower": "MPL", "forward-momentum": "FM"}


@click.command("compare")
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
    "--laws",
    "law_names",
    default=",".join(LAWS),
    show_default=True,
    help="Comma-separated laws to compare.",
)
@data_options
@click.option(
    "--plot", type=click.Path(dir_okay=False), default="law-compare.png", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def compare_command(files, fit_on, warmup_steps, loss_column, lam, law_names, data, plot, as_json):
    """Fit the laws on --fit-on curves; score each on every other curve of FILES."""
    names = [x.strip() for x in law_names.split(",") if x.strip()]
    for name in names:
        if name not in LAWS:
            raise UserError(f"--laws {name!r}: expected names among {', '.join(LAWS)}")
    if len(set(names)) < 2:
        raise UserError(f"--laws {law_names!r}: give at least two different laws")
    laws = {n: law_from_options(n, lam=lam, **data) for n in names}
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
    first = laws[names[0]]
    if not as_json:
        point_notes(first, curves)
    result = compare_laws(laws, fit_curves, others)
    scores = {n: {s.name: s for s in result.scores[n].curves} for n in names}
    mean = result.mean
    kept = [first.points(c) for c in others]
    predictions = {n: {k.name: laws[n].predict(k) for k in kept} for n in names}
    save_figure(plot_law_comparison(kept, predictions), plot)
    ranked = result.ranked
    if as_json:
        click.echo(
            json_line(
                {
                    "fit_on": result.fit_on,
                    "curves": [
                        {
                            "curve": c.name,
                            "noise_floor": scores[names[0]][c.name].noise_floor,
                            **{n: scores[n][c.name].to_json() for n in names},
                        }
                        for c in others
                    ],
                    "overall": {n: {"pred_error": mean[n]} for n in names},
                    "noise_sd": {f"{a} vs {b}": v for (a, b), v in result.noise.items()},
                    "within_noise": result.within_noise(ranked[0], ranked[1]),
                    "families": [f.to_json() for f in result.families],
                    "fit_seconds": result.seconds,
                }
            )
        )
        return
    click.echo(
        f"fitted on: {', '.join(result.fit_on)} ("
        + ", ".join(f"{n} {result.seconds[n]:.1f} s" for n in names)
        + ")"
    )
    rows = []
    for c in others:
        s = [scores[n][c.name] for n in names]
        rows.append(
            (
                c.name,
                *(percent(x.pred_error) for x in s),
                *(percent(x.worst_error) for x in s),
                percent(s[0].noise_floor),
            )
        )
    rows.append(("mean", *(percent(mean[n]) for n in names), *([""] * len(names)), ""))
    short = [SHORT.get(n, n) for n in names]
    header = ("curve", *(f"PredE {s}" for s in short), *(f"worst {s}" for s in short), "noise")
    click.echo(table(rows, header))
    best, second = ranked[0], ranked[1]
    line = (
        f"more accurate here: the {best} law ({percent(mean[best])} vs "
        f"{percent(mean[second])} for {second}, mean PredE)"
    )
    if result.within_noise(best, second):
        line += "; the difference is within what the curves' noise alone makes: a tie"
    click.echo(line)
    for f in result.families:
        click.echo(
            f"runs ending at step {f.last_step} (real final loss: a quadratic fit over the last "
            f"{FINAL_POINTS} scored points, at the last step):"
        )
        fam_rows = [
            (
                m
                + (" (fitted)" if m in result.fit_on else "")
                + (" *" if m == f.real_best else ""),
                f"{f.real_final[m]:.4f}",
                *(
                    f"{f.predicted_final[n][m]:.4f}" + (" *" if f.predicted_best[n] == m else "")
                    for n in names
                ),
            )
            for m in f.members
        ]
        click.echo(table(fam_rows, ("run", "real", *names)))
    click.echo("* the lowest final loss, real and as each law predicts it")
    click.echo(f"wrote {plot}")
