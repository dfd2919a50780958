"""The run folder of a policy run: every file in it is written, read and validated here.

    config.json            resolved configuration, run id, seed, versions, task facts, command
    checkpoint.npz         everything a resumed run needs (no pickles: arrays + JSON)
    policy.npz             the kept policy; policy_objective.npz the lowest-objective one
    curves.csv, metrics.json, loss_curves.png, objective.png, policy_heatmap.png
    analysis*.json, report*.html, analysis*/      written by ``learnlaw.analysis``
    .learnlaw.lock         held (an OS file lock) for the life of a run

Rules that keep other people's files safe: a run starts only in a folder that is new, empty
or (``overwrite=True``) a learnlaw run folder, and then deletes only the files listed above;
it resumes only its own run (the checkpoint carries the run id of ``config.json``) with the
same configuration (``outer.save_every`` aside), except that a run whose outer step does not
decay may be extended to more outer epochs; two runs never write into one folder at the same time.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.files import (
    atomic_write,
    json_line,
    load_state,
    remove_partial_writes,
    save_state,
    versions,
    write_csv,
    write_json,
    written_by_learnlaw,
)
from learnlaw.folders import LOCK, enter_folder, read_json_object, unlock_folder
from learnlaw.policy.config import PolicyConfig, config_from_json
from learnlaw.policy.engine import Policy
from learnlaw.policy.result import POLICIES, LearnedPolicy, PolicyResult
from learnlaw.tasks import Task, build_task
from learnlaw.tasks.registry import DTYPES

RUN_FORMAT = "learnlaw.run"
RUN_FORMAT_VERSIONS = (1, 2)  # 2 added the run id
CHECKPOINT = "checkpoint.npz"
LEGACY_CHECKPOINT = "checkpoint.pt"  # learnlaw 0.1: torch.save, never unpickled
CHECKPOINT_FORMAT = "learnlaw.policy-checkpoint"
NUMBER_FREE_KEYS = frozenset({"outer.save_every"})  # may change on resume: no number depends on it
POLICY_FILES = {"kept": "policy.npz", "objective": "policy_objective.npz"}
PLOTS = ("loss_curves.png", "objective.png", "policy_heatmap.png")
RUN_FILES = (
    "config.json",
    "metrics.json",
    "curves.csv",
    CHECKPOINT,
    LEGACY_CHECKPOINT,
    *POLICY_FILES.values(),
    *PLOTS,
)


def analysis_names(which: str) -> tuple[str, str, str]:
    """The analysis JSON, report page and figure folder of an analysis of policy ``which``."""
    suffix = "" if which == "kept" else f"-{which}"
    return f"analysis{suffix}.json", f"report{suffix}.html", f"analysis{suffix}"


def _owned_names() -> set[str]:
    names = set(RUN_FILES)
    for which in POLICIES:
        names.update(analysis_names(which))
    return names


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds a learnlaw policy run (its config.json says so)."""
    try:
        obj = read_json_object(path / "config.json", "config.json")
    except (FileNotFoundError, UserError):
        return False
    return obj.get("format") == RUN_FORMAT


def saved_config(path: Path) -> PolicyConfig:
    """The configuration a run folder was made with (for resuming it without repeating it)."""
    return _config_of(_read_record(path), path / "config.json")


def _read_record(path: Path) -> dict[str, Any]:
    """config.json of a run folder, checked (format, version, configuration)."""
    file = path / "config.json"
    try:
        saved = read_json_object(file, "run configuration")
    except FileNotFoundError:
        raise UserError(f"{path}: not a learnlaw run folder (no config.json)") from None
    if saved.get("format") != RUN_FORMAT or saved.get("format_version") not in RUN_FORMAT_VERSIONS:
        raise UserError(
            f"{file}: run format {saved.get('format')!r} version {saved.get('format_version')!r}; "
            f"this learnlaw reads {RUN_FORMAT} versions {', '.join(map(str, RUN_FORMAT_VERSIONS))}"
        )
    if not isinstance(saved.get("config"), dict):
        raise UserError(f'{file}: damaged configuration (no "config" object)')
    return saved


