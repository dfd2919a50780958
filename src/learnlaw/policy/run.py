"""A policy-optimisation run, top to bottom: build the task, train under the uniform policy,
then for every outer epoch compute the hypergradient, keep the best policy so far (by loss area
on the held-out ``select`` part of the desired set), take an outer step, and checkpoint.

Epoch e evaluates the policy after e outer steps; epoch 0 is the uniform policy and the last
epoch (``outer.epochs``) is evaluated without a further step. Checkpoints are atomic, so a run
killed at any moment resumes exactly (``resume=True``) from its last completed epoch.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from learnlaw.analysis.metrics import (
    acceleration_ratio,
    auc_ratio,
    corruption_summary,
    loss_auc,
    speedup_metrics,
)
from learnlaw.errors import UserError
from learnlaw.files import atomic_write, versions, write_csv, write_json
from learnlaw.policy.config import RunConfig
from learnlaw.policy.engine import (
    DivergenceError,
    Policy,
    default_checkpoint_every,
    hypergradient,
    run_policy,
)
from learnlaw.policy.outer import calibrate_base_step, outer_step
from learnlaw.tasks.base import FunctionalTask

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = ("learnlaw.policy-checkpoint", 1)
RUN_FORMAT = ("learnlaw.run", 1)  # config.json of a run folder
# the kept policy (best loss area on ``select``) and the one with the lowest objective
POLICY_FILES = {"kept": "policy.npz", "objective": "policy_objective.npz"}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def build_task(config: RunConfig) -> FunctionalTask:
    dtype, device = DTYPES[config.train.dtype], config.train.device
    if config.task == "perceptron":
        from learnlaw.tasks.perceptron import PerceptronTask

        return PerceptronTask(config.task_options, config.seed, dtype=dtype, device=device)
    if config.task == "lm":
        from learnlaw.tasks.lm import LMTask

        return LMTask(config.task_options, config.seed, dtype=dtype, device=device)
    raise UserError(f"unknown task {config.task!r}")


@dataclass
class RunState:
    """Everything a resumed run needs; saved after every outer epoch."""

    config: dict[str, Any]
    epoch: int  # the next epoch to evaluate
    weights: torch.Tensor
    uniform_curves: dict[str, np.ndarray]
    best_epoch: int = -1
    best_score: float = float("inf")
    best_weights: torch.Tensor | None = None
    best_curves: dict[str, np.ndarray] | None = None
    history: list[dict[str, float]] | None = None
    seconds: float = 0.0
    base_step: float | None = None  # the outer step before decay (calibrated at epoch 0 for "auto")
    # outer.backtrack: the last accepted point (objective, weights, grads), to retry from
    accepted: dict[str, Any] | None = None
    # the policy with the smallest objective (epoch, objective, weights): the outer optimiser's
    # best point, the one the Learning Law is about (the kept policy is chosen on ``select``)
    lowest_objective: dict[str, Any] | None = None

    def save(self, path: Path) -> None:
        blob = {"format": CHECKPOINT_FORMAT, **self.__dict__}
        atomic_write(path, lambda tmp: torch.save(blob, tmp))

    @classmethod
    def load(cls, path: Path) -> RunState:
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except FileNotFoundError:
            raise UserError(
                f"{path}: no checkpoint to resume from (run without --resume)"
            ) from None
        except Exception as exc:  # a truncated or foreign file: torch raises many kinds
            raise UserError(
                f"{path}: not a readable checkpoint ({exc.__class__.__name__})"
            ) from None
        if not isinstance(blob, dict) or blob.pop("format", None) != CHECKPOINT_FORMAT:
            raise UserError(f"{path}: not a learnlaw policy checkpoint of this version")
        try:
            return cls(**blob)
        except TypeError:
            raise UserError(f"{path}: damaged checkpoint (unexpected fields)") from None


def _score(curves: dict[str, np.ndarray]) -> float:
    """Loss area on the selection set (the objective set when there is none)."""
    return loss_auc(curves["select"] if "select" in curves else curves["objective"])


def _same_run(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Config keys that differ. The number of outer epochs counts too: it sets the outer step's
    linear decay, so a run cannot be extended, only resumed."""
    diffs = []
    for section in set(saved) | set(current):
        a, b = saved.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{section}.{k}" for k in set(a) | set(b) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(section)
    return sorted(diffs)


