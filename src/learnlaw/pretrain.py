"""Ordinary pre-training: mini-batch AdamW on token sequences, read top to bottom (nanoGPT's way).

    result = pretrain(train_ids, test_ids, vocab_size, PretrainConfig(steps=1000))
    result.test_loss[-1]

A small pre-norm transformer (``learnlaw.tasks.transformer``) is trained on random mini-batches
(a fresh seeded permutation of the training sequences every epoch) with AdamW (weight decay on
matrices only), gradient clipping, and a linear warmup followed by a cosine or WSD decay from
``learnlaw.schedules``. Every ``eval_every`` steps the mean loss on all test sequences is
measured; the log is a CSV (``step,lr,loss,train_loss,test_loss``; ``loss`` is the test loss)
that ``learnlaw law fit`` reads. With ``out`` the run is a folder that resumes exactly after a
kill (``resume=True``): a checkpoint every ``checkpoint_every`` steps holds the parameters, the
optimiser's state and the log, without pickles.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from learnlaw.configfile import (
    apply_overrides,
    check_device,
    check_sections,
    fill,
    read_config_file,
    top_level_device,
    top_level_seed,
)
from learnlaw.errors import UserError
from learnlaw.files import (
    load_state,
    save_state,
    versions,
    write_csv,
    write_json,
)
from learnlaw.folders import claim_folder, unlock_folder
from learnlaw.schedules import Schedule
from learnlaw.tasks.transformer import TransformerConfig, count_params, init_params, sequence_losses

CHECKPOINT_FORMAT = "learnlaw.pretrain-checkpoint"
FORMAT = "learnlaw.pretrain"


@dataclass
class ModelConfig:
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    embedding_std: float = 0.02

    def validate(self) -> None:
        for key in ("d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, key) <= 0:
                raise UserError(f"model.{key} = {getattr(self, key)}: must be positive")
        if self.d_model % self.n_heads:
            raise UserError(f"model.d_model = {self.d_model} must be divisible by model.n_heads")
        if not self.embedding_std > 0:
            raise UserError(f"model.embedding_std = {self.embedding_std}: must be positive")


@dataclass
class TrainingConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3  # peak learning rate
    min_lr: float = 3e-4  # reached at the last step
    warmup: int = 50
    schedule: str = "cosine"  # cosine or wsd
    decay_frac: float = 0.2  # wsd: the share of the steps spent decaying
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0: no clipping
    eval_every: int = 25
    checkpoint_every: int = 100  # a multiple of eval_every

    def validate(self) -> None:
        for key in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            if getattr(self, key) <= 0:
                raise UserError(f"train.{key} = {getattr(self, key)}: must be positive")
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            raise UserError(
                f"train.lr = {self.lr}, train.min_lr = {self.min_lr}: need 0 <= min_lr <= lr, lr > 0"
            )
        if not 0 <= self.warmup < self.steps:
            raise UserError(f"train.warmup = {self.warmup}: must be in [0, train.steps)")
        if self.schedule not in ("cosine", "wsd"):
            raise UserError(f"train.schedule = {self.schedule!r}: expected cosine or wsd")
        if not 0 < self.decay_frac <= 1:
            raise UserError(f"train.decay_frac = {self.decay_frac}: must be in (0, 1]")
        if self.checkpoint_every % self.eval_every:
            raise UserError(
                f"train.checkpoint_every = {self.checkpoint_every}: must be a multiple of "
                f"train.eval_every = {self.eval_every}"
            )
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1) or self.weight_decay < 0:
            raise UserError("train.beta1, train.beta2 must be in [0, 1), train.weight_decay >= 0")
        if self.grad_clip < 0:
            raise UserError(f"train.grad_clip = {self.grad_clip}: must be >= 0")

    def schedule_object(self) -> Schedule:
        if self.schedule == "wsd":
            return Schedule.wsd(
                self.lr,
                self.steps,
                final=self.min_lr,
                warmup=self.warmup,
                decay_frac=self.decay_frac,
            )
        return Schedule.cosine(self.lr, self.steps, final=self.min_lr, warmup=self.warmup)


@dataclass
class PretrainConfig:
    seed: int = 0
    device: str = "cpu"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()
        check_device(self.device)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_pretrain_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> PretrainConfig:
    """A pre-training config from TOML (sections [model], [train]; keys seed, device)."""
    raw, where = read_config_file(path) if path is not None else ({}, "defaults")
    apply_overrides(raw, overrides)
    check_sections(raw, {"seed", "device", "model", "train"}, where)
    seed, device = top_level_seed(raw, where), top_level_device(raw, where)
    config = PretrainConfig(
        seed=seed,
        device=device,
        model=fill(ModelConfig, raw.get("model", {}), where, "model"),
        train=fill(TrainingConfig, raw.get("train", {}), where, "train"),
    )
    config.validate()
    return config


@dataclass
class PretrainResult:
    config: PretrainConfig
    steps: np.ndarray  # the evaluated steps
    lr: np.ndarray  # the learning rate at those steps
    train_loss: np.ndarray  # mean mini-batch loss since the previous evaluation
    test_loss: np.ndarray  # mean loss on all test sequences
    params: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    out: Path | None = None


def batch_indices(step: int, batch: int, n: int, seed: int) -> np.ndarray:
    """The sequences of mini-batch ``step``: a fresh seeded permutation every epoch, read in order
    (a function of the step alone, so a resumed run sees the same batches)."""
    pos = np.arange(step * batch, (step + 1) * batch)
    out = np.empty(batch, dtype=np.int64)
    for epoch in np.unique(pos // n):
        mask = pos // n == epoch
        out[mask] = np.random.default_rng([seed, int(epoch)]).permutation(n)[pos[mask] % n]
    return out


@torch.no_grad()
def mean_loss(params, seqs: torch.Tensor, model: TransformerConfig, chunk: int = 256) -> float:
    total = sum(
        float(sequence_losses(params, seqs[a : a + chunk], model).sum())
        for a in range(0, len(seqs), chunk)
    )
    return total / len(seqs)


def pretrain(
    train: np.ndarray | list[list[int]],
    test: np.ndarray | list[list[int]],
    vocab_size: int,
    config: PretrainConfig | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
    data: dict[str, Any] | None = None,
) -> PretrainResult:
    """Pre-train on ``train`` (sequences x length token ids: an integer array or equally long
    lists), evaluating on ``test``.

    ``data`` describes the dataset for config.json. With ``out``: a new or empty folder (or
    this run's own with ``resume=True``) receives config.json, curve.csv, model.npz, loss.png
    and metrics.json, and a checkpoint to resume from."""
    config = config or PretrainConfig()
    config.validate()
    train, test = _check_data(train, test, vocab_size)
    tc, mc = config.train, config.model
    device = torch.device(config.device)
    seq_len = train.shape[1]
    model = TransformerConfig(
        vocab_size, seq_len, mc.d_model, mc.n_layers, mc.n_heads, mc.d_ff, mc.embedding_std
    )
    params = init_params(model, torch.Generator().manual_seed(config.seed))
    params = {k: v.to(device).requires_grad_(True) for k, v in params.items()}
    decay = [p for p in params.values() if p.ndim >= 2]
    no_decay = [p for p in params.values() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tc.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tc.lr,
        betas=(tc.beta1, tc.beta2),
    )
    lrs = tc.schedule_object().values(tc.steps + 1)
    train_t = torch.as_tensor(train, dtype=torch.long, device=device)
    test_t = torch.as_tensor(test, dtype=torch.long, device=device)
    log: dict[str, list[float]] = {"step": [], "lr": [], "train_loss": [], "test_loss": []}
    folder = _Folder.open(Path(out), config, data, resume) if out is not None else None
    start_step, seconds = 0, 0.0
    try:
        if folder is not None and resume:
            start_step, seconds, log = folder.restore(params, opt)
        bar = tqdm(
            total=tc.steps,
            initial=start_step,
            desc="pre-training",
            unit="step",
            disable=True if quiet else None,
            dynamic_ncols=True,
        )
        began = time.perf_counter() - seconds
        running, counted = 0.0, 0
        for step in range(start_step, tc.steps + 1):
            idx = torch.as_tensor(batch_indices(step, tc.batch_size, len(train), config.seed))
            loss = sequence_losses(params, train_t[idx.to(device)], model).mean()
            # a resumed run's first step was logged (and its batch counted) before the kill
            fresh = not (resume and step == start_step)
            if fresh:
                running, counted = running + float(loss.detach()), counted + 1
            if fresh and (step % tc.eval_every == 0 or step == tc.steps):
                log["step"].append(step)
                log["lr"].append(float(lrs[step]))
                log["train_loss"].append(running / counted)
                log["test_loss"].append(mean_loss(params, test_t, model))
                running, counted = 0.0, 0
                bar.set_postfix(test=f"{log['test_loss'][-1]:.3f}")
                if not math.isfinite(log["test_loss"][-1]):
                    raise UserError(f"pre-training diverged at step {step}: lower train.lr")
                if folder is not None and step % tc.checkpoint_every == 0 and step < tc.steps:
                    folder.checkpoint(step, params, opt, log, time.perf_counter() - began)
            if step == tc.steps:
                break
            for group in opt.param_groups:
                group["lr"] = float(lrs[step])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(list(params.values()), tc.grad_clip)
            opt.step()
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - began
        final = {k: v.detach() for k, v in params.items()}
        metrics = {
            "final_test_loss": log["test_loss"][-1],
            "min_test_loss": min(log["test_loss"]),
            "final_train_loss": log["train_loss"][-1],
            "steps": tc.steps,
            "tokens": tc.steps * tc.batch_size * seq_len,
            "train_sequences": len(train),
            "epochs": tc.steps * tc.batch_size / len(train),
            "test_sequences": len(test),
            "parameters": count_params(final),
            "seconds": seconds,
            "seed": config.seed,
        }
        result = PretrainResult(
            config,
            np.asarray(log["step"]),
            np.asarray(log["lr"]),
            np.asarray(log["train_loss"]),
            np.asarray(log["test_loss"]),
            final,
            metrics,
            folder.path if folder is not None else None,
        )
        if folder is not None:
            folder.finish(result)
        return result
    finally:
        if folder is not None:
            folder.close()


def load_dataset(
    path: Path, tokenizer_path: Path, seq_len: int | None = None
) -> tuple[np.ndarray, int]:
    """Sequences of a JSON-lines file and the vocabulary size: lines with ``ids`` are used as
    they are; otherwise the texts (``text`` field) are tokenised with the tokenizer and cut into
    sequences of ``seq_len`` tokens (default 64)."""
    from learnlaw.tasks.corpus import TextCorpus, read_sequences

    if not path.is_file():  # before the tokenizer beside it, which is then missing too
        what = "is a folder, expected a JSON-lines file" if path.is_dir() else "no such file"
        raise UserError(f"{path}: {what}")
    if not tokenizer_path.exists():
        raise UserError(f"{tokenizer_path}: no tokenizer (give --tokenizer FILE)")
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception:  # the tokenizers library raises its own exception types
        raise UserError(f"{tokenizer_path}: not a readable tokenizer file") from None
    vocab = tokenizer.get_vocab_size()
    if _has_ids(path):
        ids = read_sequences(path, vocab)
    else:
        corpus = TextCorpus(path, tokenizer, seq_len or 64)
        blocks = [b.ids for b in corpus.blocks(4096)]
        if not blocks:
            raise UserError(f"{path}: no sequences of {seq_len or 64} tokens in the text")
        ids = np.concatenate(blocks)
    if seq_len is not None and ids.shape[1] != seq_len:
        raise UserError(
            f"{path}: sequences of {ids.shape[1]} tokens; the training data has {seq_len}"
        )
    return ids, vocab


def _has_ids(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    return isinstance(obj, dict) and "ids" in obj
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON lines ({type(exc).__name__})") from None
    raise UserError(f"{path}: empty (no sequences)")


def _check_data(train, test, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The training and test token ids as arrays (a nested list is taken as one), or a
    one-line refusal."""
    checked = []
    for name, given in (("training", train), ("test", test)):
        try:
            ids = np.asarray(given)
        except ValueError:  # numpy refuses ragged nested lists
            raise UserError(f"{name} data: sequences of different lengths") from None
        if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] < 2:
            raise UserError(
                f"{name} data: expected a non-empty (sequences x length >= 2) array of token "
                f"ids, got a {type(given).__name__} of shape {ids.shape}"
            )
        if not np.issubdtype(ids.dtype, np.integer):
            raise UserError(f"{name} data: expected integer token ids, got dtype {ids.dtype}")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise UserError(f"{name} data: token ids outside 0..{vocab_size - 1}")
        checked.append(ids)
    train, test = checked
    if train.shape[1] != test.shape[1]:
        raise UserError(
            f"training sequences have {train.shape[1]} tokens, test sequences {test.shape[1]}"
        )
    return train, test


