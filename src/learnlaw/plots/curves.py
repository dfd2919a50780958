"""Plots of loss curves, law predictions and schedules (PNG, written atomically)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib import patheffects

from learnlaw.laws.metrics import pred_error
from learnlaw.plots import subplots

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class CurvePanel:
    """One curve to draw: real losses (may be None), the law's prediction, the LR (at
    ``lr_steps``, or every step from 0)."""

    name: str
    steps: np.ndarray
    predicted: np.ndarray
    lrs: np.ndarray
    real: np.ndarray | None = None
    fitted: bool = False
    band: tuple[np.ndarray, np.ndarray] | None = None  # a prediction band (low, high)
    lr_steps: np.ndarray | None = None  # the steps of ``lrs`` (None: 0, 1, 2, ...)


def _colors(n: int):
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_predictions(
    panels: list[CurvePanel],
    title: str = "",
    fitted_range: tuple[int, int] | None = None,
) -> Figure:
    """Predicted against real curves, the fitted range shaded, residuals, and the LR beneath."""
    has_real = any(p.real is not None for p in panels)
    rows = 3 if has_real else 2
    ratios = [3, 1.3, 1.2] if has_real else [3, 1.2]
    fig, axes = subplots(
        rows,
        1,
        figsize=(9, 7.5 if has_real else 6),
        sharex=True,
        gridspec_kw={"height_ratios": ratios},
    )
    ax_loss, ax_lr = axes[0], axes[-1]
    for panel, color in zip(panels, _colors(len(panels))):
        tag = " (fitted)" if panel.fitted else ""
        if panel.real is not None:  # faint, beneath: the predicted line must stay visible
            ax_loss.plot(panel.steps, panel.real, "o", ms=2.5, color=color, alpha=0.45, zorder=1)
        ax_loss.plot(
            panel.steps,
            panel.predicted,
            "-",
            lw=1.6,
            color=color,
            label=panel.name + tag,
            zorder=3,
            path_effects=[patheffects.withStroke(linewidth=3.2, foreground="white")],
        )
        if panel.band is not None:
            ax_loss.fill_between(
                panel.steps, panel.band[0], panel.band[1], color=color, alpha=0.2, lw=0
            )
        if panel.real is not None:
            rel = 100 * (panel.predicted - panel.real) / panel.real
            axes[1].plot(panel.steps, rel, "-", lw=1, color=color)
        lr_steps = np.arange(len(panel.lrs)) if panel.lr_steps is None else panel.lr_steps
        ax_lr.plot(lr_steps, panel.lrs, "-", lw=1.1, color=color)
    if fitted_range is not None:
        for ax in axes:
            ax.axvspan(
                *fitted_range,
                color="0.85",
                alpha=0.35,
                lw=0,
                label="fitted steps" if ax is ax_loss else None,
            )
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=8, ncol=2)
    ax_loss.set_title(title or "loss curves: law (lines) against real runs (dots)")
    if has_real:
        axes[1].axhline(0, color="k", lw=0.6)
        axes[1].set_ylabel("error (%)")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_sweep(fractions: np.ndarray, losses: np.ndarray, title: str) -> Figure:
    """Predicted final loss against the WSD decay fraction, with the best one marked."""
    fig, ax = subplots(figsize=(7, 4.2))
    ax.plot(100 * np.asarray(fractions), losses, "o-", ms=4)
    best = int(np.argmin(losses))
    ax.plot(
        100 * fractions[best],
        losses[best],
        "*",
        ms=14,
        color="C3",
        label=f"best: {100 * fractions[best]:.0f}% ({losses[best]:.4f})",
    )
    ax.set_xlabel("decay fraction of all steps (%)")
    ax.set_ylabel("predicted final loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_law_comparison(curves, predictions: dict[str, dict[str, np.ndarray]]) -> Figure:
    """One panel per curve: the real losses and each law's prediction, with relative errors."""
    n = len(curves)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, curve in zip(axes.flat, curves):
        ax.plot(curve.steps, curve.losses, "o", ms=2, color="0.3", alpha=0.6, label="real")
        for (name, preds), color in zip(predictions.items(), ("C0", "C3", "C2")):
            err = 100 * pred_error(preds[curve.name], curve.losses)
            ax.plot(
                curve.steps,
                preds[curve.name],
                "-",
                color=color,
                lw=1.3,
                label=f"{name} ({err:.3f}%)",
            )
        ax.set_title(curve.name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_pretrain_curve(steps, train_loss, test_loss) -> Figure:
    """Train and test loss of a pre-training run."""
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(steps[1:], train_loss[1:], label="train (mini-batch mean)")
    ax.plot(steps, test_loss, label="test")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("Pre-training")
    ax.legend()
    return fig
