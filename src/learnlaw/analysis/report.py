"""``report.html``: one self-contained page (images embedded as data URIs, opens offline)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.files import write_text
from learnlaw.plots import png_bytes, save_figure
from learnlaw.plots.learning_law import (
    plot_ct_distributions,
    plot_loss_with_laws,
    plot_property_shares,
    plot_sim,
)
from learnlaw.plots.policy import plot_corrupted_weight, plot_policy_heatmap
from learnlaw.policy.speedup import group_mean_weights


def _fmt(x: Any, percent: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{100 * x:.1f}%" if percent else f"{x:.4g}"


def _signed(change: float | None, better: str, larger_is_better: bool = False) -> str:
    """A signed relative change, saying whether it is the paper's improvement."""
    if change is None:
        return "-"
    good = change > 0 if larger_is_better else change < 0
    return f"{100 * change:+.1f}% ({'improved: ' + better if good else 'not improved'})"


def _corrupted_rows(p1c: dict[str, Any] | None, th: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Property 1 over the task's corrupted examples, if it has any: the share to two decimals
    and whether it meets its threshold (it is read against one)."""
    if not p1c:
        return []
    label = f"Property 1: corrupted examples with weight < {th['zero_weight']:g}/N"
    share = p1c["share_pooled"]
    if share is None:
        return [(label, "-", "-")]
    if "threshold" not in p1c:  # an analysis.json written before the threshold was added
        return [(label, f"{100 * share:.2f}%", "-")]
    met = "met" if p1c["meets_threshold"] else "not met"
    return [(label, f"{100 * share:.2f}% ({met})", f"threshold {100 * p1c['threshold']:g}%")]


def headline_rows(a: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(quantity, this run, the paper) for the report's table."""
    paper = a.get("paper", {})
    sl = a["step_law"]
    cr = a["compression_ratio"]["log2"]
    th = a["thresholds"]
    return [
        (
            "acceleration ratio (test)",
            _fmt(a["acceleration_ratio"]),
            _fmt(paper.get("acceleration_ratio")),
        ),
        ("AUC ratio (test)", _fmt(a["auc"]["ratio"]), "-"),
        (
            "compression ratio, log2|V| / nats: uniform -> learned",
            f"{cr['uniform']:.3f} -> {cr['learned']:.3f}",
            _fmt(paper.get("compression_ratio_learned")),
        ),
        (
            "SIM, uniform policy (steps away from uniform)",
            _fmt(a["sim"]["uniform_away_steps"]),
            _fmt(paper.get("sim_uniform")),
        ),
        (
            "SIM, learned policy (steps away from uniform)",
            _fmt(a["sim"]["learned_away_steps"]),
            _fmt(paper.get("sim_learned")),
        ),
        (
            f"Property 1: CT <= 0 examples with weight < {th['zero_weight']:g}/N",
            _fmt(a["property1"]["share_pooled"], True),
            "confirmed",
        ),
        (
            f"Property 1 without fitted ones (loss < {th['fitted_loss']:g}) (their share)",
            f"{_fmt(a['property1']['share_pooled_not_fitted'], True)} "
            f"({_fmt(a['property1']['already_fitted_share'], True)})",
            "-",
        ),
        (
            f"Property 1: CT < -{th['tau']:g} std(CT) examples with weight < {th['zero_weight']:g}/N",
            _fmt(a["property1"]["below_tau"]["share_pooled"], True),
            "confirmed",
        ),
        *_corrupted_rows(a["property1"].get("corrupted"), th),
        (
            f"Property 2: loss < {th['fitted_loss']:g} examples with weight < {th['small_weight']:g} max",
            _fmt(a["property2"]["share_pooled"], True),
            _fmt(paper.get("property2_share")),
        ),
        (
            "Property 3: largest number of zero weights (N - D)",
            f"{a['property3']['zero_weights_max']} ({a['property3']['n_minus_dim'] if a['property3']['n_minus_dim'] is not None else '-'})",
            "some",
        ),
        (
            "step law r^2, uniform / learned",
            f"{sl['uniform']['r2']:.4f} / {sl['learned']['r2']:.4f}",
            "0.995 / 0.999 (transformer)",
        ),
        *(
            [
                (
                    f"step law r^2 on a {ss['window']}-step moving average, uniform / learned",
                    f"{ss['uniform']['r2']:.4f} / {ss['learned']['r2']:.4f}",
                    f"threshold {ss['r2_threshold']:g} (learned)",
                )
            ]
            if (ss := a.get("step_law_smoothed"))
            else []
        ),
        (
            "B change, learned vs uniform",
            _signed(sl["B_change"], "B down"),
            _fmt(paper.get("B_change")),
        ),
        (
            "beta change, learned vs uniform",
            _signed(sl["beta_change"], "beta up", larger_is_better=True),
            _fmt(paper.get("beta_change")),
        ),
        (
            "acceleration from the fitted laws (closed form) at T",
            _fmt(sl["acceleration_closed_form"]),
            "-",
        ),
        *[
            (
                f"extrapolated acceleration at T = {k}",
                _fmt(v),
                "> 9 at 1e7 (transformer)" if k == "1e+07" else "-",
            )
            for k, v in sl["extrapolated_acceleration"].items()
        ],
        *(
            [
                (
                    "mean weight on corrupted / clean examples, mean over t (first -> last step)",
                    f"{cw['mean']:.3f} ({cw['first_step']:.3f} -> {cw['last_step']:.3f})",
                    "-",
                )
            ]
            if (cw := a.get("corrupted_weight_ratio"))
            else []
        ),
    ]


def analysis_notes(a: dict[str, Any]) -> list[str]:
    """Sentences that qualify the headline table (printed under it, not squeezed into a cell)."""
    notes = [f"step law: {a['step_law']['note']}"] if a["step_law"].get("note") else []
    which = a["policy"]
    kept, lowest = which["kept_epoch"], which["lowest_objective_epoch"]
    if which["which"] == "kept" and None not in (kept, lowest) and kept != lowest:
        notes.append(
            f"policy: the kept policy (outer epoch {kept}) is not the optimiser's best point "
            f"(epoch {lowest}, lowest objective); the Learning Law "
            "describes the optimum: check it there with --policy objective"
        )
    return notes


def _figures(a) -> list[tuple[str, Any, str]]:
    """(file name, figure, caption) of every figure of the report."""
    data, th = a.data, a.data["thresholds"]
    n = data["n_train"]
    groups = a.corrupted
    shown = [
        (
            "loss_laws.png",
            plot_loss_with_laws(a.uniform.curves, a.learned.curves, a.fits),
            "Test loss under both policies with the fitted step scaling laws L0 + (B/t)^beta (shared L0 and t0).",
        ),
        (
            "sim.png",
            plot_sim(a.uniform, a.learned),
            f"SIM_t for both policies (examples with weight below {th['zero_weight']:g}/N are not in use).",
        ),
        (
            "contributions.png",
            plot_ct_distributions(a.uniform, a.learned, th["zero_weight"], n),
            "Contribution distributions at chosen steps: examples the learned policy weights, examples it zeroes, "
            "and the uniform policy's.",
        ),
        (
            "policy_by_ct.png",
            plot_policy_heatmap(
                a.per_step_weights,
                groups=groups,
                sort_key=a.learned.mean_ct,
                sort_label="mean contribution CT, lowest first",
            ),
            "The learned policy, examples ordered by their mean contribution over the run"
            + (
                " within the clean and corrupted groups."
                if groups is not None and np.any(groups)
                else "."
            ),
        ),
        (
            "properties.png",
            plot_property_shares(a.learned, data["property3"]["n_minus_dim"]),
            f"Property shares over time (zero weight: below {th['zero_weight']:g}/N; perfectly fitted: loss below "
            f"{th['fitted_loss']:g}; small weight: below {th['small_weight']:g} x the step's largest).",
        ),
    ]
    if groups is not None and np.any(groups) and not np.all(groups):
        clean, dirty = group_mean_weights(a.per_step_weights, np.asarray(groups, dtype=bool))
        shown.append(
            (
                "corrupted_weight.png",
                plot_corrupted_weight(clean, dirty, n),
                "Mean weight of the learned policy on clean and on corrupted training examples, "
                "in units of the uniform weight 1/N.",
            )
        )
    return shown


def write_report(a, page: Path, figures_dir: Path | None = None) -> Path:
    """The report page of analysis ``a`` (a ``learnlaw.analysis.Analysis``), images embedded;
    with ``figures_dir`` the PNGs are written there too."""
    analysis = a.data
    th = analysis["thresholds"]
    n = analysis["n_train"]
    images = []
    for name, fig, caption in _figures(a):
        if figures_dir is not None:
            save_figure(fig, figures_dir / name)
        images.append((png_bytes(fig), caption))
    rows = "\n".join(
        f"<tr><td>{html.escape(q)}</td><td>{html.escape(v)}</td><td>{html.escape(p)}</td></tr>"
        for q, v, p in headline_rows(analysis)
    )
    notes = "\n".join(f"<p>{html.escape(note)}</p>" for note in analysis_notes(analysis))
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for data, caption in images
    )
    which = analysis["policy"]
    epoch = f" (outer epoch {which['epoch']})" if which["epoch"] is not None else ""
    source = html.escape(a.source)
    html_page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>learnlaw analysis: {source}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Learning-Law analysis of <code>{source}</code></h1>
<p>Learned policy: {html.escape(which["meaning"])}{epoch}.</p>
<p>Task <b>{html.escape(analysis["task"])}</b>, T = {analysis["steps"]} steps, N = {n} training examples.
Every number is measured on the held-out test set unless stated; thresholds: {html.escape(str(th))}.</p>
<table><tr><th>quantity</th><th>this run</th><th>paper</th></tr>
{rows}
</table>
{notes}
{imgs}
</body></html>
"""
    return write_text(page, html_page)
