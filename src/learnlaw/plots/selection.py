"""Plots of data selection: the scores of a corpus by source."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from learnlaw.plots import subplots

MAX_SOURCES = 10  # more sources than this: the largest ones, the rest as "other"


def plot_score_histogram(
    scores: np.ndarray, source: np.ndarray, names: list[str], threshold: float | None = None
) -> Figure:
    """Overlaid histograms of the scores of each source (densities share one set of bins)."""
    fig, ax = subplots(figsize=(7, 4))
    counts = np.bincount(source, minlength=len(names))
    order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    groups = [(names[i], source == i) for i in order[:MAX_SOURCES]]
    if len(order) > MAX_SOURCES:
        groups.append(("other", np.isin(source, order[MAX_SOURCES:])))
    lo, hi = np.percentile(scores, [0.5, 99.5]) if len(scores) else (0.0, 1.0)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 60)
    for name, mask in groups:
        ax.hist(
            np.clip(scores[mask], bins[0], bins[-1]),
            bins=bins,
            histtype="step",
            linewidth=1.5,
            label=f"{name} ({int(mask.sum())})",
        )
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label="kept from here")
    ax.set_xlabel("score (data scorer)")
    ax.set_ylabel("sequences")
    ax.set_title("Scores by source")
    ax.legend(fontsize=8)
    return fig
