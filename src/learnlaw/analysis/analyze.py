"""``learnlaw analyze DIR``: every claim of the paper, checked on one run of the policy engine.

Re-trains from theta_0 under the uniform and the saved learned policy, measuring the Learning
Law along the way, fits the step scaling law to both test curves, and writes
``DIR/analysis.json`` and a self-contained ``DIR/report.html``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learnlaw.analysis.learning_law import Thresholds, learning_law_summary, trace_policy
from learnlaw.analysis.metrics import (
    acceleration_ratio,
    auc_ratio,
    compression_ratio,
    corruption_summary,
    largest_rise,
    loss_auc,
)
from learnlaw.errors import UserError
from learnlaw.files import write_json
from learnlaw.laws.steplaw import closed_form_acceleration, fit_step_laws
from learnlaw.policy.config import config_from_json
from learnlaw.policy.engine import Policy
from learnlaw.policy.run import RUN_FORMAT, build_task, load_policy

ANALYSIS_FORMAT = ("learnlaw.analysis", 1)
MIN_LAW_R2 = 0.9  # below this a step-law fit does not describe its curve
EXTRAPOLATE_TO = (1e4, 1e5, 1e6, 1e7)
# What the paper reports (Gu et al. 2024), for the table next to ours.
PAPER = {
    "perceptron": {
        "acceleration_ratio": 5.50,
        "compression_ratio_learned": "about 7 (from about 4)",
        "property2_share": "over 90%",
    },
    "lm": {
        "acceleration_ratio": 2.41,
        "sim_uniform": 0.17,
        "sim_learned": 0.52,
        "B_improvement": "96.6% (Fig. 11) / 93.7% (Table 2, T=4K)",
        "beta_improvement": "21.2% (Fig. 11) / 18.7% (Table 2, T=4K)",
    },
}


def follows_law(fit) -> bool:
    return bool(fit.r2 >= MIN_LAW_R2 and fit.beta > 0 and np.isfinite(fit.B) and fit.B > 0)


def load_run(run_dir: Path):
    """The config, task and learned policy of a finished run folder (one-line errors otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    for name in ("config.json", "policy.npz"):
        if not (run_dir / name).exists():
            raise UserError(
                f"{run_dir}: incomplete run ({name} is missing); finish it with "
                f"'learnlaw policy optimize --resume --out {run_dir}'"
            )
    try:
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{run_dir}/config.json: not valid JSON") from None
    if (saved.get("format"), saved.get("format_version")) != RUN_FORMAT:
        raise UserError(
            f"{run_dir}/config.json: run format {saved.get('format')!r} version "
            f"{saved.get('format_version')!r}; this learnlaw reads {RUN_FORMAT[0]} version {RUN_FORMAT[1]}"
        )
    try:
        config = config_from_json(saved["config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{run_dir}/config.json: damaged configuration ({exc})") from None
    weights, segment, steps = load_policy(run_dir / "policy.npz")
    task = build_task(config)
    if steps != config.train.steps or weights.shape[1] != task.n_train:
        raise UserError(
            f"{run_dir}/policy.npz: shape {weights.shape} does not match the run's configuration"
        )
    w = torch.as_tensor(weights, dtype=task.theta0.dtype, device=task.theta0.device)
    learned = Policy(w / w.sum(1, keepdim=True), segment)  # undo float32 rounding of the rows
    return config, task, learned


def analyze_run(
    run_dir: Path,
    *,
    stride: int = 1,
    thresholds: Thresholds | None = None,
    snapshot_fractions: tuple[float, ...] = (0.05, 0.25, 0.5, 0.9),
    report: bool = True,
) -> dict[str, Any]:
    """Compute analysis.json (and report.html) for a run folder; returns the analysis."""
    run_dir = Path(run_dir)
    config, task, learned = load_run(run_dir)
    th = thresholds or Thresholds()
    steps, eta = config.train.steps, config.train.lr
    if stride < 1 or stride > steps:
        raise UserError(f"--stride {stride}: must be between 1 and the run's {steps} steps")
    snaps = tuple(
        sorted({min(steps - 1, int(f * steps)) // stride * stride for f in snapshot_fractions})
    )
    uniform = Policy.uniform(
        steps, task.n_train, learned.segment, task.theta0.dtype, task.theta0.device
    )
    tu = trace_policy(task, uniform, eta, steps, stride=stride, snapshot_steps=snaps, thresholds=th)
    tl = trace_policy(task, learned, eta, steps, stride=stride, snapshot_steps=snaps, thresholds=th)
    dim = (
        getattr(getattr(task, "config", None), "dim", None) if config.task == "perceptron" else None
    )
    analysis: dict[str, Any] = {
        "format": ANALYSIS_FORMAT[0],
        "format_version": ANALYSIS_FORMAT[1],
        "task": config.task,
        "steps": steps,
        "n_train": task.n_train,
    }
    analysis.update(learning_law_summary(tu, tl, task.n_train, dim, th))
    u_test, l_test = tu.curves["test"], tl.curves["test"]
    t = np.arange(len(u_test))
    fit_u, fit_l = fit_step_laws([(t, u_test), (t, l_test)], shared=True)
    analysis["step_law"] = {
        "uniform": fit_u.to_json(),
        "learned": fit_l.to_json(),
        "shared": ["L0", "t0"],
        "acceleration_measured": acceleration_ratio(u_test, l_test),
        # over the fitted steps (t > t0): what a poor fit there comes from
        "largest_rise": {
            "uniform": largest_rise(u_test, int(fit_u.t0) + 1),
            "learned": largest_rise(l_test, int(fit_l.t0) + 1),
        },
    }
    bad = [name for name, f in (("uniform", fit_u), ("learned", fit_l)) if not follows_law(f)]
    if bad:
        # the closed forms assume both curves follow the law; say so instead of printing nonsense
        rises = analysis["step_law"]["largest_rise"]
        why = "; ".join(
            f"the {name} curve rises by {rises[name]['rise']:.3g} above its running minimum "
            f"in the fitted range (step {rises[name]['from_step']} -> {rises[name]['to_step']})"
            for name in bad
            if rises[name]["rise"] > 0
        )
        analysis["step_law"]["note"] = (
            f"the {' and '.join(bad)} test curve does not follow L0 + (B/t)^beta "
            f"(r^2 below {MIN_LAW_R2} or beta <= 0), so the coefficient changes and the closed-form "
            "acceleration are not reported" + (f"; {why}" if why else "")
        )
        analysis["step_law"].update(
            {
                "B_improvement": None,
                "beta_improvement": None,
                "acceleration_closed_form": None,
                "extrapolated_acceleration": {f"{x:.0e}": None for x in EXTRAPOLATE_TO},
            }
        )
    else:
        analysis["step_law"].update(
            {
                "B_improvement": abs(fit_l.B - fit_u.B) / fit_u.B,
                "beta_improvement": abs(fit_l.beta - fit_u.beta) / fit_u.beta,
                "acceleration_closed_form": closed_form_acceleration(fit_u, fit_l, steps),
                "extrapolated_acceleration": {
                    f"{x:.0e}": closed_form_acceleration(fit_u, fit_l, x) for x in EXTRAPOLATE_TO
                },
            }
        )
    analysis["compression_ratio"] = {
        "set": "test",
        "n_classes": task.n_classes,
        "log2": {
            "uniform": compression_ratio(u_test, task.n_classes, 2),
            "learned": compression_ratio(l_test, task.n_classes, 2),
            "convention": "T log2|V| / sum_t L (nats): the paper's plots",
        },
        "ln": {
            "uniform": compression_ratio(u_test, task.n_classes, math.e),
            "learned": compression_ratio(l_test, task.n_classes, math.e),
            "convention": "T ln|V| / sum_t L (nats): consistent units",
        },
    }
    analysis["auc"] = {
        "uniform": loss_auc(u_test),
        "learned": loss_auc(l_test),
        "ratio": auc_ratio(u_test, l_test),
        "set": "test",
        "definition": "sum_{t=1..T} L(theta_t)",
    }
    analysis["acceleration_ratio"] = acceleration_ratio(u_test, l_test)
    weights = learned.per_step(steps).double().cpu().numpy()
    corrupted = getattr(task, "corrupted", None)
    analysis["corrupted_weight_ratio"] = corruption_summary(weights, corrupted)
    analysis["paper"] = PAPER.get(config.task, {})
    write_json(run_dir / "analysis.json", analysis)
    if report:
        from learnlaw.analysis.report import write_report

        write_report(
            run_dir,
            analysis,
            tu,
            tl,
            weights,
            (fit_u, fit_l),
            corrupted,
        )
    return analysis
