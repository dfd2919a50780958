"""Plots of the Learning-Law analysis: loss curves with the fitted step laws, SIM over time,
contribution distributions and the property shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from learnlaw.plots import subplots

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_loss_with_laws(uniform: dict, learned: dict, fits) -> Figure:
    """Test loss of both policies with their fitted step laws, linear and log-log."""
    fig, axes = subplots(1, 2, figsize=(12, 4.6))
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
    return fig


def plot_sim(uniform, learned) -> Figure:
    """SIM_t of both policies; steps where the learned policy is away from uniform shaded."""
    fig, ax = subplots(figsize=(9, 4))
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
    return fig


def plot_ct_distributions(uniform, learned, zero_threshold: float, n: int) -> Figure:
    """Contribution histograms at the snapshot steps: learned policy split into examples it
    weights and examples it zeroes; the uniform policy's contributions as an outline."""
    snaps = sorted(learned.snapshots)
    fig, axes = subplots(1, len(snaps), figsize=(3.6 * len(snaps), 3.6), squeeze=False)
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
    return fig


def plot_property_shares(learned, n_minus_dim: int | None) -> Figure:
    """Property 1 and 2 shares over time, and the number of zero weights (Property 3)."""
    fig, axes = subplots(1, 2, figsize=(12, 4))
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
    return fig
