"""Data selection end to end (``learnlaw select``): proxy solution -> data scorer -> scores for
every sequence of a corpus -> the selected sequences.

    from learnlaw.selection import load_select_config, select
    result = select(load_select_config("select-mixture"), out="runs/select")

The output folder (owned by learnlaw: new or empty, or this run's own with ``resume=True``):

    config.json      resolved config, run id, seed, versions, the corpus (the mixture's
                     composition), the command
    tokenizer.json   the byte-level BPE every sequence is in
    proxy/           the proxy's policy run (a ``learnlaw policy`` run folder)
    proxy.npz        proxy sample (corpus indices, sources), its scores and the proxy model
    scorer.npz       the fitted data scorer (names the proxy model and tokenizer by hash)
    scores.npy       the scorer's score of every corpus sequence (float32, corpus order)
    sources.npy      every sequence's source (index into metrics.json's ``sources``)
    selected.jsonl   the selected sequences: index, source, score, text, ids
    desired.jsonl, test.jsonl   (built-in mixture only) the held-out target-domain sequences
    histogram.png    scores by source, with the selection threshold
    report.md, metrics.json   the summary; metrics.json is written last
    work/            per-block scores of an unfinished scoring pass (removed when done)

Every file is written atomically, and ``metrics.json`` only once everything else is: a killed
run leaves nothing that looks finished, and ``resume=True`` continues it (a finished proxy
solve, scorer and every scored block are kept) to the same selection.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from learnlaw.distributed import Comm
from learnlaw.errors import UserError
from learnlaw.files import (
    atomic_write,
    load_state,
    save_state,
    versions,
    write_json,
    write_text,
)
from learnlaw.folders import claim_folder, unlock_folder
from learnlaw.selection.blocks import gather_scores, score_blocks, write_npy
from learnlaw.selection.config import ChooseConfig, DataConfig, SelectConfig
from learnlaw.selection.mixture import Mixture
from learnlaw.selection.proxy import ProxyModel, sample_sequences, solve_proxy
from learnlaw.selection.scorer import DataScorer, Scorer, sequence_features
from learnlaw.selection.summary import fmt_score, report, selection_metrics
from learnlaw.tasks.corpus import (
    TextCorpus,
    first_documents,
    text_sequences,
    tokenizer_hash,
    write_sequences,
)
from learnlaw.tasks.text import (
    BUILTIN_CORPORA,
    clean_text,
    corpus_package_dir,
    iter_documents,
    train_tokenizer,
)

FORMAT = "learnlaw.select"


# ---- choosing from scores --------------------------------------------------------------------
def choose(
    scores: np.ndarray,
    fraction: float,
    method: str = "top",
    temperature: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Indices (ascending) of the ``round(fraction * n)`` (at least 1) sequences kept: the
    highest scores, or Gumbel-top-k sampling, i.e. the top of ``score / (temperature * std) +
    Gumbel noise``, which samples without replacement with probabilities proportional to
    ``exp(score / (temperature * std))``. Ties go to the earlier sequence."""
    ChooseConfig(fraction, method, temperature).validate()  # the config's rules, one place
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0 or not np.all(np.isfinite(scores)):
        raise UserError("scores: expected a non-empty 1-D array of finite numbers, one a sequence")
    k = max(1, round(fraction * len(scores)))
    keys = scores
    if method == "gumbel":
        std = scores.std() or 1.0
        gumbel = np.random.default_rng([seed, 1618]).gumbel(size=len(scores))
        keys = scores / (temperature * std) + gumbel
    order = np.argsort(-keys, kind="stable")
    return np.sort(order[:k])


# ---- the result ------------------------------------------------------------------------------
@dataclass
class SelectionResult:
    out: Path
    scores: np.ndarray  # every corpus sequence's score
    source: np.ndarray  # every sequence's source index
    sources: list[str]
    selected: np.ndarray  # kept sequence indices, ascending
    metrics: dict[str, Any]


