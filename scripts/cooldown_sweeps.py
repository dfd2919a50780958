"""Cooldown sweeps with learnlaw's own trainer (``learnlaw.pretrain``) on the built-in corpus.

For each peak learning rate (``--peaks``, default 3e-3 and 1e-2): WSD runs with decay fractions
0.1, 0.25, 0.4, 0.55, 0.7, 0.9 (linear decay to peak / 10), a constant run and a cosine run to
peak / 10, all of the same length (``--steps``, default 1000), the same seed (``--seed``: the
same batches, the same initial weights) and the same test set, so that the runs differ only in
their schedule. Each run's test-loss curve is written as CSV (``step,lr,loss``) to
``OUT/PEAK/NAME.csv`` with the sweep's settings in ``OUT/sweep.json``; ``benchmarks/curve_laws.py``
reads every ``benchmarks/data/cooldown*`` folder and reports how well each law, fitted on the
constant and cosine runs only, names the best decay fraction. A sweep resumes where it stopped
(finished runs are kept), and refuses a folder that holds a sweep of other settings.

One thread; 8 runs per peak, about 5 minutes per peak at 1000 steps:

    OMP_NUM_THREADS=1 python scripts/cooldown_sweeps.py [--out benchmarks/data/cooldown]
    OMP_NUM_THREADS=1 python scripts/cooldown_sweeps.py --seed 1 --out benchmarks/data/cooldown-seed1
    OMP_NUM_THREADS=1 python scripts/cooldown_sweeps.py --steps 2000 --peaks 0.003 \
        --out benchmarks/data/cooldown-2000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from learnlaw.files import versions, write_csv, write_json
from learnlaw.pretrain import ModelConfig, PretrainConfig, TrainingConfig, pretrain
from learnlaw.tasks.text import chunk, load_corpus, token_stream, train_tokenizer

PEAKS = (3e-3, 1e-2)
FRACTIONS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.9)
STEPS = 1000
WARMUP = 40
EVAL_EVERY = 10
SEQ_LEN = 32
VOCAB = 512
TEST_SEQUENCES = 256
MODEL = {"d_model": 48, "n_layers": 2, "n_heads": 4, "d_ff": 192}
BATCH = 32
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, int]:
    """Train and test sequences of the built-in ``wiki`` corpus (the test set: the last
    ``TEST_SEQUENCES`` sequences, never trained on)."""
    docs = load_corpus("wiki")
    tokenizer = train_tokenizer(docs, VOCAB)
    seqs = chunk(token_stream(docs, tokenizer), SEQ_LEN)
    return seqs[:-TEST_SEQUENCES], seqs[-TEST_SEQUENCES:], tokenizer.get_vocab_size()


def runs(peak: float) -> dict[str, dict]:
    """Training options of every run at ``peak``: name -> TrainingConfig keywords."""
    out = {"constant": {"schedule": "cosine", "min_lr": peak}}
    out["cosine"] = {"schedule": "cosine", "min_lr": peak / 10}
    for f in FRACTIONS:
        out[f"wsd_{f:g}"] = {"schedule": "wsd", "min_lr": peak / 10, "decay_frac": f}
    return out


def config(peak: float, options: dict, seed: int = SEED, steps: int = STEPS) -> PretrainConfig:
    train = TrainingConfig(
        steps=steps,
        batch_size=BATCH,
        lr=peak,
        warmup=WARMUP,
        eval_every=EVAL_EVERY,
        checkpoint_every=EVAL_EVERY * 10,
        **options,
    )
    return PretrainConfig(seed=seed, model=ModelConfig(**MODEL), train=train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/data/cooldown")
    parser.add_argument("--only", default=None, help="Run only PEAK/NAME (to time one run).")
    parser.add_argument("--steps", type=int, default=STEPS, help="Length of every run.")
    parser.add_argument(
        "--peaks", default=",".join(f"{p:g}" for p in PEAKS), help="Peak LRs, comma-separated."
    )
    parser.add_argument(
        "--seed", type=int, default=SEED, help="Initial weights and batch order of every run."
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    peaks = [float(p) for p in args.peaks.split(",")]
    meta = out / "sweep.json"
    swept, seconds = peaks, {}
    if meta.exists():  # resume only the same sweep: its finished runs are kept
        old = json.loads(meta.read_text())
        swept, seconds = old.get("peaks", []), old.get("seconds", {})
        differ = [k for k in ("seed", "steps") if old.get(k) != getattr(args, k)]
        differ += [] if set(peaks) <= set(swept) else ["peaks"]
        if differ:
            raise SystemExit(
                f"{meta}: a sweep with other {', '.join(differ)}; choose another --out"
            )
    train, test, vocab = data()
    record = {
        "peaks": swept,
        "fractions": list(FRACTIONS),
        "steps": args.steps,
        "warmup": WARMUP,
        "eval_every": EVAL_EVERY,
        "seq_len": SEQ_LEN,
        "vocab": VOCAB,
        "batch": BATCH,
        "model": MODEL,
        "seed": args.seed,
        "corpus": "wiki",
        "test_sequences": TEST_SEQUENCES,
        "train_sequences": len(train),
        "threads": torch.get_num_threads(),
        "versions": versions(),
    }
    write_json(meta, record)  # first, so that an interrupted sweep is recognised
    for peak in peaks:
        for name, options in runs(peak).items():
            key = f"{peak:g}/{name}"
            if args.only and args.only != key:
                continue
            path = out / f"{peak:g}" / f"{name}.csv"
            if path.exists():  # a finished run is kept: the sweep resumes where it stopped
                continue
            start = time.perf_counter()
            result = pretrain(
                train, test, vocab, config(peak, options, args.seed, args.steps), quiet=True
            )
            seconds[key] = time.perf_counter() - start
            path.parent.mkdir(parents=True, exist_ok=True)
            write_csv(
                path,
                ["step", "lr", "loss"],
                [result.steps.tolist(), result.lr.tolist(), result.test_loss.tolist()],
            )
            print(f"{key}: final test loss {result.test_loss[-1]:.4f} in {seconds[key]:.0f} s")
    write_json(meta, {**record, "seconds": seconds, "total_seconds": sum(seconds.values())})


if __name__ == "__main__":
    main()
