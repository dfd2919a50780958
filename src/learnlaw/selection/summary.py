"""The summary of a selection: per-source counts and scores (``metrics.json``) and the
Markdown report."""

from __future__ import annotations

from typing import Any

import numpy as np


def selection_metrics(
    scores: np.ndarray, source: np.ndarray, sources: list[str], selected: np.ndarray
) -> dict[str, Any]:
    """How many sequences of each source there are, were kept, and their mean score."""
    counts = np.bincount(source, minlength=len(sources))
    kept = np.bincount(source[selected], minlength=len(sources))
    return {
        "sequences": len(scores),
        "selected": len(selected),
        "sources": list(sources),
        "per_source": {
            name: {
                "sequences": int(c),
                "kept": int(k),
                "kept_share": float(k / c) if c else None,
                "share_of_selection": float(k / len(selected)),
                "mean_score": float(scores[source == i].mean()) if c else None,
            }
            for i, (name, c, k) in enumerate(zip(sources, counts, kept))
        },
    }


def report(metrics: dict[str, Any]) -> str:
    """A short Markdown report of a selection."""
    lines = [
        "# Data selection",
        "",
        f"Kept {metrics['selected']} of {metrics['sequences']} sequences "
        f"({metrics['method']}, fraction {metrics['fraction']:g}).",
        "",
    ]
    sc = metrics["scorer"]
    lines.append(
        f"Data scorer: held-out Spearman rank correlation with the proxy scores "
        f"{fmt_score(sc['heldout_spearman'])} (on its training sequences {fmt_score(sc['train_spearman'])})."
    )
    proxy = metrics.get("proxy") or {}
    if "acceleration_ratio" in proxy:
        lines.append(
            f"Proxy policy ({proxy.get('policy', '')}): acceleration ratio "
            f"{proxy['acceleration_ratio']:.2f}x on {proxy.get('proxy_test_set', 'held-out')}."
        )
    if "corrupted_weight_ratio" in proxy:
        lines.append(
            f"Proxy weight on edited sequences / on clean ones: {proxy['corrupted_weight_ratio']:.2f}."
        )
    lines += ["", "| source | sequences | kept | kept share | share of selection | mean score |"]
    lines.append("|---|---|---|---|---|---|")
    for name, row in metrics["per_source"].items():
        share = "-" if row["kept_share"] is None else f"{100 * row['kept_share']:.1f}%"
        mean = "-" if row["mean_score"] is None else f"{row['mean_score']:.3f}"
        lines.append(
            f"| {name} | {row['sequences']} | {row['kept']} | {share} | "
            f"{100 * row['share_of_selection']:.1f}% | {mean} |"
        )
    corpus = metrics.get("corpus", {})
    if corpus.get("kind") == "mixture":
        lines += [
            "",
            f"Corpus: the built-in mixture; target: {corpus['target']}; other: "
            f"{corpus['other']}; edits: {corpus['edits']}.",
        ]
    seconds = metrics.get("seconds", {})
    if seconds:
        lines += ["", "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + "."]
    return "\n".join(lines) + "\n"


def fmt_score(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