def _config_of(saved: dict[str, Any], file: Path) -> PolicyConfig:
    try:
        return config_from_json(saved["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(
            f"{file}: damaged configuration ({exc.__class__.__name__}: {exc})"
        ) from None


class RunFolder:
    """A run folder held by one running run (a context manager that releases its lock)."""

    def __init__(self, path: Path, run_id: str, lock_fd: int, command: str = "") -> None:
        self.path = path
        self.run_id = run_id
        self._lock_fd = lock_fd
        self.command = command

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        path: Path,
        config: PolicyConfig,
        task: Task,
        *,
        resume: bool,
        overwrite: bool = False,
        command: str = "",
        processes: int = 1,
    ) -> RunFolder:
        """Open ``path`` for a run: create it, or resume the run in it; see the module rules.
        ``processes`` (the run's world size) is recorded for information only."""
        path, lock_fd, give_up = enter_folder(path, "run")
        try:
            remove_partial_writes(path, earlier_names=_owned_names())
            if resume:
                saved = _read_record(path)
                _check_same_task(path, saved, task)
                run_id = saved.get("run_id") or ""
            else:
                _check_can_start(path, overwrite)
                run_id = uuid.uuid4().hex
                write_json(
                    path / "config.json",
                    {
                        "format": RUN_FORMAT,
                        "format_version": RUN_FORMAT_VERSIONS[-1],
                        "run_id": run_id,
                        "config": config.to_json(),
                        "seed": config.seed,
                        "versions": versions(),
                        "task": task.describe(),
                        "command": command,
                        "processes": processes,
                    },
                )
        except BaseException:
            give_up()
            raise
        return cls(path, run_id, lock_fd, command)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc) -> None:
        unlock_folder(self._lock_fd)

    # ---- the checkpoint --------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_state(
            self.path / CHECKPOINT,
            {"format": CHECKPOINT_FORMAT, "run_id": self.run_id, "state": state},
        )

    def load_checkpoint(self, task: Task, config: PolicyConfig) -> dict[str, Any]:
        """The saved state of this run, checked against the run and the configuration (an
        extension to more outer epochs, or a new save_every, is recorded in config.json once the
        state is read)."""
        state = read_checkpoint(self.path, task, config, self.run_id)
        _record_resume(self.path, _read_record(self.path), config, self.command)
        return state

    # ---- outputs ---------------------------------------------------------------------------
    def write_outputs(self, result: PolicyResult) -> None:
        """policy.npz, policy_objective.npz, curves.csv, metrics.json and the plots."""
        from learnlaw.plots import save_figure
        from learnlaw.plots.policy import plot_objective, plot_policy_heatmap, plot_run_curves

        out, steps = self.path, result.config.train.steps
        for which in POLICIES:
            learned = result.policy(which)
            if learned.policy.weights is not None:
                save_policy(out / POLICY_FILES[which], learned.policy, steps)
        write_curves_csv(out / "curves.csv", result.uniform_curves, result.learned_curves)
        write_json(out / "metrics.json", result.metrics)
        curves = plot_run_curves(result.uniform_curves, result.learned_curves, result.metrics)
        save_figure(curves, out / "loss_curves.png")
        save_figure(plot_objective(result.history, result.kept.epoch), out / "objective.png")
        heatmap = plot_policy_heatmap(
            result.kept.policy.per_step(steps).float().cpu().numpy(), groups=result.task.corrupted
        )
        save_figure(heatmap, out / "policy_heatmap.png")


