"""Step 2 of data selection: a cheap data scorer fitted to the proxy's scores.

Features of a sequence come from the proxy language model: its final hidden states, mean-pooled
over positions, and its mean next-token loss (d_model + 1 numbers). ``DataScorer`` is a small
MLP (one hidden ReLU layer) on the standardised features, fitted by full-batch Adam to the
standardised scores; it is an sklearn-style estimator (hyper-parameters in the constructor,
``fit`` returns self, learned values end in ``_``). Its quality is its rank correlation with the
proxy scores on held-out proxy sequences (``heldout_spearman_``): selection only uses the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from learnlaw.errors import UserError
from learnlaw.files import load_state, save_state
from learnlaw.selection.config import ScorerConfig
from learnlaw.selection.proxy import ProxyModel
from learnlaw.tasks.transformer import hidden_states

SCORER_FORMAT = "learnlaw.data-scorer"


@torch.no_grad()
def sequence_features(model: ProxyModel, ids: np.ndarray, batch: int = 256) -> np.ndarray:
    """(n, d_model + 1) float32: mean-pooled final hidden states and the mean next-token loss."""
    out = []
    params, config = model.params, model.config
    for a in range(0, len(ids), batch):
        x = torch.as_tensor(ids[a : a + batch], dtype=torch.long)
        h = hidden_states(params, x[:, :-1], config)
        logits = F.linear(h, params["head.w"], params["head.b"])
        loss = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").mean(dim=1)
        out.append(torch.cat([h.mean(dim=1), loss[:, None]], dim=1))
    return torch.cat(out).numpy().astype(np.float32)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


class DataScorer:
    """A one-hidden-layer MLP from proxy features to a sequence's score."""

    def __init__(
        self,
        hidden: int = 64,
        epochs: int = 400,
        lr: float = 1e-2,
        weight_decay: float = 1e-3,
        holdout: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.holdout = holdout
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("hidden", "epochs", "lr", "weight_decay", "holdout", "seed")
        }

    def fit(self, features: np.ndarray, scores: np.ndarray) -> DataScorer:
        """Fit on all rows; first, the same recipe on a random ``1 - holdout`` of them gives
        ``heldout_spearman_`` on the rest."""
        ScorerConfig(self.hidden, self.epochs, self.lr, self.weight_decay, self.holdout).validate()
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(scores, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) < 4:
            raise UserError(
                "data scorer: needs a features matrix and a 1-D array of one score per row "
                f"(>= 4 rows), got shapes {x.shape} and {y.shape}"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise UserError("data scorer: the features and scores must be finite numbers")
        self.heldout_spearman_ = None
        if self.holdout > 0:
            order = np.random.default_rng(self.seed).permutation(len(y))
            n_out = max(2, round(self.holdout * len(y)))
            test, train = order[:n_out], order[n_out:]
            part = _fit_mlp(x[train], y[train], self.get_params())
            self.heldout_spearman_ = spearman(_predict(part, x[test]), y[test])
        self.state_ = _fit_mlp(x, y, self.get_params())
        self.train_spearman_ = spearman(_predict(self.state_, x), y)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not hasattr(self, "state_"):
            raise UserError("data scorer: not fitted; call fit(features, scores) first")
        x = np.asarray(features, dtype=np.float64)
        width = self.state_["w1"].shape[0] if "w1" in self.state_ else None
        if x.ndim != 2 or (width is not None and x.shape[1] != width):
            raise UserError(
                f"data scorer: expected a features matrix with {width} columns, got shape {x.shape}"
            )
        return _predict(self.state_, x)

    # ---- a plain state file (no pickles) --------------------------------------------------
    def save(self, path: str | Path, **meta: Any) -> Path:
        return save_state(
            path,
            {
                "format": SCORER_FORMAT,
                "version": 1,
                "params": self.get_params(),
                "state": self.state_,
                "heldout_spearman": self.heldout_spearman_,
                "train_spearman": self.train_spearman_,
                **meta,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> tuple[DataScorer, dict[str, Any]]:
        """The scorer and the rest of its file (the proxy model and tokenizer it belongs to)."""
        try:
            blob = load_state(path)
        except FileNotFoundError:
            raise UserError(f"{path}: no such scorer file") from None
        if not isinstance(blob, dict) or blob.get("format") != SCORER_FORMAT:
            raise UserError(f"{path}: not a learnlaw data scorer")
        scorer = cls(**blob["params"])
        scorer.state_ = {k: np.asarray(v) for k, v in blob["state"].items()}
        scorer.heldout_spearman_ = blob.get("heldout_spearman")
        scorer.train_spearman_ = blob.get("train_spearman")
        return scorer, blob


def _fit_mlp(x: np.ndarray, y: np.ndarray, p: dict[str, Any]) -> dict[str, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    y_mean, y_scale = y.mean(), y.std() + 1e-12
    g = torch.Generator().manual_seed(p["seed"])
    xt = torch.as_tensor((x - mean) / scale)
    yt = torch.as_tensor((y - y_mean) / y_scale)
    d, h = x.shape[1], p["hidden"]
    w1 = (torch.randn(d, h, generator=g, dtype=torch.float64) / d**0.5).requires_grad_(True)
    b1 = torch.zeros(h, dtype=torch.float64, requires_grad=True)
    w2 = (torch.randn(h, generator=g, dtype=torch.float64) / h**0.5).requires_grad_(True)
    b2 = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([w1, b1, w2, b2], lr=p["lr"], weight_decay=p["weight_decay"])
    for _ in range(p["epochs"]):
        pred = torch.relu(xt @ w1 + b1) @ w2 + b2
        loss = ((pred - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {
        "mean": mean,
        "scale": scale,
        "y_mean": np.asarray(y_mean),
        "y_scale": np.asarray(y_scale),
        **{k: v.detach().numpy() for k, v in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))},
    }


def _predict(s: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    z = (x - s["mean"]) / s["scale"]
    pred = np.maximum(z @ s["w1"] + s["b1"], 0.0) @ s["w2"] + s["b2"]
    return pred * s["y_scale"] + s["y_mean"]


@dataclass
class Scorer:
    """What scores a corpus: the proxy model (features), the fitted scorer, and the tokenizer
    they belong to (by hash)."""

    model: ProxyModel
    scorer: DataScorer
    tokenizer_hash: str

    def score(self, ids: np.ndarray) -> np.ndarray:
        return self.scorer.predict(sequence_features(self.model, ids)).astype(np.float32)
