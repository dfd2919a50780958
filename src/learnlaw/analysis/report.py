"""``report.html``: one self-contained page (images embedded as data URIs, opens offline)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from learnlaw.analysis.plots import (
    plot_corrupted_weight,
    plot_ct_distributions,
    plot_loss_with_laws,
    plot_policy_heatmap,
    plot_property_shares,
    plot_sim,
)
from learnlaw.files import write_text


def _fmt(x: Any, percent: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{100 * x:.1f}%" if percent else f"{x:.4g}"


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
        ("|dB| / B", _fmt(sl["B_improvement"], True), _fmt(paper.get("B_improvement"))),
        (
            "|d beta| / beta",
            _fmt(sl["beta_improvement"], True),
            _fmt(paper.get("beta_improvement")),
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
                    f"{cw['mean']:.3f} ({cw['first_row']:.3f} -> {cw['last_row']:.3f})",
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


def write_report(
    run_dir: Path,
    analysis: dict[str, Any],
    uniform,
    learned,
    weights: np.ndarray,
    fits,
    groups: np.ndarray | None,
    page: str = "report.html",
    figures: str = "analysis",
) -> Path:
    figures_dir = run_dir / figures
    figures_dir.mkdir(exist_ok=True)
    th = analysis["thresholds"]
    n = analysis["n_train"]
    shown = [
        (
            plot_loss_with_laws(
                uniform.curves, learned.curves, fits, figures_dir / "loss_laws.png"
            ),
            "Test loss under both policies with the fitted step scaling laws L0 + (B/t)^beta (shared L0 and t0).",
        ),
        (
            plot_sim(uniform, learned, figures_dir / "sim.png"),
            f"SIM_t for both policies (examples with weight below {th['zero_weight']:g}/N are not in use).",
        ),
        (
            plot_ct_distributions(
                uniform, learned, th["zero_weight"], n, figures_dir / "contributions.png"
            ),
            "Contribution distributions at chosen steps: examples the learned policy weights, examples it zeroes, "
            "and the uniform policy's.",
        ),
        (
            plot_policy_heatmap(
                weights,
                figures_dir / "policy_by_ct.png",
                groups=groups,
                sort_key=learned.mean_ct,
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
            plot_property_shares(
                learned, analysis["property3"]["n_minus_dim"], figures_dir / "properties.png"
            ),
            f"Property shares over time (zero weight: below {th['zero_weight']:g}/N; perfectly fitted: loss below "
            f"{th['fitted_loss']:g}; small weight: below {th['small_weight']:g} x the step's largest).",
        ),
    ]
    if groups is not None and groups.any() and not groups.all():
        shown.append(
            (
                plot_corrupted_weight(weights, groups, figures_dir / "corrupted_weight.png"),
                "Mean weight of the learned policy on clean and on corrupted training examples, "
                "in units of the uniform weight 1/N.",
            )
        )
    rows = "\n".join(
        f"<tr><td>{html.escape(q)}</td><td>{html.escape(v)}</td><td>{html.escape(p)}</td></tr>"
        for q, v, p in headline_rows(analysis)
    )
    notes = "\n".join(f"<p>{html.escape(note)}</p>" for note in analysis_notes(analysis))
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for path, caption in shown
    )
    which = analysis["policy"]
    epoch = f" (outer epoch {which['epoch']})" if which["epoch"] is not None else ""
    html_page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>learnlaw analysis: {html.escape(str(run_dir))}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Learning-Law analysis of <code>{html.escape(str(run_dir))}</code></h1>
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
    return write_text(run_dir / page, html_page)
