"""The language-model experiment (SPEC A7): a tiny transformer on real English text, with a
fraction of the training sequences corrupted to imitate noisy web data.

Sequences of ``seq_len`` tokens are cut from the tokenised corpus and split into disjoint
train / desired (objective + select) / test sets. A ``corrupt_fraction`` of the training
sequences receive random edits (about ``edits_per_64`` per 64 tokens): replace a token by a
random one, delete a token, or repeat one; the length is kept by filling from the text that
follows the sequence (or truncating). Which sequences were corrupted is recorded, so the
analysis can show where the policy puts its weight. Everything goes through the generic
autograd path of ``Task``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.files import check_memory
from learnlaw.tasks.base import Task, check_sizes, objective_size
from learnlaw.tasks.text import chunk, load_corpus, token_stream, train_tokenizer
from learnlaw.tasks.transformer import TransformerConfig, init_params, sequence_losses


@dataclass
class LMConfig:
    corpus: str = "wiki"  # a built-in corpus (wiki, sotu) or a path
    text_field: str = "text"  # for JSON lines corpora
    vocab_size: int = 2048
    seq_len: int = 32
    n_train: int = 256
    n_desired: int = 128
    n_test: int = 128
    select_fraction: float = 0.25
    corrupt_fraction: float = 0.5
    edits_per_64: float = 20.0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    embedding_std: float = 0.3  # init scale of the embeddings; 0.02 (GPT-2's) makes GD spike
    chunk_size: int = 0  # examples per chunk in full-batch passes (0: all at once)

    def validate(self) -> None:
        sizes = ("vocab_size", "seq_len", "n_train", "n_desired", "n_test")
        check_sizes("lm", self, (*sizes, "d_model", "n_layers", "n_heads", "d_ff"))
        if self.seq_len < 2:
            raise UserError(f"lm.seq_len = {self.seq_len}: needs at least 2 tokens")
        if not 0 <= self.corrupt_fraction <= 1:
            raise UserError(f"lm.corrupt_fraction = {self.corrupt_fraction}: must be in [0, 1]")
        if not self.embedding_std > 0:
            raise UserError(f"lm.embedding_std = {self.embedding_std}: must be positive")
        if self.edits_per_64 < 0:
            raise UserError(f"lm.edits_per_64 = {self.edits_per_64}: must be >= 0")
        if self.d_model % self.n_heads:
            raise UserError(
                f"lm.d_model = {self.d_model} must be divisible by lm.n_heads = {self.n_heads}"
            )
        if self.chunk_size < 0:
            raise UserError(f"lm.chunk_size = {self.chunk_size}: must be >= 0")


def corrupt(
    seq: np.ndarray, follow: np.ndarray, n_edits: int, vocab: int, rng: np.random.Generator
) -> np.ndarray:
    """Apply ``n_edits`` random edits (replace / delete / repeat a token), keeping the length."""
    tokens = list(seq)
    refill = list(follow)
    for _ in range(n_edits):
        i = int(rng.integers(len(tokens)))
        kind = int(rng.integers(3))
        if kind == 0:
            tokens[i] = int(rng.integers(vocab))
        elif kind == 1:
            del tokens[i]
            tokens.append(refill.pop(0) if refill else tokens[-1])
        else:
            tokens.insert(i, tokens[i])
            tokens.pop()
    return np.asarray(tokens, dtype=seq.dtype)


class SequenceLMTask(Task):
    """The transformer language model on given token sequences: ``parts`` maps the splits
    (train, objective, optional select, test) to int arrays (sequences x length)."""

    name = "sequences"

    def __init__(
        self,
        parts: dict[str, np.ndarray],
        model: TransformerConfig,
        seed: int,
        dtype: torch.dtype = torch.float32,
        device: str = "cpu",
        corrupted: np.ndarray | None = None,
        chunk_size: int = 0,
    ) -> None:
        self.data = {k: torch.as_tensor(v, device=device) for k, v in parts.items()}
        self.sizes = {k: len(v) for k, v in parts.items()}
        self.corrupted = corrupted
        self.n_classes = model.vocab_size
        self.chunk_size = chunk_size or None
        self.model = model
        params = init_params(model, torch.Generator().manual_seed(seed), dtype=torch.float32)
        self.names = list(params)
        self.shapes = [p.shape for p in params.values()]
        self.theta0 = torch.cat([p.reshape(-1) for p in params.values()]).to(
            device=device, dtype=dtype
        )

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [math.prod(s) for s in self.shapes]
        return {n: part.view(s) for n, part, s in zip(self.names, theta.split(sizes), self.shapes)}

    def losses(
        self, theta: torch.Tensor, split: str, start: int = 0, stop: int | None = None
    ) -> torch.Tensor:
        return sequence_losses(self.unflatten(theta), self.data[split][start:stop], self.model)


class LMTask(SequenceLMTask):
    name = "lm"
    Config = LMConfig

    def __init__(
        self, config: LMConfig, seed: int, dtype: torch.dtype = torch.float32, device: str = "cpu"
    ) -> None:
        config.validate()
        need = config.n_train + config.n_desired + config.n_test
        per_pass = config.chunk_size or need
        # a full-batch pass holds about 30 activations of (chunk x seq_len x d_model) floats per
        # layer through a double backward, and logits of (chunk x seq_len x vocab)
        activations = (
            per_pass
            * config.seq_len
            * (30 * config.d_model * config.n_layers + 3 * config.vocab_size)
        )
        check_memory(
            f"a full-batch pass over {per_pass} sequences (set lm.chunk_size to bound it)",
            4 * activations,
        )
        self.config = config
        docs = load_corpus(config.corpus, config.text_field)
        tokenizer = train_tokenizer(docs, config.vocab_size)
        windows = chunk(token_stream(docs, tokenizer), config.seq_len)
        # every sequence but the last has a successor in the text, which refills deletions
        # (a corrupted training sequence may so take a few tokens that open a held-out one,
        # as adjacent windows of one text share context anyway)
        available = len(windows) - 1
        need = config.n_train + config.n_desired + config.n_test
        if available < need:
            raise UserError(
                f"corpus {config.corpus}: {available} sequences of {config.seq_len} tokens, "
                f"but n_train + n_desired + n_test = {need}"
            )
        rng = np.random.default_rng(seed)
        picked = rng.permutation(available)[:need]
        seqs, follow = windows[picked], windows[picked + 1]
        n_tr, n_des = config.n_train, config.n_desired
        train = seqs[:n_tr].copy()
        corrupted = np.zeros(n_tr, dtype=bool)
        corrupted[rng.choice(n_tr, size=round(config.corrupt_fraction * n_tr), replace=False)] = (
            True
        )
        n_edits = round(config.edits_per_64 * config.seq_len / 64)
        for i in np.flatnonzero(corrupted):
            train[i] = corrupt(train[i], follow[i], n_edits, config.vocab_size, rng)
        n_obj = objective_size(n_des, config.select_fraction)
        parts = {
            "train": train,
            "objective": seqs[n_tr : n_tr + n_obj],
            "select": seqs[n_tr + n_obj : n_tr + n_des],
            "test": seqs[n_tr + n_des :],
        }
        model = TransformerConfig(
            config.vocab_size,
            config.seq_len,
            config.d_model,
            config.n_layers,
            config.n_heads,
            config.d_ff,
            config.embedding_std,
        )
        super().__init__(parts, model, seed, dtype, device, corrupted, config.chunk_size)
        self.unigram_loss = _unigram_entropy(
            train[~corrupted] if (~corrupted).any() else train, config.vocab_size
        )

    def describe(self) -> dict:
        info = super().describe()
        info["config"] = asdict(self.config)
        info["corrupted_sequences"] = int(self.corrupted.sum())
        info["unigram_loss"] = self.unigram_loss
        return info


def _unigram_entropy(seqs: np.ndarray, vocab: int) -> float:
    """The loss of the best context-free predictor (nats): what a model must beat to use context."""
    counts = np.bincount(seqs[:, 1:].reshape(-1), minlength=vocab).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