def _with_defaults(saved: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """A saved config with the keys added to learnlaw since it was written, at their defaults
    (so a checkpoint from an earlier version resumes when nothing the user chose differs)."""
    defaults = {
        "train": asdict(type(config.train)()),
        config.task: asdict(type(config.task_options)()),
        "outer": asdict(type(config.outer)()),
    }
    return {
        key: {**defaults[key], **value} if key in defaults and isinstance(value, dict) else value
        for key, value in saved.items()
    }


def optimize_policy(
    config: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    quiet: bool = False,
    max_seconds: float | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run (or resume) the outer optimisation; write every output into ``out``; return metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = config.to_json()
    task = build_task(config)
    steps, eta = config.train.steps, config.train.lr
    k = config.train.checkpoint_every or default_checkpoint_every(steps)
    say = (lambda *_: None) if quiet else tqdm.write
    ckpt_path = out / CHECKPOINT
    if resume:
        state = RunState.load(ckpt_path)
        diffs = _same_run(_with_defaults(state.config, config), resolved)
        if diffs:
            raise UserError(
                f"{ckpt_path}: made with a different configuration ({', '.join(diffs)} differ)"
            )
        if state.weights.shape != (-(-steps // config.outer.segment), task.n_train):
            raise UserError(
                f"{ckpt_path}: the saved policy has shape {tuple(state.weights.shape)}, "
                "which does not match this task"
            )
        state.config = resolved
        if state.lowest_objective is None and state.history:
            # a checkpoint from before the lowest-objective policy was kept: its epochs count,
            # but their policies are gone (none is saved unless a later epoch does better)
            low = min(state.history, key=lambda h: h["objective"])
            state.lowest_objective = {
                "epoch": low["epoch"],
                "objective": low["objective"],
                "weights": None,
            }
        state.weights = state.weights.to(task.theta0.device, task.theta0.dtype)
        say(f"resuming at outer epoch {state.epoch} of {config.outer.epochs}")
    else:
        write_json(
            out / "config.json",
            {
                "format": RUN_FORMAT[0],
                "format_version": RUN_FORMAT[1],
                "config": resolved,
                "seed": config.seed,
                "versions": versions(),
                "task": task.describe(),
                "command": command,
            },
        )
        uniform = Policy.uniform(
            steps, task.n_train, config.outer.segment, task.theta0.dtype, task.theta0.device
        )
        with _where("the uniform run"):
            curves = run_policy(task, uniform, eta, steps).curves
        state = RunState(resolved, 0, uniform.weights, curves, history=[])
        state.save(ckpt_path)
    epochs = config.outer.epochs
    started = time.perf_counter()
    bar = tqdm(
        total=epochs + 1,
        initial=state.epoch,
        desc="outer epochs",
        unit="epoch",
        disable=True if quiet else None,
        dynamic_ncols=True,
    )
    stopped_early = False
    while state.epoch <= epochs:
        e = state.epoch
        t0 = time.perf_counter()
        policy = Policy(state.weights, config.outer.segment)
        with _where(f"outer epoch {e}"):
            if e < epochs:
                run, grads = hypergradient(task, policy, eta, steps, k)
            else:
                run, grads = run_policy(task, policy, eta, steps), None
        score = _score(run.curves)
        record = {
            "epoch": e,
            "objective": run.objective,
            "select_auc": score,
            "test_auc": loss_auc(run.curves["test"]),
            "test_acceleration": acceleration_ratio(
                state.uniform_curves["test"], run.curves["test"]
            ),
        }
        # no copies: a policy is replaced by each outer step, never changed in place, so the
        # kept, lowest-objective and accepted policies can share tensors (and the checkpoint
        # stores a shared tensor once)
        if score < state.best_score:
            state.best_epoch, state.best_score = e, score
            state.best_weights, state.best_curves = state.weights, run.curves
        low = state.lowest_objective
        if low is None or run.objective < low["objective"]:
            state.lowest_objective = {
                "epoch": e,
                "objective": run.objective,
                "weights": state.weights,
            }
        if grads is not None:
            if state.base_step is None:
                state.base_step = calibrate_base_step(state.weights, grads, config.outer)
            origin, origin_grads = state.weights, grads
            if config.outer.backtrack:
                last = state.accepted
                if last is not None and run.objective > last["objective"]:
                    # the step made the objective worse: retry from the last accepted policy
                    record["rejected"] = True
                    origin, origin_grads = last["weights"], last["grads"]
                else:
                    state.accepted = {"objective": run.objective, "weights": origin, "grads": grads}
            # every rejected step so far halves the step
            rejected = sum(1 for h in (*state.history, record) if h.get("rejected"))
            state.weights, record["step_size"] = outer_step(
                origin, origin_grads, e, config.outer, state.base_step * 0.5**rejected
            )
        record["seconds"] = time.perf_counter() - t0
        state.history.append(record)
        state.seconds += record["seconds"]
        state.epoch = e + 1
        state.save(ckpt_path)
        bar.update(1)
        bar.set_postfix(
            J=f"{run.objective:.4g}",
            test_AR=f"{record['test_acceleration']:.2f}",
            best=state.best_epoch,
        )
        if (
            max_seconds is not None
            and time.perf_counter() - started > max_seconds
            and state.epoch <= epochs
        ):
            say(f"time budget reached after outer epoch {e}; continue with --resume")
            stopped_early = True
            break
    bar.close()
    metrics = write_outputs(task, config, state, out)
    metrics["stopped_early"] = stopped_early
    write_json(out / "metrics.json", metrics)
    return metrics


@contextmanager
def _where(where: str):
    """Say which epoch diverged and that the last good policy is on disk."""
    try:
        yield
    except DivergenceError as exc:
        kept = (
            "" if where == "the uniform run" else f"; the last good policy is kept in {CHECKPOINT}"
        )
        raise DivergenceError(f"{where}: {exc}{kept}") from None


def write_outputs(
    task: FunctionalTask, config: RunConfig, state: RunState, out: Path
) -> dict[str, Any]:
    """policy.npz, curves.csv, metrics.json and the plots, from the best policy so far."""
    from learnlaw.analysis.plots import plot_objective, plot_policy_heatmap, plot_run_curves

    uniform, learned = state.uniform_curves, state.best_curves
    steps = config.train.steps
    for name, chosen in (
        (POLICY_FILES["kept"], state.best_weights),
        (POLICY_FILES["objective"], (state.lowest_objective or {}).get("weights")),
    ):
        if chosen is not None:
            w = chosen.float().cpu().numpy()
            atomic_write(
                out / name, lambda tmp, w=w: _save_npz(tmp, w, config.outer.segment, steps)
            )
    write_curves_csv(out / "curves.csv", uniform, learned)
    metrics = run_metrics(task, state, uniform, learned)
    write_json(out / "metrics.json", metrics)
    plot_run_curves(uniform, learned, out / "loss_curves.png", metrics)
    plot_objective(state.history, state.best_epoch, out / "objective.png")
    plot_policy_heatmap(
        Policy(state.best_weights.cpu(), config.outer.segment).per_step(steps).float().numpy(),
        out / "policy_heatmap.png",
        groups=getattr(task, "corrupted", None),
    )
    return metrics


def _save_npz(path: Path, weights: np.ndarray, segment: int, steps: int) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, policy=weights.astype(np.float32), segment=segment, steps=steps)


def load_policy(path: Path) -> tuple[np.ndarray, int, int]:
    try:
        with np.load(path) as data:
            return data["policy"], int(data["segment"]), int(data["steps"])
    except FileNotFoundError:
        raise UserError(f"{path}: no saved policy") from None
    except (KeyError, ValueError, OSError):
        raise UserError(f"{path}: not a learnlaw policy file") from None


def write_curves_csv(
    path: Path, uniform: dict[str, np.ndarray], learned: dict[str, np.ndarray]
) -> None:
    splits = [s for s in ("objective", "select", "test") if s in uniform]
    header = ["step"] + [f"{s}_{p}" for s in splits for p in ("uniform", "learned")]
    curves = [c[s] for s in splits for c in (uniform, learned)]
    write_csv(path, header, [range(len(uniform["objective"])), *curves])


def speedup_on_test_set(task: FunctionalTask, uniform, learned) -> dict[str, Any]:
    """The headline numbers of a run, on the held-out test curves (one place for the convention)."""
    metrics = speedup_metrics(uniform["test"], learned["test"], task.n_classes)
    metrics["compression_ratio"]["set"] = "test"
    metrics["compression_ratio"]["units"] = "log base 2 of |V| in the numerator, loss in nats"
    return metrics


def run_metrics(task: FunctionalTask, state: RunState, uniform, learned) -> dict[str, Any]:
    history = state.history
    metrics = speedup_on_test_set(task, uniform, learned)
    metrics.update(
        {
            "best_epoch": state.best_epoch,
            "lowest_objective_epoch": (state.lowest_objective or {}).get("epoch"),
            "epochs_run": len(history),
            "objective_per_epoch": [h["objective"] for h in history],
            "select_auc_per_epoch": [h["select_auc"] for h in history],
            "test_acceleration_per_epoch": [h["test_acceleration"] for h in history],
            "rejected_epochs": [h["epoch"] for h in history if h.get("rejected")],
            "seconds_per_epoch": float(np.median([h["seconds"] for h in history]))
            if history
            else None,
            "seconds_total": state.seconds,
            "desired_set": {
                split: {
                    "acceleration_ratio": acceleration_ratio(uniform[split], learned[split]),
                    "auc_ratio": auc_ratio(uniform[split], learned[split]),
                }
                for split in ("objective", "select")
                if split in uniform
            },
        }
    )
    corruption = corruption_summary(
        state.best_weights.double().cpu().numpy(), getattr(task, "corrupted", None)
    )
    if corruption is not None:
        metrics["corrupted_weight_ratio"] = corruption
    return metrics


def evaluate_run(out: Path) -> dict[str, Any]:
    """Retrain from theta_0 with the saved policy and recompute the metrics from scratch."""
    from learnlaw.analysis.analyze import load_run

    config, task, learned = load_run(Path(out))
    steps, eta = config.train.steps, config.train.lr
    uniform = Policy.uniform(
        steps, task.n_train, learned.segment, task.theta0.dtype, task.theta0.device
    )
    u = run_policy(task, uniform, eta, steps).curves
    lcurves = run_policy(task, learned, eta, steps).curves
    return speedup_on_test_set(task, u, lcurves)
