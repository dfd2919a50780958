"""Step 1 of data selection: the optimal-learning problem solved on a small proxy.

N sequences are drawn from the corpus (a seeded uniform sample, one streaming pass) and a small
transformer is trained on them by full-batch gradient descent under a data policy, which
``learnlaw.policy.optimize`` optimises by exact hypergradients to minimise the loss area on the
desired set (SPEC A4, A8). By default the policy is *time-shared*: one weight vector for all
steps (``outer.segment = steps``), so the converged weight of a sequence is its score,
``log(N * gamma_n)`` (0 for the uniform weight). ``segment > 0`` learns a time-resolved policy
(one row per ``segment`` steps) and scores a sequence by its mean weight over the run.

The proxy language model whose features the data scorer reads is the same transformer trained
conventionally (uniform weights) on the proxy sample.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.policy import OuterConfig, PolicyConfig, TrainConfig, optimize
from learnlaw.policy.engine import Policy, run_policy
from learnlaw.policy.speedup import corruption_summary
from learnlaw.tasks.base import objective_size
from learnlaw.tasks.lm import SequenceLMTask
from learnlaw.tasks.registry import DTYPES
from learnlaw.tasks.transformer import TransformerConfig


@dataclass
class ProxyConfig:
    n_sequences: int = 1024  # N: proxy sequences drawn from the corpus
    steps: int = 100  # T: full-batch gradient-descent steps of the proxy run
    lr: float = 0.3  # eta of the proxy run
    epochs: int = 6  # outer epochs of the policy optimisation
    method: str = "eg"  # outer steps: eg (exponentiated gradient) or pgd
    max_change: float = 5.0  # largest weight change of the first outer step, in units of 1/N
    backtrack: bool = True  # retry a step that raised the objective at half the step
    segment: int = 0  # 0: time-shared (one weight vector); k: a policy row per k steps
    n_desired: int = 0  # desired sequences the proxy uses (0: all): each costs every step
    select_fraction: float = 0.25  # of the desired set: picks the kept outer epoch
    d_model: int = 32
    n_layers: int = 1
    n_heads: int = 4
    d_ff: int = 128
    embedding_std: float = 0.3
    warm_steps: int = 0  # AdamW steps on the proxy sample before the policy run (0: from init)
    warm_lr: float = 3e-3
    dtype: str = "float32"
    chunk_size: int = 0  # sequences per chunk in full-batch passes (0: all at once)

    def validate(self, section: str = "proxy") -> None:
        for key in ("n_sequences", "steps", "d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, key) <= 0:
                raise UserError(f"{section}.{key} = {getattr(self, key)}: must be positive")
        if self.n_sequences < 2:
            raise UserError(f"{section}.n_sequences = {self.n_sequences}: needs at least 2")
        if self.epochs < 1:
            raise UserError(f"{section}.epochs = {self.epochs}: must be at least 1")
        if not 0 < self.select_fraction < 1:
            raise UserError(
                f"{section}.select_fraction = {self.select_fraction}: must be in (0, 1)"
            )
        if self.n_desired < 0:
            raise UserError(f"{section}.n_desired = {self.n_desired}: must be >= 0 (0: all)")
        if self.warm_steps < 0 or not self.warm_lr > 0:
            raise UserError(f"{section}.warm_steps must be >= 0 and {section}.warm_lr positive")
        if self.segment < 0:
            raise UserError(f"{section}.segment = {self.segment}: must be >= 0 (0: time-shared)")
        if self.d_model % self.n_heads:
            raise UserError(
                f"{section}.d_model = {self.d_model} must be divisible by {section}.n_heads"
            )
        if self.dtype not in DTYPES:
            raise UserError(f"{section}.dtype = {self.dtype!r}: expected float64 or float32")
        self.policy_config(0, "cpu").validate()

    def policy_config(self, seed: int, device: str) -> PolicyConfig:
        return PolicyConfig(
            task="sequences",
            seed=seed,
            train=TrainConfig(steps=self.steps, lr=self.lr, device=device, dtype=self.dtype),
            outer=OuterConfig(
                epochs=self.epochs,
                method=self.method,
                lr="auto",
                max_change=self.max_change,
                decay="none" if self.backtrack else "linear",
                segment=self.segment or self.steps,
                backtrack=self.backtrack,
            ),
        )


@dataclass
class ProxyModel:
    """The proxy language model: a transformer's config and parameters (float32, CPU)."""

    config: TransformerConfig
    params: dict[str, torch.Tensor]

    def fingerprint(self) -> str:
        """A hash of the config and every parameter: a scorer names the model it was fitted on."""
        h = hashlib.sha256(json.dumps(self.config.to_json(), sort_keys=True).encode())
        for name in sorted(self.params):
            h.update(name.encode())
            h.update(self.params[name].detach().cpu().float().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def to_state(self) -> dict[str, Any]:
        return {"config": self.config.to_json(), "params": dict(self.params)}

    @classmethod
    def from_state(cls, state: Any, where: str) -> ProxyModel:
        try:
            config = TransformerConfig(**state["config"])
            params = {k: v.float() for k, v in state["params"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{where}: not a learnlaw proxy model") from None
        return cls(config, params)


@dataclass
class ProxySolution:
    indices: np.ndarray  # corpus index of every proxy sequence
    scores: np.ndarray  # log(N * weight): the learned per-sequence scores
    weights: np.ndarray  # rows x N: the kept policy
    model: ProxyModel
    metrics: dict[str, Any]


def sample_sequences(corpus, n: int, seed: int, block_size: int = 4096):
    """A uniform random sample of ``n`` sequences from a streamed corpus (bottom-n of seeded
    random keys, so one pass suffices); returns (indices, ids, sources, corpus length)."""
    rng = np.random.default_rng([seed, 2718])
    keys = np.zeros(0)
    idx = np.zeros(0, dtype=np.int64)
    ids: np.ndarray | None = None
    src = np.zeros(0, dtype=np.int32)
    total = 0
    for block in corpus.blocks(block_size):
        k = rng.random(len(block))
        keys = np.concatenate([keys, k])
        idx = np.concatenate([idx, np.arange(block.start, block.start + len(block))])
        ids = block.ids if ids is None else np.concatenate([ids, block.ids])
        src = np.concatenate([src, block.source])
        if len(keys) > n:
            keep = np.sort(np.argpartition(keys, n)[:n])
            keys, idx, ids, src = keys[keep], idx[keep], ids[keep], src[keep]
        total = block.start + len(block)
    if total == 0:
        raise UserError("corpus: no sequences (empty, or every file shorter than one sequence)")
    if total < n:
        raise UserError(
            f"corpus: {total} sequences, fewer than proxy.n_sequences = {n}; use a smaller proxy"
        )
    order = np.argsort(idx)
    return idx[order], ids[order], src[order], total


def solve_proxy(
    train: np.ndarray,
    desired: np.ndarray,
    vocab_size: int,
    config: ProxyConfig,
    seed: int,
    *,
    corrupted: np.ndarray | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    device: str = "cpu",
    quiet: bool = False,
) -> ProxySolution:
    """Optimise a data policy on the proxy sequences ``train`` against the ``desired`` sequences
    and return each sequence's score. With ``out``, the policy run is a resumable run folder."""
    config.validate()
    desired = desired[: config.n_desired or None]
    n_des = len(desired)
    n_obj = objective_size(n_des, config.select_fraction)
    if n_obj < 1 or n_obj >= n_des:
        raise UserError(
            f"the desired set ({n_des} sequences) is too small to split into objective and select"
        )
    seq_len = train.shape[1]
    model = TransformerConfig(
        vocab_size,
        seq_len,
        config.d_model,
        config.n_layers,
        config.n_heads,
        config.d_ff,
        config.embedding_std,
    )
    # the proxy's "test" set is its select part: the corpus-level test comes from pre-training
    parts = {
        "train": train,
        "objective": desired[:n_obj],
        "select": desired[n_obj:],
        "test": desired[n_obj:],
    }
    policy_config = config.policy_config(seed, device)
    task = SequenceLMTask(
        parts, model, seed, DTYPES[config.dtype], device, corrupted, config.chunk_size
    )
    if config.warm_steps:
        task.theta0 = _warm_start(task, train, desired[n_obj:], config, seed)
    result = optimize(task, policy_config, out=out, resume=resume, quiet=quiet)
    if result.stopped_early:  # pragma: no cover - no time budget is passed
        raise UserError("the proxy run stopped early")
    # the scores are the solution of the control problem on the proxy: the policy with the
    # lowest objective (the kept policy, chosen on the select part, may be the uniform one)
    solved = result.lowest_objective
    weights = solved.policy.weights.double().cpu().numpy()
    per_step = solved.policy.per_step(config.steps).double().cpu().numpy()
    scores = np.log(np.maximum(per_step.mean(axis=0) * len(train), 1e-300))
    uniform = Policy.uniform(config.steps, len(train), config.steps, task.theta0.dtype, device)
    theta = run_policy(task, uniform, config.lr, config.steps).final_theta
    params = {k: v.detach().float().cpu().clone() for k, v in task.unflatten(theta).items()}
    metrics = {
        key: result.metrics[key]
        for key in (
            "acceleration_ratio",
            "auc_ratio",
            "kept_epoch",
            "lowest_objective_epoch",
            "epochs_run",
            "seconds_total",
        )
        if key in result.metrics
    }
    metrics["objective_per_epoch"] = result.metrics.get("objective_per_epoch")
    metrics["scores_from"] = f"the lowest-objective policy (outer epoch {solved.epoch})"
    metrics["policy"] = "time-shared" if not config.segment else f"rows of {config.segment} steps"
    metrics["proxy_test_set"] = "the select part of the desired set"
    corruption = corruption_summary(per_step, corrupted)
    if corruption is not None:
        metrics["corrupted_weight_ratio"] = corruption["mean"]
    metrics["config"] = asdict(config)
    return ProxySolution(np.arange(len(train)), scores, weights, ProxyModel(model, params), metrics)


def _warm_start(task: SequenceLMTask, train, held, config: ProxyConfig, seed: int) -> torch.Tensor:
    """theta_0 of the proxy run: the model after ``warm_steps`` of mini-batch AdamW on the proxy
    sample, so that the policy is learned where the model already uses context."""
    from learnlaw.pretrain import ModelConfig, PretrainConfig, TrainingConfig, pretrain

    m = task.model
    pc = PretrainConfig(
        seed=seed,
        model=ModelConfig(m.d_model, m.n_layers, m.n_heads, m.d_ff, m.embedding_std),
        train=TrainingConfig(
            steps=config.warm_steps,
            batch_size=32,
            lr=config.warm_lr,
            min_lr=config.warm_lr / 10,
            warmup=min(20, config.warm_steps // 4),
            eval_every=config.warm_steps,
            checkpoint_every=config.warm_steps,
        ),
    )
    warm = pretrain(train, held, m.vocab_size, pc, quiet=True)
    flat = torch.cat([warm.params[name].reshape(-1) for name in task.names])
    return flat.to(device=task.theta0.device, dtype=task.theta0.dtype)
