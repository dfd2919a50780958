"""Make the example loss curves shipped in ``src/learnlaw/data/curves/``.

A tiny transformer language model (learnlaw.tasks.transformer) is trained on the built-in
English corpus with AdamW under several learning-rate schedules that share one seed, one
initialisation and one batch order, so the curves differ only by their schedule. The
validation loss is logged every ``--eval-every`` steps and written as ``step,lr,loss`` CSV.

    python scripts/make_example_curves.py            # about 10 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from learnlaw.curves import LossCurve, write_curve_csv
from learnlaw.files import versions, write_json, write_text
from learnlaw.schedules import parse_schedule
from learnlaw.tasks.text import chunk, load_corpus, token_stream, train_tokenizer
from learnlaw.tasks.transformer import TransformerConfig, count_params, init_params, sequence_losses

OUT = Path(__file__).resolve().parents[1] / "src" / "learnlaw" / "data" / "curves"
PEAK, FINAL, WARMUP, TOTAL = 3e-3, 3e-4, 100, 2000
SCHEDULES = {
    "constant": f"constant:peak={PEAK},warmup={WARMUP},total={TOTAL}",
    "cosine": f"cosine:peak={PEAK},final={FINAL},warmup={WARMUP},total={TOTAL}",
    "wsd": f"wsd:peak={PEAK},final={FINAL},warmup={WARMUP},total={TOTAL},decay_frac=0.2,shape=linear",
    "multistep": f"multistep:peak={PEAK},warmup={WARMUP},milestones=1000,values={3 * FINAL},total={TOTAL}",
}


def train(
    spec: str, seqs: np.ndarray, val: torch.Tensor, config: TransformerConfig, args
) -> LossCurve:
    schedule = parse_schedule(spec)
    params = init_params(config, torch.Generator().manual_seed(args.seed))
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params.values(), lr=PEAK, betas=(0.9, 0.95), weight_decay=0.1)
    order = np.random.default_rng(args.seed).integers(0, len(seqs), size=(TOTAL, args.batch))
    steps, losses = [], []
    for step in range(TOTAL + 1):
        if step % args.eval_every == 0 and step >= WARMUP:
            with torch.no_grad():
                steps.append(step)
                losses.append(float(sequence_losses(params, val, config).mean()))
        if step == TOTAL:
            break
        for group in opt.param_groups:
            group["lr"] = float(schedule.lr(step))
        loss = sequence_losses(params, torch.as_tensor(seqs[order[step]]), config).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
    return LossCurve(np.array(steps), np.array(losses), schedule, warmup_steps=WARMUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    docs = load_corpus("wiki")
    tokenizer = train_tokenizer(docs, 2048)
    seqs = chunk(token_stream(docs, tokenizer), 65)
    rng = np.random.default_rng(1234)
    perm = rng.permutation(len(seqs))
    val = torch.as_tensor(seqs[perm[:256]])
    train_seqs = seqs[perm[256:]]
    config = TransformerConfig(
        vocab_size=2048, seq_len=65, d_model=64, n_layers=2, n_heads=4, d_ff=256
    )
    meta = {
        "model": config.to_json(),
        "parameters": count_params(init_params(config, torch.Generator())),
        "corpus": "wiki",
        "tokens": int(seqs.size),
        "batch": args.batch,
        "optimizer": "AdamW(0.9, 0.95), wd 0.1, clip 1.0",
        "seed": args.seed,
        "warmup": WARMUP,
        "total": TOTAL,
        "schedules": SCHEDULES,
        "versions": versions(),
    }
    for name, spec in SCHEDULES.items():
        start = time.perf_counter()
        curve = train(spec, train_seqs, val, config, args)
        write_curve_csv(curve, args.out / f"{name}.csv")
        print(
            f"{name}: final validation loss {curve.losses[-1]:.4f} ({time.perf_counter() - start:.0f} s)"
        )
    write_json(args.out / "runs.json", meta)
    write_text(args.out / "README.md", _readme(meta))


def _readme(meta: dict) -> str:
    rows = "\n".join(f"| `{k}.csv` | `{v}` |" for k, v in meta["schedules"].items())
    return f"""# Example loss curves (made by learnlaw itself)

Validation loss of a {meta["parameters"]:,}-parameter transformer language model (2 layers, width 64)
trained on the built-in English corpus ({meta["tokens"]:,} BPE tokens, vocabulary 2048) with
{meta["optimizer"]}, batch {meta["batch"]} x 64 tokens, the same seed, initialisation and
batch order for every run. Warmup {meta["warmup"]} steps; rows start after warmup.
Made by `scripts/make_example_curves.py`; `runs.json` holds the full configuration.

| file | schedule |
|---|---|
{rows}
"""


if __name__ == "__main__":
    main()
