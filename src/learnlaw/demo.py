"""``learnlaw demo``: both halves of the project on built-in data, in a few minutes on a CPU.

1. Optimal learning: a reduced perceptron experiment (config ``perceptron-demo``), the same
   files as ``learnlaw policy optimize``, in ``OUT/policy``.
2. Loss-curve laws: the momentum law fitted on two of the shipped example runs (constant and
   cosine) predicts the other two (WSD and multi-step), then sweeps the WSD decay fraction,
   in ``OUT/laws``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.curves import read_curve
from learnlaw.examples import example_curve_path, example_warmup
from learnlaw.laws import MomentumLaw, save_fit
from learnlaw.laws.base import law_points
from learnlaw.laws.metrics import curve_metrics
from learnlaw.planning import sweep_wsd_fraction
from learnlaw.plots import CurvePanel, plot_predictions, plot_sweep

FIT_ON = ("constant", "cosine")
PREDICT = ("wsd", "multistep")


def law_demo(out: Path) -> dict[str, Any]:
    """Fit on the constant and cosine example runs, predict the others, sweep WSD fractions."""
    out.mkdir(parents=True, exist_ok=True)
    warmup = example_warmup()
    curves = {
        name: law_points(read_curve(example_curve_path(name), warmup_steps=warmup))
        for name in (*FIT_ON, *PREDICT)
    }
    # These runs are 2,000 steps long: lambda = 0.999 (a ~1,000-step memory, right for 24K-step
    # runs) is too slow for them, so lambda is chosen from the grid by fit quality.
    law = MomentumLaw(lam="auto").fit([curves[n] for n in FIT_ON])
    save_fit(law, out / "fit.json")
    panels, errors = [], {}
    for name, curve in curves.items():
        predicted = law.predict(curve)
        if name in PREDICT:
            errors[name] = curve_metrics(predicted, curve.losses)
        panels.append(
            CurvePanel(
                name, curve.steps, predicted, curve.lrs(), curve.losses, fitted=name in FIT_ON
            )
        )
    first = min(int(curves[n].steps[0]) for n in FIT_ON)
    last = max(int(curves[n].steps[-1]) for n in FIT_ON)
    plot_predictions(
        panels,
        out / "predictions.png",
        fitted_range=(first, last),
        title="momentum law fitted on constant + cosine runs, predicting WSD and multi-step",
    )
    c = curves["cosine"]
    total, peak, warmup = int(c.steps[-1]), float(c.lrs()[c.warmup_steps]), c.warmup_steps
    final = float(c.schedule.lr(total))
    sweep = sweep_wsd_fraction(law, total, peak, final=final, warmup=warmup)
    fr, losses = np.array([s[0] for s in sweep]), np.array([s[1] for s in sweep])
    plot_sweep(
        fr,
        losses,
        out / "wsd_sweep.png",
        f"predicted final loss of WSD schedules ({total} steps, peak {peak:g})",
    )
    best = int(np.argmin(losses))
    return {
        "params": law.params_,
        "lam": law.lam_,
        "errors": errors,
        "best_fraction": float(fr[best]),
        "best_loss": float(losses[best]),
        "out": out,
    }


def policy_demo(out: Path, quiet: bool) -> dict[str, Any]:
    from learnlaw.policy.config import load_config
    from learnlaw.policy.run import optimize_policy

    if out.exists():
        shutil.rmtree(out)  # the demo always starts fresh
    config = load_config("perceptron-demo")
    return optimize_policy(config, out, quiet=quiet, command="learnlaw demo")
