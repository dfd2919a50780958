"""What the ``learnlaw law`` commands share: the options about the data a law fits and scores
(--fit-from, --smooth, --max-points, --delta), model sizes, notes and plots."""

from __future__ import annotations

import functools

import click

from learnlaw.cli.common import note, warn
from learnlaw.curves import LossCurve, parse_model_size
from learnlaw.errors import UserError
from learnlaw.laws import Law
from learnlaw.laws.evaluation import extrapolation_warning
from learnlaw.plots import save_figure
from learnlaw.plots.curves import CurvePanel, plot_predictions


def data_options(command):
    """--fit-from, --smooth, --max-points and --delta (passed on as ``data``: a dict)."""

    @click.option(
        "--fit-from",
        type=int,
        default=None,
        metavar="STEP",
        help="First step fitted and scored. Default: after the warmup; a log without warmup "
        "from 5% of its steps (noted).",
    )
    @click.option(
        "--smooth",
        type=int,
        default=None,
        metavar="POINTS",
        help="Smooth noisy logs over this many points before fitting and scoring.",
    )
    @click.option(
        "--max-points",
        type=int,
        default=None,
        help="Per curve: more logged points are averaged in bins.  [default: 1000]",
    )
    @click.option(
        "--delta",
        default="auto",
        show_default=True,
        help="Huber delta of the log residuals; 'auto': 1e-3, or 3 noise sigmas when larger.",
    )
    @functools.wraps(command)
    def wrapper(*args, fit_from, smooth, max_points, delta, **kwargs):
        data = {"fit_from": fit_from, "smooth": smooth, "max_points": max_points, "delta": delta}
        return command(*args, data=data, **kwargs)

    return wrapper


def size_option(text: str | None, model: Law) -> float | None:
    """--model-size, which only a fit with a model-size term can use."""
    if text is None:
        return None
    if not getattr(model, "size_scaling", False):
        raise UserError(
            f"--model-size {text}: this {model.name} fit has no model-size term "
            "(fit with --size-scaling to use one)"
        )
    return parse_model_size(text)


def point_notes(model: Law, curves: list[LossCurve]) -> None:
    """Say what ``model`` leaves out, bins or smooths of each curve before scoring it."""
    for c in curves:
        for message in model.points(c).notes[len(c.notes) :]:
            note(message)


def range_warning(model: Law, target, steps=None) -> None:
    message = extrapolation_warning(model, target, steps)
    if message:
        warn(message)


def plot_fit(model: Law, curves: list[LossCurve], out: str, fitted: bool = False, bands=None):
    """Predicted (lines) against real (dots) curves; only the curves the fit used are shaded
    as fitted."""
    fitted_names = {c["name"] for c in model.fit_info_.get("curves", [])}
    panels = []
    for i, c in enumerate(curves):
        kept = model.points(c)
        was_fitted = fitted or c.name in fitted_names
        panels.append(
            CurvePanel(
                c.name,
                kept.steps,
                model.predict(kept),
                kept.lrs(),
                kept.losses,
                fitted=was_fitted,
                band=bands[i] if bands is not None else None,
            )
        )
    info = model.fit_info_.get("curves", [])
    span = (min(x["first_step"] for x in info), max(x["last_step"] for x in info)) if info else None
    if not any(p.fitted for p in panels):
        span = None  # none of these runs was fitted: no "fitted steps" shading
    figure = plot_predictions(
        panels, title=f"{model.name} law: predicted (lines) vs real (dots)", fitted_range=span
    )
    save_figure(figure, out)
