"""The paper's tiny pre-norm transformer language model, written functionally.

Parameters are a flat dict of tensors and ``forward(params, tokens, config)`` is a pure
function, so torch.func can differentiate it twice, take forward-mode derivatives and vmap it.
Blocks: x + Attention(LN(x)), then x + FFN(LN(x)) with ReLU; learned positions; an untied
output head; no dropout; attention scaled by 1/sqrt(head dimension).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int
    seq_len: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 8
    d_ff: int = 512
    embedding_std: float = 0.02  # token and position embeddings at init (see init_params)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def init_params(
    config: TransformerConfig, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """GPT-2 style initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers).

    The embeddings use ``config.embedding_std``: under plain gradient descent the first LayerNorm
    divides the embeddings' gradient by their scale, so GPT-2's 0.02 gives them a ~50x larger
    effective step than the rest of the model and the loss spikes (Adam hides this)."""
    d, f = config.d_model, config.d_ff

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=dtype) * std

    resid_std = 0.02 / math.sqrt(2 * config.n_layers)
    p: dict[str, torch.Tensor] = {
        "tok_emb": normal(config.vocab_size, d, std=config.embedding_std),
        "pos_emb": normal(config.seq_len, d, std=config.embedding_std),
    }
    for i in range(config.n_layers):
        p[f"b{i}.ln1.w"], p[f"b{i}.ln1.b"] = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
        p[f"b{i}.qkv.w"], p[f"b{i}.qkv.b"] = normal(3 * d, d), torch.zeros(3 * d, dtype=dtype)
        p[f"b{i}.proj.w"], p[f"b{i}.proj.b"] = (
            normal(d, d, std=resid_std),
            torch.zeros(d, dtype=dtype),
        )
        p[f"b{i}.ln2.w"], p[f"b{i}.ln2.b"] = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
        p[f"b{i}.ff1.w"], p[f"b{i}.ff1.b"] = normal(f, d), torch.zeros(f, dtype=dtype)
        p[f"b{i}.ff2.w"], p[f"b{i}.ff2.b"] = (
            normal(d, f, std=resid_std),
            torch.zeros(d, dtype=dtype),
        )
    p["ln_f.w"], p["ln_f.b"] = torch.ones(d, dtype=dtype), torch.zeros(d, dtype=dtype)
    p["head.w"], p["head.b"] = (
        normal(config.vocab_size, d),
        torch.zeros(config.vocab_size, dtype=dtype),
    )
    return p


def _attention(x: torch.Tensor, p: dict[str, torch.Tensor], i: int, n_heads: int) -> torch.Tensor:
    b, t, d = x.shape
    hd = d // n_heads
    qkv = F.linear(x, p[f"b{i}.qkv.w"], p[f"b{i}.qkv.b"])
    q, k, v = (z.view(b, t, n_heads, hd).transpose(1, 2) for z in qkv.split(d, dim=-1))
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
    causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    return F.linear(out.transpose(1, 2).reshape(b, t, d), p[f"b{i}.proj.w"], p[f"b{i}.proj.b"])


def hidden_states(
    params: dict[str, torch.Tensor], tokens: torch.Tensor, config: TransformerConfig
) -> torch.Tensor:
    """The last block's output after the final LayerNorm: (batch, length, d_model)."""
    t = tokens.shape[1]
    x = params["tok_emb"][tokens] + params["pos_emb"][:t]
    d = config.d_model
    for i in range(config.n_layers):
        h = F.layer_norm(x, (d,), params[f"b{i}.ln1.w"], params[f"b{i}.ln1.b"])
        x = x + _attention(h, params, i, config.n_heads)
        h = F.layer_norm(x, (d,), params[f"b{i}.ln2.w"], params[f"b{i}.ln2.b"])
        h = F.relu(F.linear(h, params[f"b{i}.ff1.w"], params[f"b{i}.ff1.b"]))
        x = x + F.linear(h, params[f"b{i}.ff2.w"], params[f"b{i}.ff2.b"])
    return F.layer_norm(x, (d,), params["ln_f.w"], params["ln_f.b"])


def forward(
    params: dict[str, torch.Tensor], tokens: torch.Tensor, config: TransformerConfig
) -> torch.Tensor:
    """Logits (batch, length, vocab) for token ids (batch, length)."""
    return F.linear(hidden_states(params, tokens, config), params["head.w"], params["head.b"])


def sequence_losses(
    params: dict[str, torch.Tensor], sequences: torch.Tensor, config: TransformerConfig
) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of every sequence: shape (batch,)."""
    logits = forward(params, sequences[:, :-1], config)
    targets = sequences[:, 1:]
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return nll.view(targets.shape).mean(dim=1)


def count_params(params: dict[str, torch.Tensor]) -> int:
    return sum(p.numel() for p in params.values())