# ---- the pipeline ----------------------------------------------------------------------------
def select(
    config: SelectConfig,
    out: str | Path,
    *,
    resume: bool = False,
    quiet: bool = False,
    command: str = "",
    corpus=None,
    process_group=None,
) -> SelectionResult | None:
    """Select data as ``config`` says and write it into ``out`` (see the module docstring).

    Data parallel: call it on every process of an initialised torch.distributed group
    (``process_group``; by default the default group when one is initialised): rank 0 solves
    the proxy and fits the scorer while the others wait (give the group a long timeout), all
    ranks score their share of the corpus's blocks, rank 0 writes the selection and returns
    the result (others: None).

    ``corpus``: the built-in mixture already built for this config (``Mixture(config.mixture,
    config.seed, ...)``), to save building it again; anything else is built from the config.
    """
    config.validate()
    out = Path(out)
    if corpus is not None and not _same_mixture(corpus, config):
        raise UserError("select: the corpus given is not the mixture this config describes")
    comm = Comm.of(process_group)
    rank, size = comm.rank, comm.world_size

    def all_ok(ok: bool) -> bool:  # a barrier that also tells whether every rank is fine
        return not comm.any(not ok)

    say = (lambda *_: None) if quiet or rank else tqdm.write
    fd = None
    error: UserError | None = None
    timings: dict[str, float] = {}
    if rank == 0:
        try:
            _check_inputs(config)  # before the folder is claimed; rank 0 alone reads them
            fd = _start(out, config, resume, command)
            timings = _read_timings(out)
            corpus = _prepare(config, out, say, quiet, timings, corpus)
        except UserError as exc:
            error = exc
    try:
        if not all_ok(error is None):
            raise error or UserError("data selection failed on rank 0 (see its message)")
        corpus, scorer = _load_prepared(config, out, corpus)
        seconds = score_blocks(corpus, scorer, config, out, rank, size, quiet or rank > 0)
        if rank == 0 and seconds is not None:
            _timed(out, timings, "scoring", seconds)
        if not all_ok(True):  # pragma: no cover - another rank raised
            raise UserError("data selection: another rank failed while scoring")
        result = _finish(config, out, corpus, scorer, say, timings) if rank == 0 else None
        all_ok(True)
        return result
    finally:
        if fd is not None:
            unlock_folder(fd)


def _check_inputs(config: SelectConfig) -> None:
    """What the config reads exists, checked before the output folder is claimed (a claimed
    folder holds the config, and a corrected config could not go on in it)."""
    d = config.data
    paths = [("data.desired", d.desired), ("scorer.path", config.scorer.path)]
    if d.corpus != "mixture":
        paths.insert(0, ("data.corpus", d.corpus))
    for key, value in paths:
        if value and not Path(value).exists():
            raise UserError(f"{key} = {value!r}: no such file or folder")
    if d.corpus == "mixture":  # its texts come from the built-in corpora's packages
        for corpus in BUILTIN_CORPORA:
            try:
                corpus_package_dir(corpus)
            except UserError as exc:
                raise UserError(
                    f"data.corpus = 'mixture': {exc}, or the extra learnlaw[mixture]"
                ) from None


def _start(out: Path, config: SelectConfig, resume: bool, command: str) -> int:
    record = {
        "format": FORMAT,
        "format_version": 1,
        "config": config.to_json(),
        "seed": config.seed,
        "versions": versions(),
        "command": command,
    }
    return claim_folder(out, record, resume=resume, what="selection")[0]


