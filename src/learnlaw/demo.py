"""``learnlaw demo``: both halves of the project on built-in data, in a few minutes on a CPU.

1. Optimal learning: a reduced perceptron experiment (config ``perceptron-demo``) in
   ``OUT/policy`` (the files of ``learnlaw policy optimize``), analysed (the Learning Law).
2. Loss-curve laws: the momentum law fitted on two of the shipped example runs (constant and
   cosine) predicts the other two (WSD and multi-step), then sweeps the WSD decay fraction,
   in ``OUT/laws``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learnlaw.curves import read_curve
from learnlaw.examples import example_curve_path, example_warmup
from learnlaw.files import check_output
from learnlaw.laws import MomentumLaw, law_points
from learnlaw.laws.evaluation import CurveScore, score_curve
from learnlaw.planning import WsdSweep, sweep_wsd
from learnlaw.plots import save_figure
from learnlaw.plots.curves import CurvePanel, plot_predictions, plot_sweep

FIT_ON = ("constant", "cosine")
PREDICT = ("wsd", "multistep")


@dataclass
class LawDemo:
    law: MomentumLaw
    scores: dict[str, CurveScore]  # the predicted (unseen) runs
    sweep: WsdSweep
    out: Path


def law_demo(out: Path) -> LawDemo:
    """Fit on the constant and cosine example runs, predict the others, sweep WSD fractions."""
    out = Path(out)
    for name in ("fit.json", "predictions.png", "wsd_sweep.png"):
        check_output(out / name)  # a previous demo's files are replaced, nobody else's
    warmup = example_warmup()
    curves = {
        name: law_points(read_curve(example_curve_path(name), warmup_steps=warmup))
        for name in (*FIT_ON, *PREDICT)
    }
    # These runs are 2,000 steps long: lambda = 0.999 (a ~1,000-step memory, right for 24K-step
    # runs) is too slow for them, so lambda is chosen from the grid by fit quality.
    law = MomentumLaw(lam="auto").fit([curves[n] for n in FIT_ON])
    law.save(out / "fit.json")
    panels, scores = [], {}
    for name, curve in curves.items():
        predicted = law.predict(curve)
        if name in PREDICT:
            scores[name] = score_curve(law, curve, predicted)
        panels.append(
            CurvePanel(
                name, curve.steps, predicted, curve.lrs(), curve.losses, fitted=name in FIT_ON
            )
        )
    first = min(int(curves[n].steps[0]) for n in FIT_ON)
    last = max(int(curves[n].steps[-1]) for n in FIT_ON)
    title = "momentum law fitted on constant + cosine runs, predicting WSD and multi-step"
    save_figure(
        plot_predictions(panels, title=title, fitted_range=(first, last)), out / "predictions.png"
    )
    c = curves["cosine"]
    total, peak, warmup = int(c.steps[-1]), float(c.lrs()[c.warmup_steps]), c.warmup_steps
    sweep = sweep_wsd(law, total, peak, final=float(c.schedule.lr(total)), warmup=warmup)
    title = f"predicted final loss of WSD schedules ({total} steps, peak {peak:g})"
    save_figure(plot_sweep(sweep.fractions, sweep.final_losses, title), out / "wsd_sweep.png")
    return LawDemo(law, scores, sweep, out)


def demo_config():
    """The demo's policy configuration (the built-in ``perceptron-demo``)."""
    from learnlaw.policy import load_config

    return load_config("perceptron-demo")


def policy_demo(out: Path, quiet: bool = False):
    """The perceptron-demo policy run in ``out`` (a previous demo run there is replaced) and
    its Learning-Law analysis (``analysis.json``, ``report.html``)."""
    from learnlaw.analysis import analyze
    from learnlaw.policy import optimize

    out = Path(out)
    result = optimize(
        config=demo_config(),
        out=out,
        overwrite=True,
        quiet=quiet,
        command="learnlaw demo",
    )
    analysis = analyze(result)
    analysis.save(out)
    return result, analysis
