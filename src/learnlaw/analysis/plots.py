"""Plots of a policy run: loss curves, the outer objective per epoch, the policy heat map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnlaw.files import save_figure
from learnlaw.plots import plt


def plot_run_curves(
    uniform: dict[str, np.ndarray],
    learned: dict[str, np.ndarray],
    out: Path,
    metrics: dict | None = None,
) -> Path:
    """Test and desired loss under both policies, on linear and log-log axes."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    t = np.arange(len(uniform["test"]))
    for ax, log in zip(axes, (False, True)):
        for split, style in (("test", "-"), ("objective", ":")):
            if split not in uniform:
                continue
            ax.plot(
                t[1:],
                uniform[split][1:],
                style,
                color="C0",
                lw=1.5,
                label=f"uniform policy, {split} set",
            )
            ax.plot(
                t[1:],
                learned[split][1:],
                style,
                color="C3",
                lw=1.5,
                label=f"learned policy, {split} set",
            )
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title("log-log axes")
        else:
            ax.axhline(uniform["test"][-1], color="0.5", lw=0.8, ls="--")
            title = "loss under the uniform and the learned policy"
            if metrics:
                title += (
                    f"\nacceleration {metrics['acceleration_ratio']:.2f}x, "
                    f"AUC ratio {metrics['auc_ratio']:.2f} (test set)"
                )
            ax.set_title(title)
        ax.set_xlabel("training step t")
        ax.set_ylabel("loss (nats)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_objective(history: list[dict], best_epoch: int, out: Path) -> Path:
    """The outer objective and the held-out areas per epoch, the kept epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    ax.plot(
        epochs,
        [h["objective"] for h in history],
        "-",
        color="C0",
        label="objective J (optimised set)",
    )
    ax2 = ax.twinx()
    ax2.plot(
        epochs,
        [h["select_auc"] for h in history],
        "-",
        color="C1",
        label="loss area, selection set",
    )
    ax.axvline(best_epoch, color="C3", ls="--", lw=1, label=f"kept: epoch {best_epoch}")
    ax.set_xlabel("outer epoch")
    ax.set_ylabel("J = mean desired loss over steps")
    ax2.set_ylabel("selection-set loss area")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, fontsize=8)
    ax.set_title("outer optimisation")
    ax.grid(alpha=0.3)
    axes[1].plot(epochs, [h["test_acceleration"] for h in history], "-", color="C2")
    axes[1].axvline(best_epoch, color="C3", ls="--", lw=1)
    axes[1].axhline(1, color="0.5", lw=0.8)
    axes[1].set_xlabel("outer epoch")
    axes[1].set_ylabel("test acceleration ratio")
    axes[1].set_title("held-out test speed-up of each epoch's policy")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_policy_heatmap(
    weights: np.ndarray,
    out: Path,
    groups: np.ndarray | None = None,
    order: np.ndarray | None = None,
    max_pixels: int = 600,
) -> Path:
    """Weights (steps x examples) relative to uniform 1/N; examples sorted by mean weight
    (within the clean / corrupted groups when ``groups`` marks them), both axes binned to at most
    ``max_pixels`` by averaging."""
    steps, n = weights.shape
    if order is None:
        mean = weights.mean(axis=0)
        keys = (-mean,) if groups is None or not np.any(groups) else (-mean, groups)
        order = np.lexsort(keys)
    w = weights[:, order] * n
    w = _bin(_bin(w, max_pixels, axis=0), max_pixels, axis=1)
    fig, ax = plt.subplots(figsize=(10, 5))
    vmax = max(2.0, float(np.quantile(w, 0.99)))
    im = ax.imshow(
        w.T,
        aspect="auto",
        origin="lower",
        cmap="magma",
        vmin=0,
        vmax=vmax,
        extent=(0, steps, 0, n),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="weight x N (1 = uniform)")
    if groups is not None and np.any(groups):
        boundary = int(np.sum(~groups))
        ax.axhline(boundary, color="cyan", lw=1)
        ax.text(steps * 0.01, boundary * 0.5, "clean", color="cyan", va="center")
        ax.text(
            steps * 0.01, boundary + (n - boundary) * 0.5, "corrupted", color="cyan", va="center"
        )
    ax.set_xlabel("training step t")
    ax.set_ylabel("training example (sorted by mean weight)")
    ax.set_title("learned data policy")
    fig.tight_layout()
    return save_figure(fig, out)


def _bin(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    if n <= size:
        return a
    edges = np.linspace(0, n, size + 1).astype(int)
    return np.add.reduceat(a, edges[:-1], axis=axis) / np.diff(edges).reshape(
        (-1, 1) if axis == 0 else (1, -1)
    )
