"""The configuration of a data selection (``learnlaw select --config``): its sections, their
defaults and checks, and reading it from a TOML file or a built-in name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
from learnlaw.selection.mixture import MixtureConfig
from learnlaw.selection.proxy import ProxyConfig

METHODS = ("top", "gumbel")


@dataclass
class DataConfig:
    corpus: str = "mixture"  # "mixture" (built-in) or a path: text file, folder, JSON lines
    desired: str = ""  # desired-set documents (a path); "" with the built-in mixture
    text_field: str = "text"  # for JSON lines
    vocab_size: int = 1024
    seq_len: int = 64
    tokenizer_docs: int = 20000  # corpus documents the tokenizer is trained on (plus the desired)

    def validate(self) -> None:
        if not self.corpus:
            raise UserError("data.corpus is empty: name a path or the built-in 'mixture'")
        if self.corpus != "mixture" and not self.desired:
            raise UserError("data.desired: needs the desired set's documents (a path)")
        if self.vocab_size < 258:
            raise UserError(f"data.vocab_size = {self.vocab_size}: must be at least 258")
        if self.seq_len < 2:
            raise UserError(f"data.seq_len = {self.seq_len}: needs at least 2 tokens")
        if self.tokenizer_docs < 1:
            raise UserError(f"data.tokenizer_docs = {self.tokenizer_docs}: must be positive")


@dataclass
class ScorerConfig:
    hidden: int = 64
    epochs: int = 400
    lr: float = 1e-2
    weight_decay: float = 1e-3
    holdout: float = 0.2  # proxy sequences held out to measure the rank correlation
    path: str = ""  # reuse the scorer of an earlier selection folder (or its scorer.npz)

    def validate(self) -> None:
        if self.hidden < 1 or self.epochs < 1:
            raise UserError("scorer.hidden and scorer.epochs must be positive")
        if not self.lr > 0:
            raise UserError(f"scorer.lr = {self.lr}: must be positive")
        if not 0 <= self.holdout < 1:
            raise UserError(f"scorer.holdout = {self.holdout}: must be in [0, 1)")


@dataclass
class ChooseConfig:
    fraction: float = 0.25  # of the corpus's sequences to keep
    method: str = "top"  # top: the highest scores; gumbel: Gumbel-top-k sampling (PDS)
    temperature: float = 1.0  # gumbel: noise scale, in units of the scores' standard deviation
    chunk_size: int = 2048  # sequences per scored block (the unit of resuming and sharding)

    def validate(self) -> None:
        if not 0 < self.fraction <= 1:
            raise UserError(f"select.fraction = {self.fraction}: must be in (0, 1]")
        if self.method not in METHODS:
            raise UserError(f"select.method = {self.method!r}: expected top or gumbel")
        if not self.temperature > 0:
            raise UserError(f"select.temperature = {self.temperature}: must be positive")
        if self.chunk_size < 1:
            raise UserError(f"select.chunk_size = {self.chunk_size}: must be positive")


@dataclass
class SelectConfig:
    seed: int = 0
    device: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    select: ChooseConfig = field(default_factory=ChooseConfig)

    def validate(self) -> None:
        check_device(self.device)
        self.data.validate()
        self.mixture.validate()
        self.proxy.validate()
        self.scorer.validate()
        self.select.validate()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = {
    "data": DataConfig,
    "mixture": MixtureConfig,
    "proxy": ProxyConfig,
    "scorer": ScorerConfig,
    "select": ChooseConfig,
}


def load_select_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> SelectConfig:
    """A selection config from a TOML file or built-in name (e.g. ``select-mixture``), with
    ``{"section.key": value}`` overrides; validated (one-line errors naming the key)."""
    raw, where = read_config_file(path) if path is not None else ({}, "defaults")
    apply_overrides(raw, overrides)
    return _config_from(raw, where)


def _config_from(raw: dict[str, Any], where: str) -> SelectConfig:
    check_sections(raw, {"seed", "device", *SECTIONS}, where)
    seed, device = top_level_seed(raw, where), top_level_device(raw, where)
    parts = {name: fill(cls, raw.get(name, {}), where, name) for name, cls in SECTIONS.items()}
    config = SelectConfig(seed=seed, device=device, **parts)
    config.validate()
    return config