def read_checkpoint(
    path: Path, task: Task, config: PolicyConfig, run_id: str | None = None
) -> dict[str, Any]:
    """The saved state of the run in ``path`` (its whole policy), checked against the run
    (``run_id``, by default the one in config.json) and the configuration. Reads only: the
    ranks of a data-parallel run other than rank 0 resume from it without the folder's lock."""
    file = path / CHECKPOINT
    saved = _read_record(path)
    run_id = (saved.get("run_id") or "") if run_id is None else run_id
    if file.exists():
        blob = load_state(file)
        if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{file}: not a learnlaw policy checkpoint")
        if blob.get("run_id") != run_id:
            raise UserError(
                f"{file}: belongs to another run (its run id is not the one in config.json); "
                "a checkpoint resumes only the run that wrote it"
            )
        state = blob.get("state")
    elif (path / LEGACY_CHECKPOINT).exists():
        raise UserError(
            f"{path / LEGACY_CHECKPOINT}: a checkpoint of learnlaw 0.1 (a pickle, which "
            "this version does not open: a pickle can run code); resume it with the learnlaw "
            "that made it, or start the run again in a new folder"
        )
    else:
        raise UserError(
            f"{file}: no checkpoint to resume from; start the run again in a new folder, "
            "without resuming (--resume, resume=True)"
        )
    _check_same_task(path, saved, task)  # every rank reads this: each refuses another task
    diffs = _differences(_with_defaults(saved["config"], config), config.to_json())
    if diffs:
        hint = (
            '; only a run with outer.decay = "none" can be extended to more epochs'
            if diffs == ["outer.epochs"]
            else ""
        )
        raise UserError(
            f"{file}: made with a different configuration ({', '.join(diffs)} differ){hint}"
        )
    _check_state(state, file, task, config)
    _reopen_last_epoch(state, config)
    device, dtype = task.theta0.device, task.theta0.dtype
    return _to(state, device, dtype)


# ---- the rules -----------------------------------------------------------------------------
TASK_FACTS = ("sizes", "parameters", "n_classes")  # of Task.describe(), in config.json


def _check_same_task(path: Path, saved: dict[str, Any], task: Task) -> None:
    """Refuse a task other than the run's, by the facts config.json records (a task class
    rebuilt without the arguments it was made with would give other numbers silently)."""
    recorded = saved.get("task")
    if not isinstance(recorded, dict):
        return  # a folder that records no facts
    current = json.loads(json_line(task.describe()))  # as config.json holds it
    for key in TASK_FACTS:
        if key in recorded and recorded[key] != current.get(key):
            raise UserError(
                f"{path}: made with another task ({key} {recorded[key]} in config.json, "
                f"{current.get(key)} in the task given or rebuilt); give the run's own task "
                "(task=...)"
            )


def _check_can_start(path: Path, overwrite: bool) -> None:
    entries = [p for p in path.iterdir() if p.name != LOCK]
    if not entries:
        return
    if is_run_folder(path):
        # only config.json: a run refused before its first save, nothing to keep or resume
        if not overwrite and {p.name for p in entries} != {"config.json"}:
            raise UserError(
                f"{path} already holds a learnlaw run; continue it with --resume "
                "(resume=True), or choose another --out"
            )
        owned = _owned_names()
        for p in entries:
            if p.name in owned:
                _remove(p)
        return
    raise UserError(
        f"{path}: the folder is not empty and is not a learnlaw run; choose a new or empty --out"
    )


