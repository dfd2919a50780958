"""Plots of a policy run: loss curves, the outer objective per epoch, the policy heat map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnlaw.analysis.metrics import group_mean_weights
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
    sort_key: np.ndarray | None = None,
    sort_label: str = "mean weight",
    max_pixels: int = 600,
) -> Path:
    """Weights (steps x examples) relative to uniform 1/N; examples sorted by ``sort_key``
    (default: mean weight, largest first), within the clean / corrupted groups when ``groups``
    marks them; both axes binned to at most ``max_pixels`` by averaging."""
    steps, n = weights.shape
    key = -weights.mean(axis=0) if sort_key is None else np.asarray(sort_key)
    order = np.lexsort((key,) if groups is None or not np.any(groups) else (key, groups))
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
    ax.set_ylabel(f"training example (sorted by {sort_label})")
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


def plot_loss_with_laws(uniform: dict, learned: dict, fits, out: Path) -> Path:
    """Test loss of both policies with their fitted step laws, linear and log-log."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    t = np.arange(len(uniform["test"]))
    for ax, log in zip(axes, (False, True)):
        for curve, fit, color, name in (
            (uniform, fits[0], "C0", "uniform"),
            (learned, fits[1], "C3", "learned"),
        ):
            ax.plot(
                t[1:], curve["test"][1:], "-", color=color, lw=1.6, label=f"{name} policy (test)"
            )
            tt = t[t > fit.t0]
            ax.plot(
                tt,
                fit.predict(tt),
                "--",
                color="k" if name == "uniform" else "0.4",
                lw=1,
                label=f"L0 + (B/t)^beta: B={fit.B:.3g}, beta={fit.beta:.3f}, r2={fit.r2:.4f}",
            )
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("training step t")
        ax.set_ylabel("test loss (nats)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7.5)
    axes[0].set_title("test loss and the fitted step scaling laws")
    axes[1].set_title("log-log axes")
    fig.tight_layout()
    return save_figure(fig, out)


def plot_sim(uniform, learned, out: Path) -> Path:
    """SIM_t of both policies; steps where the learned policy is away from uniform shaded."""
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(uniform.steps, uniform.sim, color="C0", lw=1.2, label="uniform policy")
    ax.plot(learned.steps, learned.sim, color="C3", lw=1.2, label="learned policy")
    if learned.away.any():
        ax.fill_between(
            learned.steps,
            0,
            1,
            where=learned.away,
            transform=ax.get_xaxis_transform(),
            color="C3",
            alpha=0.07,
            lw=0,
            label="learned policy away from uniform",
        )
    ax.set_xlabel("training step t")
    ax.set_ylabel("SIM_t = weighted mean CT / std CT")
    ax.set_title("Learning Law: how equal the contributions of the examples in use are")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_ct_distributions(uniform, learned, zero_threshold: float, n: int, out: Path) -> Path:
    """Contribution histograms at the snapshot steps: learned policy split into examples it
    weights and examples it zeroes; the uniform policy's contributions as an outline."""
    snaps = sorted(learned.snapshots)
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.6 * len(snaps), 3.6), squeeze=False)
    for ax, t in zip(axes[0], snaps):
        s = learned.snapshots[t]
        zero = s["gamma"] < zero_threshold / n
        lo, hi = np.quantile(np.concatenate([s["ct"], uniform.snapshots[t]["ct"]]), [0.005, 0.995])
        bins = np.linspace(lo, hi, 50) if hi > lo else 50
        ax.hist(
            s["ct"][~zero], bins=bins, color="C3", alpha=0.6, label=f"weighted ({(~zero).sum()})"
        )
        ax.hist(
            s["ct"][zero], bins=bins, color="0.3", alpha=0.6, label=f"zero weight ({zero.sum()})"
        )
        ax.hist(
            uniform.snapshots[t]["ct"],
            bins=bins,
            histtype="step",
            color="C0",
            label="uniform policy",
        )
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(f"step {t}")
        ax.set_xlabel("CT_n(t)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("examples")
    fig.suptitle("contributions CT_n = grad L_dsr . grad l_n under the learned policy", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_property_shares(learned, n_minus_dim: int | None, out: Path) -> Path:
    """Property 1 and 2 shares over time, and the number of zero weights (Property 3)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(
        learned.steps,
        100 * learned.prop1_share,
        color="C2",
        lw=1.2,
        label="P1: harmful (CT <= 0) examples with zero weight",
    )
    axes[0].plot(
        learned.steps,
        100 * learned.prop2_share,
        color="C4",
        lw=1.2,
        label="P2: perfectly fitted examples with small weight",
    )
    axes[0].set_ylim(-2, 102)
    axes[0].set_ylabel("share (%)")
    axes[0].set_title("Learning-Law properties 1 and 2 (learned policy)")
    axes[0].legend(fontsize=8)
    axes[1].plot(learned.steps, learned.zero_weights, color="C1", lw=1.2, label="zero weights")
    if n_minus_dim is not None:
        axes[1].axhline(n_minus_dim, color="k", ls="--", lw=0.8, label="N - D")
    axes[1].set_ylabel("examples")
    axes[1].set_title("Property 3: zero weights per step")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("training step t")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_corrupted_weight(weights: np.ndarray, corrupted: np.ndarray, out: Path) -> Path:
    """Mean weight (in units of 1/N) on clean and on corrupted examples over the run."""
    n = weights.shape[1]
    steps = np.arange(len(weights))
    clean, dirty = group_mean_weights(weights, corrupted)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(steps, n * clean, color="C2", lw=1.2, label="clean examples")
    ax.plot(steps, n * dirty, color="C3", lw=1.2, label="corrupted examples")
    ax.axhline(1, color="k", ls="--", lw=0.8, label="uniform policy")
    ax.set_xlabel("training step t")
    ax.set_ylabel("mean weight x N")
    ax.set_title("Where the learned policy puts its weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
