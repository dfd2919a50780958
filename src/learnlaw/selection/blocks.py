"""Scoring a corpus in blocks (``learnlaw select``'s scoring pass): block i belongs to rank
i % P; each finished block is a file under ``work/blocks`` (written atomically), so a killed
pass resumes where it stopped, and rank 0 gathers them in corpus order."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from learnlaw.errors import UserError
from learnlaw.files import atomic_write, load_state


def block_file(out: Path, i: int) -> Path:
    return out / "work" / "blocks" / f"block-{i:07d}.npz"


def score_blocks(corpus, scorer, config, out, rank, size, quiet) -> float | None:
    """Score this rank's blocks (block i belongs to rank i % size); finished blocks are kept
    on disk, so a killed pass resumes where it stopped. The seconds it took (None: the corpus
    was scored already)."""
    if (out / "scores.npy").exists():
        return None
    total = corpus_length(out)
    start = time.perf_counter()
    bar = tqdm(
        total=total,
        desc="scoring",
        unit="seq",
        disable=True if quiet else None,
        dynamic_ncols=True,
    )
    chunk = config.select.chunk_size
    for block in corpus.blocks(chunk):
        i = block.start // chunk
        path = block_file(out, i)
        if i % size == rank and not path.exists():
            scores = scorer.score(block.ids)

            def write(tmp: Path, scores=scores, source=block.source) -> None:
                with open(tmp, "wb") as f:
                    np.savez(f, scores=scores, source=source)

            atomic_write(path, write)
        bar.update(len(block))
    bar.close()
    return time.perf_counter() - start


def corpus_length(out: Path) -> int | None:
    try:
        return int(load_state(out / "proxy.npz")["corpus_sequences"])
    except (FileNotFoundError, KeyError, TypeError, UserError):
        return None


def gather_scores(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rank 0: every block's scores in corpus order (blocks numbered 0, 1, ... with no gap)."""
    scores, source = [], []
    files = sorted((out / "work" / "blocks").glob("block-*.npz"))
    for i, path in enumerate(files):
        if path != block_file(out, i):
            raise UserError(
                f"{out / 'work'}: block {i} is missing; run again with --resume (resume=True)"
            )
        with np.load(path, allow_pickle=False) as data:
            scores.append(data["scores"])
            source.append(data["source"])
    if not scores:
        raise UserError(f"corpus {out}: no sequences were scored (is the corpus empty?)")
    return np.concatenate(scores), np.concatenate(source)


def write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # np.save on a path would add ".npy" to the temporary name
            np.save(f, array)

    atomic_write(path, write)
