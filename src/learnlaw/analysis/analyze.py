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
from learnlaw.policy.run import POLICY_FILES, RUN_FORMAT, build_task, load_policy

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


POLICY_MEANING = {
    "kept": "the kept policy: the outer epoch with the smallest loss area on the select set "
    "(on the objective set when there is none)",
    "objective": "the outer epoch with the smallest objective: the optimiser's closest point "
    "to the optimum the Learning Law describes",
}


def output_names(policy: str) -> tuple[str, str, str]:
    """analysis JSON, report page and figure folder of an analysis of ``policy``."""
    suffix = "" if policy == "kept" else f"-{policy}"
    return f"analysis{suffix}.json", f"report{suffix}.html", f"analysis{suffix}"


def load_run(run_dir: Path, policy: str = "kept"):
    """The config, task and learned policy of a finished run folder (one-line errors otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    wanted = POLICY_FILES[policy]
    if (run_dir / POLICY_FILES["kept"]).exists() and not (run_dir / wanted).exists():
        raise UserError(
            f"{run_dir}: no {wanted}; this run was made before learnlaw saved the policy with "
            "the lowest objective (analyse the kept policy with --policy kept)"
        )
    for name in ("config.json", wanted):
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
    weights, segment, steps = load_policy(run_dir / wanted)
    task = build_task(config)
    if steps != config.train.steps or weights.shape[1] != task.n_train:
        raise UserError(
            f"{run_dir}/{wanted}: shape {weights.shape} does not match the run's configuration"
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
    policy: str = "kept",
) -> dict[str, Any]:
    """Compute analysis.json (and report.html) for a run folder; returns the analysis.

    ``policy="objective"`` analyses the policy with the lowest objective instead of the kept
    one, into analysis-objective.json and report-objective.html."""
    run_dir = Path(run_dir)
    if policy not in POLICY_FILES:
        raise UserError(f"--policy {policy}: expected one of {', '.join(POLICY_FILES)}")
    config, task, learned = load_run(run_dir, policy)
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
    epochs = _policy_epochs(run_dir)
    analysis: dict[str, Any] = {
        "format": ANALYSIS_FORMAT[0],
        "format_version": ANALYSIS_FORMAT[1],
        "task": config.task,
        "steps": steps,
        "n_train": task.n_train,
        "policy": {
            "which": policy,
            "file": POLICY_FILES[policy],
            "epoch": epochs[policy],
            "meaning": POLICY_MEANING[policy],
            "kept_epoch": epochs["kept"],
            "lowest_objective_epoch": epochs["objective"],
        },
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
    json_name, report_name, figures = output_names(policy)
    write_json(run_dir / json_name, analysis)
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
            page=report_name,
            figures=figures,
        )
    return analysis


def _policy_epochs(run_dir: Path) -> dict[str, int | None]:
    """The outer epochs of the kept and the lowest-objective policy, from the run's metrics."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    metrics = metrics if isinstance(metrics, dict) else {}  # missing or damaged: epochs unknown
    return {"kept": metrics.get("best_epoch"), "objective": metrics.get("lowest_objective_epoch")}