def _read_timings(out: Path) -> dict[str, float]:
    path = out / "work" / "timings.json"
    try:
        return {k: float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _timed(out: Path, timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds
    write_json(out / "work" / "timings.json", timings)


def _open_corpus(config: SelectConfig, tokenizer=None):
    """The corpus object and the tokenizer (built, or the given one for a path corpus)."""
    d = config.data
    if d.corpus == "mixture":
        mixture = Mixture(config.mixture, config.seed, d.vocab_size, d.seq_len)
        return mixture, mixture.tokenizer
    if tokenizer is None:
        docs = _desired_documents(d) + first_documents(d.corpus, d.text_field, d.tokenizer_docs)
        tokenizer = train_tokenizer(docs, d.vocab_size)
    return TextCorpus(d.corpus, tokenizer, d.seq_len, d.text_field), tokenizer


def _desired_documents(d: DataConfig) -> list[str]:
    docs = [clean_text(doc) for doc, _ in iter_documents(d.desired, d.text_field)]
    docs = [doc for doc in docs if doc]
    if not docs:
        raise UserError(f"data.desired {d.desired}: no text found")
    return docs


def _desired(config: SelectConfig, corpus, tokenizer) -> np.ndarray:
    if isinstance(corpus, Mixture):
        return corpus.desired
    seqs = text_sequences(_desired_documents(config.data), tokenizer, config.data.seq_len)
    if len(seqs) < 2:
        raise UserError(
            f"data.desired {config.data.desired}: {len(seqs)} sequences of "
            f"{config.data.seq_len} tokens; at least 2 are needed"
        )
    return seqs


def _same_mixture(corpus, config: SelectConfig) -> bool:
    return (
        isinstance(corpus, Mixture)
        and config.data.corpus == "mixture"
        and corpus.config == config.mixture
        and (corpus.seed, corpus.vocab_size, corpus.seq_len)
        == (config.seed, config.data.vocab_size, config.data.seq_len)
    )


def _prepare(config: SelectConfig, out: Path, say, quiet: bool, timings, corpus=None):
    """Rank 0: the tokenizer, the proxy solution and the fitted scorer, each kept on disk;
    returns the corpus (opened here unless given)."""
    if config.scorer.path:
        _adopt_scorer(config, out)
        return corpus
    tok_path = out / "tokenizer.json"
    if corpus is not None:
        tokenizer = corpus.tokenizer
    else:
        tokenizer = _load_tokenizer(tok_path) if tok_path.exists() else None
        corpus, tokenizer = _open_corpus(config, tokenizer)
    if not tok_path.exists():
        atomic_write(tok_path, lambda tmp: tokenizer.save(str(tmp)))
    if not (out / "proxy.npz").exists():
        start = time.perf_counter()
        say("drawing the proxy sample from the corpus")
        n = config.proxy.n_sequences
        indices, ids, source, total = sample_sequences(corpus, n, config.seed)
        desired = _desired(config, corpus, tokenizer)
        corrupted = None
        if isinstance(corpus, Mixture):
            corrupted = np.isin(source, [2, 3])  # the components with edits
        say(f"proxy: {n} of {total} sequences; optimising a data policy for them")
        solution = solve_proxy(
            ids,
            desired,
            config.data.vocab_size,
            config.proxy,
            config.seed,
            corrupted=corrupted,
            out=out / "proxy",
            resume=(out / "proxy" / "checkpoint.npz").exists(),
            device=config.device,
            quiet=quiet,
        )
        save_state(
            out / "proxy.npz",
            {
                "indices": indices,
                "source": source,
                "ids": ids,
                "scores": solution.scores,
                "weights": solution.weights,
                "corpus_sequences": total,
                "model": solution.model.to_state(),
                "metrics": solution.metrics,
            },
        )
        _timed(out, timings, "proxy", time.perf_counter() - start)
    if not (out / "scorer.npz").exists():
        start = time.perf_counter()
        proxy = load_state(out / "proxy.npz")
        model = ProxyModel.from_state(proxy["model"], str(out / "proxy.npz"))
        features = sequence_features(model, proxy["ids"])
        sc = config.scorer
        scorer = DataScorer(sc.hidden, sc.epochs, sc.lr, sc.weight_decay, sc.holdout, config.seed)
        scorer.fit(features, proxy["scores"])
        shutil.rmtree(out / "work" / "blocks", ignore_errors=True)  # scores of no other scorer
        scorer.save(
            out / "scorer.npz",
            proxy_model=model.fingerprint(),
            tokenizer=tokenizer_hash(tokenizer),
            seq_len=config.data.seq_len,
            vocab_size=config.data.vocab_size,
        )
        _timed(out, timings, "scorer", time.perf_counter() - start)
        say(
            f"data scorer: held-out rank correlation with the proxy scores "
            f"{fmt_score(scorer.heldout_spearman_)}"
        )
    return corpus


def _load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception:  # the tokenizers library raises its own exception types
        raise UserError(f"{path}: not a readable tokenizer file") from None


def _adopt_scorer(config: SelectConfig, out: Path) -> None:
    """Copy an earlier run's tokenizer, proxy model and scorer in, after checking they belong
    together and fit this config."""
    src = Path(config.scorer.path)
    folder = src if src.is_dir() else src.parent
    scorer_file = src / "scorer.npz" if src.is_dir() else src
    _load_scorer(scorer_file, folder / "tokenizer.json", folder / "proxy.npz", config)
    for name, file in (
        ("tokenizer.json", folder / "tokenizer.json"),
        ("proxy.npz", folder / "proxy.npz"),
        ("scorer.npz", scorer_file),
    ):
        if not (out / name).exists():
            data = file.read_bytes()
            atomic_write(out / name, lambda tmp, data=data: tmp.write_bytes(data))


def _load_scorer(scorer_file: Path, tok_file: Path, proxy_file: Path, config: SelectConfig):
    scorer, meta = DataScorer.load(scorer_file)
    if not tok_file.exists() or not proxy_file.exists():
        raise UserError(f"{scorer_file}: its tokenizer.json and proxy.npz must lie beside it")
    tokenizer = _load_tokenizer(tok_file)
    try:
        proxy = load_state(proxy_file)
        model = ProxyModel.from_state(proxy["model"], str(proxy_file))
    except (KeyError, TypeError):
        raise UserError(f"{proxy_file}: not a learnlaw proxy file") from None
    if meta.get("tokenizer") != tokenizer_hash(tokenizer):
        raise UserError(
            f"{scorer_file}: fitted with another tokenizer than {tok_file} "
            f"({meta.get('tokenizer')} vs {tokenizer_hash(tokenizer)})"
        )
    if meta.get("proxy_model") != model.fingerprint():
        raise UserError(
            f"{scorer_file}: fitted on another proxy model than the one in {proxy_file} "
            f"({meta.get('proxy_model')} vs {model.fingerprint()})"
        )
    for key in ("seq_len", "vocab_size"):
        if meta.get(key) != getattr(config.data, key):
            raise UserError(
                f"{scorer_file}: made for data.{key} = {meta.get(key)}, but the config has "
                f"data.{key} = {getattr(config.data, key)}"
            )
    return Scorer(model, scorer, meta["tokenizer"]), tokenizer


def _load_prepared(config: SelectConfig, out: Path, corpus=None):
    """Every rank: the scorer from the files rank 0 wrote, and the corpus (opened unless
    given)."""
    scorer, tokenizer = _load_scorer(
        out / "scorer.npz", out / "tokenizer.json", out / "proxy.npz", config
    )
    if corpus is None:
        corpus, _ = _open_corpus(config, tokenizer)
    if isinstance(corpus, Mixture) and tokenizer_hash(corpus.tokenizer) != scorer.tokenizer_hash:
        raise UserError(f"{out / 'scorer.npz'}: fitted with another tokenizer than the mixture's")
    return corpus, scorer


def _finish(config, out, corpus, scorer, say, timings) -> SelectionResult:
    """Rank 0: scores.npy, the choice, selected.jsonl, plots, report, metrics.json (last)."""
    if (out / "scores.npy").exists():
        scores = np.load(out / "scores.npy", allow_pickle=False)
        source = np.load(out / "sources.npy", allow_pickle=False)
    else:
        scores, source = gather_scores(out)
        write_npy(out / "sources.npy", source)
        write_npy(out / "scores.npy", scores)
    start = time.perf_counter()
    s = config.select
    selected = choose(scores, s.fraction, s.method, s.temperature, config.seed)
    tokenizer = _load_tokenizer(out / "tokenizer.json")
    _write_selected(out / "selected.jsonl", corpus, selected, scores, tokenizer)
    if isinstance(corpus, Mixture):
        write_sequences(out / "desired.jsonl", corpus.desired, tokenizer)
        write_sequences(out / "test.jsonl", corpus.test, tokenizer)
    _timed(out, timings, "selection", time.perf_counter() - start)
    proxy = load_state(out / "proxy.npz")
    metrics = selection_metrics(scores, source, corpus.sources, selected)
    metrics.update(
        {
            "method": s.method,
            "fraction": s.fraction,
            "temperature": s.temperature if s.method == "gumbel" else None,
            "seed": config.seed,
            "corpus": corpus.describe(),
            "scorer": {
                "heldout_spearman": scorer.scorer.heldout_spearman_,
                "train_spearman": scorer.scorer.train_spearman_,
                "features": "mean-pooled final hidden states + mean loss of the proxy model",
                "proxy_model": scorer.model.fingerprint(),
                "tokenizer": scorer.tokenizer_hash,
                "reused_from": config.scorer.path or None,
            },
            "proxy": proxy.get("metrics", {}),
            "seconds": dict(timings),
        }
    )
    from learnlaw.plots import save_figure
    from learnlaw.plots.selection import plot_score_histogram

    threshold = float(scores[selected].min()) if s.method == "top" else None
    fig = plot_score_histogram(scores, source, corpus.sources, threshold)
    save_figure(fig, out / "histogram.png")
    write_text(out / "report.md", report(metrics))
    write_json(out / "metrics.json", metrics)
    shutil.rmtree(out / "work", ignore_errors=True)
    say(f"selected {len(selected)} of {len(scores)} sequences into {out / 'selected.jsonl'}")
    return SelectionResult(out, scores, source, list(corpus.sources), selected, metrics)


def _write_selected(path: Path, corpus, selected: np.ndarray, scores, tokenizer) -> None:
    """The kept sequences in corpus order, read in a second pass over the corpus."""
    keep = np.zeros(len(scores), dtype=bool)
    keep[selected] = True
    names = list(corpus.sources)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for block in corpus.blocks(4096):
                rows = np.flatnonzero(keep[block.start : block.start + len(block)])
                if not len(rows):
                    continue
                texts = tokenizer.decode_batch(block.ids[rows].tolist())
                for r, text in zip(rows, texts):
                    i = block.start + int(r)
                    obj = {
                        "index": i,
                        "source": names[int(block.source[r])],
                        "score": float(scores[i]),
                        "text": text,
                        "ids": block.ids[r].tolist(),
                    }
                    f.write(json.dumps(obj) + "\n")

    atomic_write(path, write)