def _remove(p: Path) -> None:
    """Delete a file learnlaw writes; a figure folder only holds learnlaw's PNGs."""
    if p.is_dir() and not p.is_symlink():
        for child in p.iterdir():
            if child.suffix == ".png" and child.is_file() and written_by_learnlaw(child):
                child.unlink()
        try:
            p.rmdir()
        except OSError:
            pass  # something else is inside: leave the folder (and that) alone
    else:
        p.unlink(missing_ok=True)


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Config keys that differ. The number of outer epochs counts, unless the run is extended:
    more epochs of an outer step that does not decay (a linear decay depends on the number of
    epochs, so such a run can only be resumed)."""
    diffs = []
    for section in set(saved) | set(current):
        a, b = saved.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{section}.{k}" for k in set(a) | set(b) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(section)
    diffs = [key for key in diffs if key not in NUMBER_FREE_KEYS]
    if diffs == ["outer.epochs"] and _extends(saved["outer"], current["outer"]):
        return []
    return sorted(diffs)


def _extends(saved_outer: dict[str, Any], outer: dict[str, Any]) -> bool:
    """Whether ``outer`` continues the saved run to more epochs with the same outer steps."""
    return outer.get("decay") == "none" and outer["epochs"] > saved_outer["epochs"]


def _record_resume(path: Path, saved: dict[str, Any], config: PolicyConfig, command: str):
    """config.json of a resumed run: the configuration it goes on with, where that extends the
    run (with, in ``extensions``, each extension's epochs before and after and its command) or
    changes a key no number depends on (``outer.save_every``)."""
    current = config.to_json()
    before = _with_defaults(saved["config"], config)
    if _differences(before, current) or before == current:
        return  # the same run as it was (a different one is refused by read_checkpoint)
    record = {**saved, "config": current}
    if before["outer"]["epochs"] != current["outer"]["epochs"]:
        prior = saved.get("extensions")
        entry = {
            "from_epochs": before["outer"]["epochs"],
            "to_epochs": current["outer"]["epochs"],
            "command": command,
        }
        record["extensions"] = [*(prior if isinstance(prior, list) else []), entry]
    write_json(path / "config.json", record)


def _reopen_last_epoch(state: dict[str, Any], config: PolicyConfig) -> None:
    """A finished run's last epoch only evaluated its policy; extended, the run takes an outer
    step there instead, so that it goes on exactly as a run made for more epochs would. (The
    evaluation-only last epoch is the one record without a ``step_size``: every epoch that
    steps records one.)"""
    history = state["history"]
    last = history[-1] if history else None
    if last is not None and "step_size" not in last and last["epoch"] < config.outer.epochs:
        state["history"] = history[:-1]
        state["epoch"] = int(last["epoch"])
        state["seconds"] = float(state["seconds"]) - float(last["seconds"])


def _with_defaults(saved: dict[str, Any], config: PolicyConfig) -> dict[str, Any]:
    """A saved config with the keys added to learnlaw since it was written, at their defaults
    (so a run from an earlier version resumes when nothing the user chose differs)."""
    from dataclasses import asdict

    defaults = {"train": asdict(type(config.train)()), "outer": asdict(type(config.outer)())}
    if config.task_options is not None:
        defaults[config.section()] = asdict(type(config.task_options)())
    return {
        key: {**defaults[key], **value} if key in defaults and isinstance(value, dict) else value
        for key, value in saved.items()
    }


def _check_state(state: Any, file: Path, task: Task, config: PolicyConfig) -> None:
    keys = ("epoch", "weights", "uniform_curves", "kept", "lowest", "optimizer", "history")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise UserError(f"{file}: damaged checkpoint (missing fields)")
    rows = -(-config.train.steps // config.outer.segment)
    weights = state["weights"]
    if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (rows, task.n_train):
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else None
        raise UserError(
            f"{file}: the saved policy has shape {shape}, but this run needs ({rows}, {task.n_train})"
        )


def _to(obj: Any, device, dtype) -> Any:
    """Every floating tensor of a loaded state on the run's device and dtype."""
    if isinstance(obj, dict):
        return {k: _to(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to(v, device, dtype) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.to(device=device, dtype=dtype)
    return obj


# ---- policies and curves -----------------------------------------------------------------
def save_policy(path: Path, policy: Policy, steps: int) -> None:
    w = policy.weights.float().cpu().numpy()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, policy=w, segment=policy.segment, steps=steps)

    atomic_write(path, write)


def load_policy(path: Path) -> tuple[np.ndarray, int, int]:
    """(weights rows x N, segment, steps) of a policy file, checked."""
    try:
        with np.load(path, allow_pickle=False) as data:
            weights, segment, steps = data["policy"], int(data["segment"]), int(data["steps"])
    except FileNotFoundError:
        raise UserError(f"{path}: no saved policy") from None
    except Exception as exc:  # truncated zip, missing keys, pickled content refused
        raise UserError(
            f"{path}: not a readable learnlaw policy file ({type(exc).__name__})"
        ) from None
    ok = weights.ndim == 2 and np.all(np.isfinite(weights)) and np.all(weights >= 0)
    if not ok or segment < 1 or steps < 1 or weights.shape[0] != -(-steps // segment):
        raise UserError(f"{path}: damaged policy file (weights, segment or steps are inconsistent)")
    if np.any(weights.sum(axis=1) <= 0):
        raise UserError(f"{path}: damaged policy file (a row of weights sums to zero)")
    return weights, segment, steps


def write_curves_csv(
    path: Path, uniform: dict[str, np.ndarray], learned: dict[str, np.ndarray]
) -> None:
    splits = [s for s in ("objective", "select", "test") if s in uniform]
    header = ["step"] + [f"{s}_{p}" for s in splits for p in ("uniform", "learned")]
    curves = [c[s] for s in splits for c in (uniform, learned)]
    write_csv(path, header, [range(len(uniform["objective"])), *curves])


# ---- reading a finished run ----------------------------------------------------------------
@dataclass
class RunRecord:
    """What analysis and evaluation need from a run folder."""

    path: Path
    config: PolicyConfig
    task: Task
    policy: LearnedPolicy
    metrics: dict[str, Any]


def read_metrics(path: Path) -> dict[str, Any]:
    """metrics.json of a run folder ({} when missing or damaged: the values are optional)."""
    try:
        return read_json_object(path / "metrics.json", "metrics.json")
    except (FileNotFoundError, UserError):
        return {}


def policy_epoch(metrics: dict[str, Any], which: str) -> int | None:
    key = "lowest_objective_epoch" if which == "objective" else "kept_epoch"
    value = metrics.get(key, metrics.get("best_epoch") if which == "kept" else None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_run(path: Path, which: str = "kept", task: Task | None = None) -> RunRecord:
    """The config, task and learned policy ``which`` of a finished run folder (one-line errors
    otherwise). ``task`` replaces rebuilding the task from config.json (needed for a task whose
    class a config cannot import, e.g. one defined in a notebook)."""
    path = Path(path)
    if which not in POLICIES:
        raise UserError(f"--policy {which}: expected one of {', '.join(POLICIES)}")
    if not path.is_dir():
        what = "is a file, expected a run folder" if path.exists() else "no such run folder"
        raise UserError(f"{path}: {what}")
    saved = _read_record(path)
    wanted = POLICY_FILES[which]
    if not (path / wanted).exists():
        if (path / CHECKPOINT).exists() or (path / LEGACY_CHECKPOINT).exists():
            why = (
                "the run is unfinished or the file was deleted; finish the run or rewrite its "
                f"files from the checkpoint with 'learnlaw policy optimize --resume --out {path}' "
                "(optimize(..., out=path, resume=True))"
            )
        elif which == "objective" and (path / POLICY_FILES["kept"]).exists():
            why = (
                "deleted, or the run predates it, and there is no checkpoint to rewrite it from; "
                "analyse the kept policy with --policy kept"
            )
        else:
            why = "deleted, and there is no checkpoint to rewrite it from"
        raise UserError(f"{path}: no {wanted} ({why})")
    config = _config_of(saved, path / "config.json")
    weights, segment, steps = load_policy(path / wanted)
    if task is None:
        t = config.train
        task = build_task(config.task, config.task_options, config.seed, t.dtype, t.device)
    _check_same_task(path, saved, task)
    task = task.for_run(autocast=DTYPES.get(config.train.autocast))  # the run's precision
    if steps != config.train.steps or weights.shape[1] != task.n_train:
        raise UserError(
            f"{path / wanted}: shape {weights.shape} does not match the run's configuration"
        )
    w = torch.as_tensor(weights, dtype=task.theta0.dtype, device=task.theta0.device)
    policy = Policy(w / w.sum(1, keepdim=True), segment)  # undo float32 rounding of the rows
    metrics = read_metrics(path)
    return RunRecord(
        path, config, task, LearnedPolicy(which, policy_epoch(metrics, which), policy), metrics
    )
