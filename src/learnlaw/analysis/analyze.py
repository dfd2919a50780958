"""Every claim of the paper, checked on one policy run (in memory or a run folder).

Re-trains from theta_0 under the uniform and the learned policy, measuring the Learning Law
along the way, and fits the step scaling law to both test curves. The result is an
:class:`Analysis`: its ``data`` is what ``analysis.json`` holds; ``to_html`` writes the report.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.analysis.learning_law import (
    PolicyTrace,
    Thresholds,
    learning_law_summary,
    trace_policy,
)
from learnlaw.analysis.steplaw import (
    StepLawFit,
    closed_form_acceleration,
    fit_step_laws,
    largest_rise,
    moving_average,
)
from learnlaw.errors import UserError
from learnlaw.files import write_json
from learnlaw.policy.engine import Policy
from learnlaw.policy.result import POLICIES, LearnedPolicy, PolicyResult
from learnlaw.policy.runfolder import analysis_names, policy_epoch, read_run
from learnlaw.policy.speedup import (
    acceleration_ratio,
    auc_ratio,
    compression_ratio,
    corruption_summary,
    loss_auc,
)
from learnlaw.tasks import Task

ANALYSIS_FORMAT = ("learnlaw.analysis", 2)  # 2: signed step-law changes
MIN_LAW_R2 = 0.9  # below this a step-law fit does not describe its curve
R2_SMOOTHED = 0.99  # the smoothed learned curve of a near-optimal policy should reach this
P1_CORRUPTED = 0.95  # the share of corrupted examples a near-optimal policy should zero
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
        "B_change": "-96.6% (Fig. 11) / -93.7% (Table 2, T=4K)",
        "beta_change": "+21.2% (Fig. 11) / +18.7% (Table 2, T=4K)",
    },
}


def follows_law(fit: StepLawFit) -> bool:
    return bool(fit.r2 >= MIN_LAW_R2 and fit.beta > 0 and np.isfinite(fit.B) and fit.B > 0)


@dataclass
class Analysis:
    """The analysis of one learned policy: ``data`` (the JSON), and what the report draws."""

    data: dict[str, Any]
    uniform: PolicyTrace
    learned: PolicyTrace
    per_step_weights: np.ndarray  # T x N
    fits: tuple[StepLawFit, StepLawFit]
    corrupted: np.ndarray | None
    source: str

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    @property
    def acceleration_ratio(self) -> float:
        return self.data["acceleration_ratio"]

    @property
    def sim(self) -> dict[str, Any]:
        """Mean SIM of the uniform and the learned policy (and over the away-from-uniform steps)."""
        return self.data["sim"]

    def to_json(self, path: str | Path) -> Path:
        return write_json(path, self.data)

    def to_html(self, path: str | Path, figures: str | Path | None = None) -> Path:
        """A self-contained report page (images embedded); ``figures``: also keep the PNGs."""
        from learnlaw.analysis.report import write_report

        return write_report(self, Path(path), None if figures is None else Path(figures))

    def save(self, run_dir: str | Path) -> tuple[Path, Path]:
        """Write the JSON, the report and its figures into a run folder under the run folder's
        names for this policy (``analysis.json``, ``report.html``, ``analysis/``; with a
        ``-objective`` suffix for the lowest-objective policy)."""
        run_dir = Path(run_dir)
        json_name, report_name, figures = analysis_names(self.data["policy"]["which"])
        return (
            self.to_json(run_dir / json_name),
            self.to_html(run_dir / report_name, figures=run_dir / figures),
        )


def analyze(
    source: PolicyResult | str | Path,
    *,
    policy: str = "kept",
    stride: int = 1,
    thresholds: Thresholds | None = None,
    snapshot_fractions: tuple[float, ...] = (0.05, 0.25, 0.5, 0.9),
    task: Task | None = None,
) -> Analysis:
    """Analyse a policy run: a :class:`PolicyResult` or a run folder.

    ``policy="objective"`` analyses the policy with the lowest objective instead of the kept
    one (the Learning Law describes the optimum). ``task`` replaces rebuilding a run folder's
    task from its config.json."""
    if policy not in POLICIES:
        raise UserError(f"--policy {policy}: expected one of {', '.join(POLICIES)}")
    if isinstance(source, PolicyResult):
        task, config, learned = source.task, source.config, source.policy(policy)
        if learned.policy.weights is None:
            raise UserError(f"this run has no {policy} policy to analyse")
        epochs = {"kept": source.kept.epoch, "objective": source.lowest_objective.epoch}
        label = str(source.out) if source.out is not None else "in-memory run"
    else:
        record = read_run(Path(source), policy, task=task)
        task, config, learned = record.task, record.config, record.policy
        other = "objective" if policy == "kept" else "kept"
        epochs = {policy: learned.epoch, other: policy_epoch(record.metrics, other)}
        label = str(source)
    return _analyze(task, config, learned, epochs, label, stride, thresholds, snapshot_fractions)


def _analyze(task, config, learned: LearnedPolicy, epochs, label, stride, thresholds, fractions):
    th = thresholds or Thresholds()
    th.validate()
    steps, eta = config.train.steps, config.train.lr
    whole = isinstance(stride, numbers.Integral) and not isinstance(stride, bool)
    if not whole or not 1 <= stride <= steps:
        raise UserError(
            f"--stride {stride!r}: expected a whole number between 1 and the run's {steps} steps"
        )
    stride = int(stride)
    if not all(isinstance(f, numbers.Real) and 0 <= f <= 1 for f in fractions):
        raise UserError(
            f"snapshot_fractions {fractions!r}: expected fractions of the run in [0, 1]"
        )
    snaps = tuple(sorted({min(steps - 1, int(f * steps)) // stride * stride for f in fractions}))
    policy = learned.policy
    uniform = Policy.uniform(
        steps, task.n_train, policy.segment, task.theta0.dtype, task.theta0.device
    )
    tu = trace_policy(task, uniform, eta, steps, stride=stride, snapshot_steps=snaps, thresholds=th)
    tl = trace_policy(task, policy, eta, steps, stride=stride, snapshot_steps=snaps, thresholds=th)
    dim = getattr(getattr(task, "config", None), "dim", None) if task.name == "perceptron" else None
    data: dict[str, Any] = {
        "format": ANALYSIS_FORMAT[0],
        "format_version": ANALYSIS_FORMAT[1],
        "task": task.name,
        "steps": steps,
        "n_train": task.n_train,
        "policy": {
            "which": learned.which,
            "epoch": learned.epoch,
            "meaning": learned.meaning,
            "kept_epoch": epochs.get("kept"),
            "lowest_objective_epoch": epochs.get("objective"),
        },
    }
    data.update(learning_law_summary(tu, tl, task.n_train, dim, th))
    corrupted = data["property1"].get("corrupted")
    if corrupted and corrupted.get("share_pooled") is not None:
        corrupted["threshold"] = P1_CORRUPTED
        corrupted["meets_threshold"] = bool(corrupted["share_pooled"] >= P1_CORRUPTED)
    u_test, l_test = tu.curves["test"], tl.curves["test"]
    t = np.arange(len(u_test))
    fits = fit_step_laws([(t, u_test), (t, l_test)])
    data["step_law"] = step_law_summary(u_test, l_test, fits[0], fits[1], steps)
    # near the optimum the learned curve zig-zags from step to step; the law describes its
    # trend, which a centred moving average shows
    window = max(1, round(th.smooth * steps))
    u_smooth, l_smooth = moving_average(u_test, window), moving_average(l_test, window)
    smooth_fits = fit_step_laws([(t, u_smooth), (t, l_smooth)])
    data["step_law_smoothed"] = {
        "window": 2 * (window // 2) + 1,
        **step_law_summary(u_smooth, l_smooth, smooth_fits[0], smooth_fits[1], steps),
        "r2_threshold": R2_SMOOTHED,
        "learned_r2_meets_threshold": bool(smooth_fits[1].r2 >= R2_SMOOTHED),
        "negative_weighted_ct_share": data["sim"]["negative_weighted_ct_share"]["learned"],
    }
    data["compression_ratio"] = {
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
    data["auc"] = {
        "uniform": loss_auc(u_test),
        "learned": loss_auc(l_test),
        "ratio": auc_ratio(u_test, l_test),
        "set": "test",
        "definition": "sum_{t=1..T} L(theta_t)",
    }
    data["acceleration_ratio"] = acceleration_ratio(u_test, l_test)
    weights = policy.per_step(steps).double().cpu().numpy()
    data["corrupted_weight_ratio"] = corruption_summary(weights, task.corrupted)
    data["paper"] = PAPER.get(task.name, {})
    return Analysis(data, tu, tl, weights, fits, task.corrupted, label)


def _visible_rise(curve: np.ndarray) -> float:
    """The smallest rise worth naming: a curve that has converged jitters by float rounding
    (1e-17 on a loss of 0.4), which is not why a step law fails to fit it."""
    return 1e-9 * float(np.max(np.abs(curve)))


def step_law_summary(u_test, l_test, fit_u: StepLawFit, fit_l: StepLawFit, steps: int) -> dict:
    """The step-law fits with their signed changes (learned against uniform) and the closed-form
    acceleration, or a note saying why they are not reported."""
    out: dict[str, Any] = {
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
        rises = out["largest_rise"]
        why = "; ".join(
            f"the {name} curve rises by {rises[name]['rise']:.3g} above its running minimum "
            f"in the fitted range (step {rises[name]['from_step']} -> {rises[name]['to_step']})"
            for name, curve in (("uniform", u_test), ("learned", l_test))
            if name in bad and rises[name]["rise"] > _visible_rise(curve)
        )
        out["note"] = (
            f"the {' and '.join(bad)} test curve does not follow L0 + (B/t)^beta "
            f"(r^2 below {MIN_LAW_R2} or beta <= 0), so the coefficient changes and the closed-form "
            "acceleration are not reported" + (f"; {why}" if why else "")
        )
        out.update(
            {
                "B_change": None,
                "beta_change": None,
                "improvement": None,
                "acceleration_closed_form": None,
                "extrapolated_acceleration": {f"{x:.0e}": None for x in EXTRAPOLATE_TO},
            }
        )
        return out
    b_change = (fit_l.B - fit_u.B) / fit_u.B
    beta_change = (fit_l.beta - fit_u.beta) / fit_u.beta
    out.update(
        {
            # signed relative changes, learned against uniform: the paper's improvement is
            # B down (B_change < 0) and beta up (beta_change > 0)
            "B_change": b_change,
            "beta_change": beta_change,
            "improvement": {"B_down": bool(b_change < 0), "beta_up": bool(beta_change > 0)},
            "acceleration_closed_form": closed_form_acceleration(fit_u, fit_l, steps),
            "extrapolated_acceleration": {
                f"{x:.0e}": closed_form_acceleration(fit_u, fit_l, x) for x in EXTRAPOLATE_TO
            },
        }
    )
    return out
