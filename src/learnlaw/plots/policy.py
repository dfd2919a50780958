"""Plots of a policy run: loss curves, the outer objective per epoch, the policy heat map, and
where the policy puts its weight."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from learnlaw.plots import subplots

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_run_curves(
    uniform: dict[str, np.ndarray],
    learned: dict[str, np.ndarray],
    metrics: dict | None = None,
) -> Figure:
    """Test and desired loss under both policies, on linear and log-log axes."""
    fig, axes = subplots(1, 2, figsize=(12, 4.6))
    t = np.arange(len(uniform["test"]))
    for ax, log in zip(axes, (False, True)):
        for split, style in (("test", "-"), ("objective", ":")):
            if split not in uniform:
                continue
            for curves, color, name in ((uniform, "C0", "uniform"), (learned, "C3", "learned")):
                ax.plot(
                    t[1:],
                    curves[split][1:],
                    style,
                    color=color,
                    lw=1.5,
                    label=f"{name} policy, {split} set",
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
    return fig


def plot_objective(history: list[dict], kept_epoch: int) -> Figure:
    """The outer objective and the held-out areas per epoch, the kept epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig, axes = subplots(1, 2, figsize=(12, 4.2))
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
    ax.axvline(kept_epoch, color="C3", ls="--", lw=1, label=f"kept: epoch {kept_epoch}")
    ax.set_xlabel("outer epoch")
    ax.set_ylabel("J = mean desired loss over steps")
    ax2.set_ylabel("selection-set loss area")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, fontsize=8)
    ax.set_title("outer optimisation")
    ax.grid(alpha=0.3)
    axes[1].plot(epochs, [h["test_acceleration"] for h in history], "-", color="C2")
    axes[1].axvline(kept_epoch, color="C3", ls="--", lw=1)
    axes[1].axhline(1, color="0.5", lw=0.8)
    axes[1].set_xlabel("outer epoch")
    axes[1].set_ylabel("test acceleration ratio")
    axes[1].set_title("held-out test speed-up of each epoch's policy")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_policy_heatmap(
    weights: np.ndarray,
    groups: np.ndarray | None = None,
    sort_key: np.ndarray | None = None,
    sort_label: str = "mean weight",
    max_pixels: int = 600,
) -> Figure:
    """Weights (steps x examples) relative to uniform 1/N; examples sorted by ``sort_key``
    (default: mean weight, largest first), within the clean / corrupted groups when ``groups``
    marks them; both axes binned to at most ``max_pixels`` by averaging."""
    steps, n = weights.shape
    key = -weights.mean(axis=0) if sort_key is None else np.asarray(sort_key)
    order = np.lexsort((key,) if groups is None or not np.any(groups) else (key, groups))
    w = weights[:, order] * n
    w = _bin(_bin(w, max_pixels, axis=0), max_pixels, axis=1)
    fig, ax = subplots(figsize=(10, 5))
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
    ax.set_ylabel(f"training example (sorted by {sort_label})")
    ax.set_title("learned data policy")
    fig.tight_layout()
    return fig


def _bin(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = a.shape[axis]
    if n <= size:
        return a
    edges = np.linspace(0, n, size + 1).astype(int)
    return np.add.reduceat(a, edges[:-1], axis=axis) / np.diff(edges).reshape(
        (-1, 1) if axis == 0 else (1, -1)
    )


def plot_corrupted_weight(clean: np.ndarray, dirty: np.ndarray, n: int) -> Figure:
    """Mean weight (in units of 1/N) on clean and on corrupted examples at every step."""
    steps = np.arange(len(clean))
    fig, ax = subplots(figsize=(9, 4))
    ax.plot(steps, n * clean, color="C2", lw=1.2, label="clean examples")
    ax.plot(steps, n * dirty, color="C3", lw=1.2, label="corrupted examples")
    ax.axhline(1, color="k", ls="--", lw=0.8, label="uniform policy")
    ax.set_xlabel("training step t")
    ax.set_ylabel("mean weight x N")
    ax.set_title("Where the learned policy puts its weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