def steps_to_reach(steps: np.ndarray, losses: np.ndarray, target: float) -> float | None:
    """The first step at which the loss curve reaches ``target`` (linear between evaluations),
    or None if it never does."""
    below = np.flatnonzero(np.asarray(losses) <= target)
    if not len(below):
        return None
    i = int(below[0])
    if i == 0:
        return float(steps[0])
    l0, l1 = losses[i - 1], losses[i]
    return float(steps[i - 1] + (steps[i] - steps[i - 1]) * (l0 - target) / (l0 - l1))


# ---- the run folder --------------------------------------------------------------------------
class _Folder:
    """config.json, checkpoint.npz, curve.csv, model.npz, loss.png, metrics.json (last)."""

    OWNED = ("config.json", "checkpoint.npz", "curve.csv", "model.npz", "loss.png", "metrics.json")

    def __init__(self, path: Path, fd: int, run_id: str) -> None:
        self.path, self.fd, self.run_id = path, fd, run_id

    @classmethod
    def open(cls, path: Path, config: PretrainConfig, data, resume: bool) -> _Folder:
        record = {
            "format": FORMAT,
            "config": config.to_json(),
            "seed": config.seed,
            "data": data or {},
            "versions": versions(),
        }
        fd, saved = claim_folder(path, record, resume=resume, what="pre-training run")
        run_id = saved["run_id"]
        return cls(path, fd, run_id)

    def checkpoint(self, step, params, opt, log, seconds) -> None:
        state = [opt.state[p] for group in opt.param_groups for p in group["params"]]
        save_state(
            self.path / "checkpoint.npz",
            {
                "format": CHECKPOINT_FORMAT,
                "run_id": self.run_id,
                "step": step,
                "seconds": seconds,
                "params": {k: v.detach() for k, v in params.items()},
                "adam": [  # empty before the first update
                    {
                        "exp_avg": s["exp_avg"],
                        "exp_avg_sq": s["exp_avg_sq"],
                        "step": float(s["step"]),
                    }
                    if s
                    else None
                    for s in state
                ],
                "log": log,
            },
        )

    def restore(self, params, opt):
        file = self.path / "checkpoint.npz"
        if (self.path / "metrics.json").exists():
            raise UserError(
                f"{self.path}: the run is finished (its outputs are there); nothing to resume. "
                "For a new run choose another --out (out=)"
            )
        if not file.exists():
            raise UserError(
                f"{file}: no checkpoint to resume from (the run stopped before its first, at "
                "train.checkpoint_every steps); start it again in another --out (out=)"
            )
        blob = load_state(file)
        if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{file}: not a learnlaw pre-training checkpoint")
        if blob.get("run_id") != self.run_id:
            raise UserError(f"{file}: belongs to another run than config.json")
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(blob["params"][k].to(p.device))
        ordered = [p for group in opt.param_groups for p in group["params"]]
        for p, s in zip(ordered, blob["adam"]):
            if s is None:
                continue
            opt.state[p] = {
                "step": torch.tensor(s["step"], dtype=torch.float32),
                "exp_avg": s["exp_avg"].to(p.device, p.dtype),
                "exp_avg_sq": s["exp_avg_sq"].to(p.device, p.dtype),
            }
        log = {k: list(v) for k, v in blob["log"].items()}
        return int(blob["step"]), float(blob["seconds"]), log

    def finish(self, result: PretrainResult) -> None:
        from learnlaw.plots import save_figure
        from learnlaw.plots.curves import plot_pretrain_curve

        write_curve_csv(self.path / "curve.csv", result)
        save_state(
            self.path / "model.npz", {"params": result.params, "config": result.config.to_json()}
        )
        save_figure(
            plot_pretrain_curve(result.steps, result.train_loss, result.test_loss),
            self.path / "loss.png",
        )
        write_json(self.path / "metrics.json", result.metrics)
        (self.path / "checkpoint.npz").unlink(missing_ok=True)

    def close(self) -> None:
        unlock_folder(self.fd)


def write_curve_csv(path: str | Path, result: PretrainResult) -> Path:
    """``step,lr,loss,train_loss,test_loss`` (``loss`` = the test loss, what the laws fit)."""
    return write_csv(
        path,
        ("step", "lr", "loss", "train_loss", "test_loss"),
        (result.steps, result.lr, result.test_loss, result.train_loss, result.test_loss),
    )
