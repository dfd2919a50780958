"""A policy-optimisation run, top to bottom: build the task, train under the uniform policy,
then for every outer epoch compute the hypergradient, track the kept policy (smallest loss
area on the held-out ``select`` part of the desired set) and the lowest-objective one, take an
outer step, and checkpoint.

Epoch e evaluates the policy after e outer steps; epoch 0 is the uniform policy and the last
epoch (``outer.epochs``) is evaluated without a further step. The run lives in memory and is
returned as a :class:`PolicyResult`; with ``out`` it is also a run folder (``runfolder``),
checkpointed every ``outer.save_every`` epochs (default 1) so that a run killed at any moment
resumes exactly from its last checkpoint.

With a process group (``learnlaw.distributed``) every rank runs this same loop over its block
of every set and its columns of the policy; the engine and the outer optimiser all-reduce
what they need, so every rank takes the same decisions. Rank 0 alone writes the run folder;
its checkpoint holds the whole policy, so a run resumes on any number of processes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from learnlaw.distributed import Comm
from learnlaw.errors import UserError
from learnlaw.limits import check_memory
from learnlaw.policy.config import PolicyConfig, load_config
from learnlaw.policy.engine import (
    DivergenceError,
    Policy,
    default_checkpoint_every,
    hypergradient,
    run_policy,
)
from learnlaw.policy.outer import lowest, make_optimizer, step_size
from learnlaw.policy.result import LearnedPolicy, PolicyResult
from learnlaw.policy.runfolder import CHECKPOINT, RunFolder, read_checkpoint, saved_config
from learnlaw.policy.speedup import (
    acceleration_ratio,
    auc_ratio,
    corruption_summary,
    loss_auc,
    speedup_metrics,
)
from learnlaw.tasks import Task, build_task, task_name
from learnlaw.tasks.registry import DTYPES


def resolve_task(
    task: Task | None, config: PolicyConfig, device: str | None = None
) -> tuple[Task, PolicyConfig]:
    """The task to run and the config that records it (a given task is named in the config,
    with its options when it has them, so the run folder can rebuild it). ``device``
    replaces the config's (a rank's own GPU)."""
    t = config.train
    if task is None:
        task = build_task(
            config.task, config.task_options, config.seed, t.dtype, device or t.device
        )
    elif not isinstance(task, Task):
        raise UserError(f"task: expected a learnlaw.tasks.Task, got {type(task).__name__}")
    else:
        task.check()
        cls = type(task)
        options = getattr(task, "config", None)
        options = options if cls.Config is not None and isinstance(options, cls.Config) else None
        config = replace(config, task=task_name(task), task_options=options)
    return task, config


def optimize(
    task: Task | None = None,
    config: PolicyConfig | str | Path | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    max_seconds: float | None = None,
    command: str = "",
    process_group: Any = None,
) -> PolicyResult:
    """Learn a data policy for ``task`` (default: the task ``config`` names). ``config``: a
    ``PolicyConfig``, or a built-in config's name or a TOML file (``load_config``).

    Returns the run in memory. With ``out`` the run is also written into that folder (new,
    empty, or this run's own with ``resume=True``; ``overwrite=True`` replaces a previous
    learnlaw run there, deleting only the files learnlaw writes) and checkpointed every
    ``outer.save_every`` outer epochs and at the end. ``max_seconds`` stops after the epoch that passes the budget (resume later).

    Data parallel: call it on every process of an initialised torch.distributed group
    (``process_group``; by default the default group when one is initialised). Each rank
    computes over its block of every set; all return the same result; rank 0 writes ``out``.
    A device "cuda" means one GPU per rank (``LOCAL_RANK``).
    """
    if resume and out is None:
        raise UserError("resume needs the run folder (out=...)")
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif config is not None and not isinstance(config, PolicyConfig):
        raise UserError(
            f"config: expected a PolicyConfig, a built-in config's name or a TOML file, got "
            f"{type(config).__name__} (a table of keys: load_config(None, overrides=...))"
        )
    if config is None and resume:
        config = saved_config(Path(out))  # resume the run as it was configured
    config = config or PolicyConfig()
    config.validate()
    if max_seconds is not None and not max_seconds > 0:
        raise UserError(f"max_seconds (--max-minutes x 60): must be positive, got {max_seconds:g}")
    comm = Comm.of(process_group)
    with comm.failures():
        task, config = resolve_task(task, config, comm.run_device(config.train.device))
        refusal = config.train.autocast != "none" and task.autocast_refusal()
        if refusal:
            raise UserError(f"train.autocast = {config.train.autocast!r}: {refusal}")
        work = task.for_run(comm, DTYPES.get(config.train.autocast))  # this rank's examples
        return _optimize(
            task,
            work,
            config,
            out,
            comm,
            resume=resume,
            overwrite=overwrite,
            quiet=quiet,
            max_seconds=max_seconds,
            command=command,
        )


def _optimize(task, work, config, out, comm, *, resume, overwrite, quiet, max_seconds, command):
    """The run: ``task`` as given (the whole policy's size, the run folder's record) and
    ``work``, the same task computing over this rank's examples."""
    steps, eta, n = config.train.steps, config.train.lr, task.n_train
    rows = -(-steps // config.outer.segment)
    # the policy, its hypergradient, the kept, lowest-objective and accepted policies, the
    # accepted hypergradient and a step's temporaries: about eight T x N arrays
    itemsize = task.theta0.element_size()
    check_memory(f"a policy of {rows} x {n} weights", 8 * itemsize * rows * n)
    k = config.train.checkpoint_every or default_checkpoint_every(steps)
    quiet = quiet or comm.rank != 0
    say = (lambda *_: None) if quiet else tqdm.write
    optimizer, kept_tracker, lowest_tracker = make_optimizer(config.outer, comm), lowest(), lowest()
    folder = (
        RunFolder.start(
            Path(out),
            config,
            task,
            resume=resume,
            overwrite=overwrite,
            command=command,
            processes=comm.world_size,
        )
        if out is not None and comm.rank == 0
        else None
    )

    def checkpoint(state):
        if out is not None:
            full = _gather_state(state, comm, n)  # every rank takes part; rank 0 writes
            if folder is not None:
                folder.save_checkpoint(full)

    with folder if folder is not None else nullcontext():
        if resume:  # every rank reads the whole checkpoint and keeps its own columns
            saved = (
                folder.load_checkpoint(task, config)
                if folder is not None
                else read_checkpoint(Path(out), task, config)
            )
            state = _local_state(saved, comm, n)
            say(f"resuming at outer epoch {state['epoch']} of {config.outer.epochs}")
        else:
            a, b = work.local("train")
            uniform = Policy.uniform(
                steps, n, config.outer.segment, task.theta0.dtype, work.theta0.device, b - a
            )
            with _where("the uniform run"):
                curves = run_policy(work, uniform, eta, steps).curves
            state = {
                "epoch": 0,
                "weights": uniform.weights,
                "uniform_curves": curves,
                "kept": kept_tracker.init(),
                "lowest": lowest_tracker.init(),
                "optimizer": optimizer.init(uniform.weights),
                "history": [],
                "seconds": 0.0,
            }
            checkpoint(state)
        epochs, save_every = config.outer.epochs, config.outer.save_every
        started = time.perf_counter()
        bar = tqdm(
            total=epochs + 1,
            initial=state["epoch"],
            desc="outer epochs",
            unit="epoch",
            disable=True if quiet else None,
            dynamic_ncols=True,
        )
        stopped_early, saved = False, state["epoch"]
        try:
            while state["epoch"] <= epochs:
                e = state["epoch"]
                t0 = time.perf_counter()
                weights, opt_state = state["weights"], state["optimizer"]
                policy = Policy(weights, config.outer.segment)
                with _where(f"outer epoch {e}"):
                    if e < epochs:
                        run, grads = hypergradient(work, policy, eta, steps, k)
                    else:
                        run, grads = run_policy(work, policy, eta, steps), None
                # every decision below reads all-reduced curves: the same on every rank
                score = _select_auc(run.curves)
                record = {
                    "epoch": e,
                    "objective": run.objective,
                    "select_auc": score,
                    "test_auc": loss_auc(run.curves["test"]),
                    "test_acceleration": acceleration_ratio(
                        state["uniform_curves"]["test"], run.curves["test"]
                    ),
                }
                kept = kept_tracker.update(state["kept"], e, score, weights, curves=run.curves)
                low = lowest_tracker.update(state["lowest"], e, run.objective, weights)
                if grads is not None:
                    weights, opt_state = optimizer.update(
                        grads, opt_state, weights, objective=run.objective
                    )
                    record["step_size"] = step_size(opt_state)
                    if opt_state.get("last_rejected"):
                        record["rejected"] = True
                record["seconds"] = time.perf_counter() - t0
                # one assignment: an interrupt at any moment leaves a whole epoch's state
                state = {
                    **state,
                    "epoch": e + 1,
                    "weights": weights,
                    "optimizer": opt_state,
                    "kept": kept,
                    "lowest": low,
                    "history": [*state["history"], record],
                    "seconds": state["seconds"] + record["seconds"],
                }
                over_budget = (
                    max_seconds is not None and time.perf_counter() - started > max_seconds
                )
                stopped_early = comm.any(over_budget) and state["epoch"] <= epochs
                if stopped_early or state["epoch"] > epochs or state["epoch"] % save_every == 0:
                    saved = state["epoch"]  # first: a save that fails is not retried on the way out
                    checkpoint(state)
                bar.update(1)
                bar.set_postfix(
                    J=f"{run.objective:.4g}",
                    test_AR=f"{record['test_acceleration']:.2f}",
                    kept=kept["epoch"],
                )
                if stopped_early:
                    say(
                        f"time budget reached after outer epoch {e}; continue with --resume (resume=True)"
                    )
                    break
        except BaseException:
            # a stop that is not a kill (Ctrl-C, SIGTERM, a diverged epoch) keeps the finished
            # epochs that save_every had not saved; on several processes the checkpoint is a
            # collective that the others may never join, so there only the last save counts
            if comm.single and state["epoch"] > saved:
                checkpoint(state)
            raise
        bar.close()
        full = _gather_state({"kept": state["kept"], "lowest": state["lowest"]}, comm, n)
        result = _result(task, config, {**state, **full}, stopped_early, out)
        result.metrics["processes"] = comm.world_size
        if folder is not None:
            folder.write_outputs(result)
        comm.barrier()  # the others learn if rank 0 could not write the outputs
    return result


def _map_tensors(obj: Any, fn, done: dict[int, torch.Tensor] | None = None) -> Any:
    """``obj`` (dicts, lists, values) with ``fn`` applied to every tensor in it; a tensor that
    appears several times is mapped once, so what was shared stays shared."""
    done = {} if done is None else done
    if isinstance(obj, dict):
        return {key: _map_tensors(value, fn, done) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_map_tensors(value, fn, done) for value in obj]
    if isinstance(obj, torch.Tensor):
        if id(obj) not in done:
            done[id(obj)] = fn(obj)
        return done[id(obj)]
    return obj


def _gather_state(state: dict[str, Any], comm: Comm, n: int) -> dict[str, Any]:
    """The state with the whole policy: every tensor of a run's state is a block of policy
    columns (weights, tracked weights, the optimiser's weights and gradients)."""
    return state if comm.single else _map_tensors(state, lambda t: comm.gather(t, n))


def _local_state(state: dict[str, Any], comm: Comm, n: int) -> dict[str, Any]:
    """This rank's columns of every tensor of a whole state (the inverse of _gather_state)."""
    a, b = comm.block(n)
    return state if comm.single else _map_tensors(state, lambda t: t[..., a:b].clone())


def _result(task, config, state, stopped_early, out) -> PolicyResult:
    segment = config.outer.segment
    kept, low = state["kept"], state["lowest"]
    result = PolicyResult(
        config=config,
        task=task,
        uniform_curves=state["uniform_curves"],
        kept=LearnedPolicy("kept", kept["epoch"], Policy(kept["weights"], segment)),
        lowest_objective=LearnedPolicy("objective", low["epoch"], Policy(low["weights"], segment)),
        learned_curves=kept["curves"],
        history=state["history"],
        metrics={},
        out=Path(out) if out is not None else None,
        stopped_early=stopped_early,
    )
    result.metrics = run_metrics(result, state["seconds"])
    return result


def _select_auc(curves: dict[str, np.ndarray]) -> float:
    """Loss area on the selection set (the objective set when there is none)."""
    return loss_auc(curves["select"] if "select" in curves else curves["objective"])


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


def speedup_on_test_set(n_classes: int, uniform, learned) -> dict[str, Any]:
    """The headline numbers of a run, on the held-out test curves (one place for the convention)."""
    metrics = speedup_metrics(uniform["test"], learned["test"], n_classes)
    metrics["compression_ratio"]["set"] = "test"
    metrics["compression_ratio"]["units"] = "log base 2 of |V| in the numerator, loss in nats"
    return metrics


def run_metrics(result: PolicyResult, seconds: float) -> dict[str, Any]:
    """metrics.json: the kept policy's speed-up on the test set and the run's history."""
    history, uniform, learned = result.history, result.uniform_curves, result.learned_curves
    metrics = speedup_on_test_set(result.task.n_classes, uniform, learned)
    metrics.update(
        {
            "kept_epoch": result.kept.epoch,
            "lowest_objective_epoch": result.lowest_objective.epoch,
            "epochs_run": len(history),
            "objective_per_epoch": [h["objective"] for h in history],
            "select_auc_per_epoch": [h["select_auc"] for h in history],
            "test_acceleration_per_epoch": [h["test_acceleration"] for h in history],
            "rejected_epochs": [h["epoch"] for h in history if h.get("rejected")],
            "seconds_per_epoch": float(np.median([h["seconds"] for h in history]))
            if history
            else None,
            "seconds_total": seconds,
            "desired_set": {
                split: {
                    "acceleration_ratio": acceleration_ratio(uniform[split], learned[split]),
                    "auc_ratio": auc_ratio(uniform[split], learned[split]),
                }
                for split in ("objective", "select")
                if split in uniform
            },
            "stopped_early": result.stopped_early,
        }
    )
    steps = result.config.train.steps
    per_step = result.kept.policy.per_step(steps).double().cpu().numpy()
    corruption = corruption_summary(per_step, result.task.corrupted)
    if corruption is not None:
        metrics["corrupted_weight_ratio"] = corruption
    return metrics


def evaluate(run_dir: str | Path, task: Task | None = None) -> dict[str, Any]:
    """Retrain from theta_0 with a run folder's kept policy and recompute its test metrics."""
    from learnlaw.policy.runfolder import read_run

    record = read_run(Path(run_dir), "kept", task=task)
    task, config, learned = record.task, record.config, record.policy.policy
    steps, eta = config.train.steps, config.train.lr
    uniform = Policy.uniform(
        steps, task.n_train, learned.segment, task.theta0.dtype, task.theta0.device
    )
    u = run_policy(task, uniform, eta, steps).curves
    lcurves = run_policy(task, learned, eta, steps).curves
    return speedup_on_test_set(task.n_classes, u, lcurves)
