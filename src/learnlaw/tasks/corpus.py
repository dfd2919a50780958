"""Corpora as streams of fixed-length token sequences, each labelled with its source.

A corpus is scored one block of sequences at a time, so it may be larger than memory. Text
corpora (a file, a folder of ``.txt``/``.md``/``.jsonl`` files, as for the language-model task)
are tokenised lazily: the documents of one file are joined into one token stream (each followed
by the end-of-text token) and cut into sequences of ``seq_len`` tokens; a sequence never spans
two files, and a file's last partial sequence is dropped. The source of a sequence is its file
(relative to the corpus folder). The built-in mixture (``learnlaw.selection.mixture``) is a
corpus of the same form.

Sequences are numbered in stream order; ``blocks(size)`` yields them ``size`` at a time, and
block ``i`` is always sequences ``i*size .. (i+1)*size - 1``, whatever process reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learnlaw.errors import UserError
from learnlaw.files import atomic_write
from learnlaw.tasks.text import (
    END_OF_TEXT,
    clean_text,
    corpus_files,
    iter_documents,
)


@dataclass
class SequenceBlock:
    start: int  # index of the first sequence in the corpus
    ids: np.ndarray  # (n, seq_len) int64 token ids
    source: np.ndarray  # (n,) int32: index into the corpus's ``sources``

    def __len__(self) -> int:
        return len(self.ids)


class TextCorpus:
    """A path corpus (text file, folder, JSON lines) as sequences of ``seq_len`` tokens."""

    def __init__(self, path: str | Path, tokenizer, seq_len: int, text_field: str = "text"):
        self.path = Path(path)
        self.files = corpus_files(self.path)  # a missing or empty folder fails here, at once
        root = self.path if self.path.is_dir() else self.path.parent
        self.sources = [str(f.relative_to(root)) for f in self.files]
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.text_field = text_field
        self._eot = tokenizer.token_to_id(END_OF_TEXT)

    def describe(self) -> dict:
        return {"kind": "text", "path": str(self.path), "files": len(self.files)}

    def _file_sequences(self) -> Iterator[tuple[np.ndarray, int]]:
        """(sequences, source index) for every file, tokenised a batch of documents at a time."""
        index = {f: i for i, f in enumerate(self.files)}
        pending: list[str] = []
        current: Path | None = None
        tail = np.zeros(0, dtype=np.int64)

        def flush() -> tuple[np.ndarray, np.ndarray]:
            ids: list[int] = []
            for enc in self.tokenizer.encode_batch(pending):
                ids += enc.ids
                ids.append(self._eot)
            stream = np.concatenate([tail, np.asarray(ids, dtype=np.int64)])
            n = len(stream) // self.seq_len
            return stream[: n * self.seq_len].reshape(n, self.seq_len), stream[n * self.seq_len :]

        for doc, f in iter_documents(self.path, self.text_field):
            if f != current:
                if pending:
                    seqs, _ = flush()  # a file's partial last sequence is dropped
                    yield seqs, index[current]
                pending, current, tail = [], f, np.zeros(0, dtype=np.int64)
            doc = clean_text(doc)
            if doc:
                pending.append(doc)
            if len(pending) >= 256:
                seqs, tail = flush()
                pending = []
                yield seqs, index[current]
        if pending:
            seqs, _ = flush()
            yield seqs, index[current]

    def blocks(self, size: int) -> Iterator[SequenceBlock]:
        yield from rebatch(self._file_sequences(), size)


def rebatch(parts: Iterator[tuple[np.ndarray, int]], size: int) -> Iterator[SequenceBlock]:
    """Blocks of exactly ``size`` sequences (the last may be shorter) from labelled pieces."""
    ids: list[np.ndarray] = []
    src: list[np.ndarray] = []
    held, start = 0, 0
    for seqs, source in parts:
        if len(seqs) == 0:
            continue
        ids.append(seqs)
        src.append(np.full(len(seqs), source, dtype=np.int32))
        held += len(seqs)
        while held >= size:
            all_ids, all_src = np.concatenate(ids), np.concatenate(src)
            yield SequenceBlock(start, all_ids[:size], all_src[:size])
            start += size
            ids, src, held = [all_ids[size:]], [all_src[size:]], held - size
    if held:
        yield SequenceBlock(start, np.concatenate(ids), np.concatenate(src))


def first_documents(path: str | Path, text_field: str, limit: int) -> list[str]:
    """The first ``limit`` non-empty cleaned documents of a path corpus (to train a tokenizer)."""
    docs: list[str] = []
    for doc, _ in iter_documents(path, text_field):
        doc = clean_text(doc)
        if doc:
            docs.append(doc)
            if len(docs) >= limit:
                break
    return docs


def tokenizer_hash(tokenizer) -> str:
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]


def text_sequences(docs: list[str], tokenizer, seq_len: int) -> np.ndarray:
    """In-memory documents as one token stream cut into sequences (the partial tail dropped)."""
    eot = tokenizer.token_to_id(END_OF_TEXT)
    ids: list[int] = []
    for enc in tokenizer.encode_batch(docs):
        ids += enc.ids
        ids.append(eot)
    n = len(ids) // seq_len
    return np.asarray(ids[: n * seq_len], dtype=np.int64).reshape(n, seq_len)


# ---- sequence files: JSON lines with token ids ----------------------------------------------
def write_sequences(
    path: str | Path,
    ids: np.ndarray,
    tokenizer=None,
    **columns: np.ndarray | list,
) -> Path:
    """Sequences as JSON lines ``{"ids": [...], "text": ..., <columns>}``, written atomically.
    ``text`` (the decoded sequence, for people) is written when a tokenizer is given."""
    texts = tokenizer.decode_batch(ids.tolist()) if tokenizer is not None else None

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for i, row in enumerate(ids):
                obj = {k: _plain(v[i]) for k, v in columns.items()}
                if texts is not None:
                    obj["text"] = texts[i]
                obj["ids"] = row.tolist()
                f.write(json.dumps(obj) + "\n")

    return atomic_write(path, write)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def read_sequences(path: str | Path, vocab_size: int | None = None) -> np.ndarray:
    """The ``ids`` of a JSON-lines sequence file: (n, length) int64, checked."""
    path = Path(path)
    rows: list[list[int]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    ids = json.loads(line).get("ids")
                except (json.JSONDecodeError, AttributeError):
                    raise UserError(f"{path}: line {line_no}: not a JSON object") from None
                if not isinstance(ids, list) or not all(
                    isinstance(t, int) and not isinstance(t, bool) for t in ids
                ):
                    raise UserError(f"{path}: line {line_no}: no list of integer token ids 'ids'")
                if rows and len(ids) != len(rows[0]):
                    raise UserError(
                        f"{path}: line {line_no}: {len(ids)} token ids, but the first line has "
                        f"{len(rows[0])} (all sequences must have one length)"
                    )
                rows.append(ids)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnicodeDecodeError, IsADirectoryError, OSError) as exc:
        raise UserError(f"{path}: cannot read as UTF-8 JSON lines ({type(exc).__name__})") from None
    if not rows:
        raise UserError(f"{path}: no sequences (expected JSON lines with 'ids')")
    if len(rows[0]) < 2:
        raise UserError(f"{path}: sequences of {len(rows[0])} token; at least 2 are needed")
    out = np.asarray(rows, dtype=np.int64)
    if out.min() < 0 or (vocab_size is not None and out.max() >= vocab_size):
        raise UserError(
            f"{path}: token ids outside 0..{(vocab_size or 0) - 1} (another tokenizer's sequences?)"
        )
    return out
