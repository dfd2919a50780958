"""Accuracy and fit time of the loss-curve laws on the real curves in ../shared/data/loss-curves.

Per model size: one row per (size, split, law): PredE (mean over held-out files of the mean
relative error), worst relative error, mean R^2 and the median fit time over --repeats fits,
with the reference implementations' numbers beside (their READMEs / papers). Both splits
predict the standard split's six held-out files.

Across sizes (the Forward-Momentum law and the momentum law's size extension, fitted jointly
over model sizes given as 25e6 / 100e6 / 400e6): (a) fit every run of at most 24K steps of all
three sizes, predict the 72K runs; (b) fit every run of 25M and 100M, predict 400M.

Then the cooldown sweeps of scripts/cooldown_sweeps.py, if shipped (benchmarks/data/cooldown*).

    python benchmarks/curve_laws.py [--repeats 3] [--laws momentum,multipower] [--no-sizes]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from learnlaw.curves import read_curve
from learnlaw.laws import law_from_options
from learnlaw.laws.evaluation import score_curves

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loss-curves" / "multipowerlaw"
SPLITS = {
    "standard": ["constant_24000", "cosine_24000", "wsdcon_9"],
    "harder": ["constant_24000", "cosine_24000"],
}
ALL = [
    "constant_24000",
    "constant_72000",
    "cosine_24000",
    "cosine_72000",
    "wsd_20000_24000",
    "wsdld_20000_24000",
    "wsdcon_3",
    "wsdcon_9",
    "wsdcon_18",
]
SIZES = {"25M": 25e6, "100M": 100e6, "400M": 400e6}
# the reference implementations on the standard split: the Multi-Power Law's own repository
# (thu-yao-01-luo/MultiPowerLaw README; about 285 s per fit on this machine kind), the
# momentum law's paper (Tissue et al.)
REFERENCE = {
    "multipower": {"25M": 0.00110, "100M": 0.00142, "400M": 0.00168},
    "momentum": {"25M": 0.0014, "100M": 0.0022, "400M": 0.0025},
}
LAW_OPTIONS = {
    "momentum": ("momentum", {"lam": 0.999}),
    "momentum-auto": ("momentum", {"lam": "auto"}),
    "momentum-fit": ("momentum", {"lam": "fit"}),
    "multipower": ("multipower", {}),
    "forward-momentum": ("forward-momentum", {}),
}


def fit_timed(label, curves, repeats, **extra):
    name, options = LAW_OPTIONS[label]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        law = law_from_options(name, **options, **extra).fit(curves)
        times.append(time.perf_counter() - start)
    return law, statistics.median(times)


def row(*cells) -> None:
    print(" ".join(cells))
    sys.stdout.flush()


def per_size(args, curves) -> None:
    header = (
        f"{'size':5} {'split':8} {'law':16} {'PredE':>8} {'worst':>8} {'R^2':>8} "
        f"{'fit s':>7} {'reference':>9}"
    )
    print(header)
    print("-" * len(header))
    held_out = [n for n in ALL if n not in SPLITS["standard"]]
    for size in args.sizes.split(","):
        for split, fit_names in SPLITS.items():
            for label in args.laws.split(","):
                law, seconds = fit_timed(label, [curves[size][n] for n in fit_names], args.repeats)
                s = score_curves(law, [curves[size][n] for n in held_out])
                ref = REFERENCE.get(LAW_OPTIONS[label][0], {}).get(size)
                ref = (
                    f"{100 * ref:.3f}%"
                    if ref and split == "standard" and label in REFERENCE
                    else ""
                )
                row(
                    f"{size:5} {split:8} {label:16} {100 * s.pred_error:7.3f}% "
                    f"{100 * s.worst_error:7.3f}% {s.r2:8.5f} {seconds:7.2f} {ref:>9}"
                )


def across_sizes(args, curves) -> None:
    print("\nacross sizes (one joint fit, size scaling; PredE / worst / R^2 per predicted size)")
    splits = {
        "(a) fit <=24K, predict 72K": (
            [(s, n) for s in SIZES for n in ALL if "72000" not in n],
            [(s, n) for s in SIZES for n in ALL if "72000" in n],
        ),
        "(b) fit 25M+100M, predict 400M": (
            [(s, n) for s in ("25M", "100M") for n in ALL],
            [("400M", n) for n in ALL],
        ),
    }
    for split, (fit, held) in splits.items():
        for label in ("forward-momentum", "momentum"):
            law, seconds = fit_timed(label, [curves[s][n] for s, n in fit], 1, size_scaling=True)
            parts = []
            for size in dict.fromkeys(s for s, _ in held):
                sc = score_curves(law, [curves[s][n] for s, n in held if s == size])
                parts.append(
                    f"{size} {100 * sc.pred_error:.3f}% / {100 * sc.worst_error:.2f}% / {sc.r2:.4f}"
                )
            row(f"{split:31} {label:16} {'; '.join(parts)}  fit {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--laws", default="momentum,momentum-auto,momentum-fit,multipower")
    parser.add_argument("--sizes", default="25M,100M,400M")
    parser.add_argument("--no-sizes", action="store_true", help="Skip the across-sizes table.")
    parser.add_argument("--no-cooldown", action="store_true", help="Skip the cooldown table.")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    if DATA.is_dir():
        print(f"torch threads: {threads}, fit time = median of {args.repeats} fits")
        curves = {
            size: {
                n: read_curve(DATA / size / f"{n}.csv", warmup_steps=2160, model_size=SIZES[size])
                for n in ALL
            }
            for size in SIZES
        }
        per_size(args, curves)
        if not args.no_sizes:
            across_sizes(args, curves)
    else:
        print(f"skipped the shared curves: {DATA} is not present")
    if not args.no_cooldown:
        cooldown_table()


SWEEPS = Path(__file__).resolve().parent / "data"  # cooldown*/: one cooldown sweep per folder
COOLDOWN_LAWS = ("momentum", "momentum-auto", "momentum-fit", "multipower", "forward-momentum")


def cooldown_table() -> None:
    """The cooldown sweeps of scripts/cooldown_sweeps.py (if shipped, one per folder
    benchmarks/data/cooldown*: seeds, run lengths): each law fitted on the constant and cosine
    runs of a peak LR only, then ``sweep_wsd`` over the sweep's decay fractions (what
    ``learnlaw schedule sweep`` does), against the real WSD runs."""
    import json

    import numpy as np
    from scipy.stats import spearmanr

    from learnlaw.laws.selection import select_law
    from learnlaw.planning import sweep_wsd

    sweeps = sorted(SWEEPS.glob("cooldown*/sweep.json"))
    if not sweeps:
        print(f"\nno cooldown sweeps in {SWEEPS}/cooldown* (run scripts/cooldown_sweeps.py)")
        return
    header = (
        f"{'peak':6} {'law':22} {'best: predicted':>15} {'real':>5} {'Spearman':>8} "
        f"{'final err':>9} {'fit s':>6}"
    )
    for meta in sweeps:
        sweep = json.loads(meta.read_text())
        fractions = sweep["fractions"]
        print(
            f"\ncooldown sweep {meta.parent.name} ({sweep['steps']} steps, seed {sweep['seed']}, "
            f"warmup {sweep['warmup']}, test loss every {sweep['eval_every']} steps; WSD linear "
            "decay to peak/10): laws fitted on the constant and cosine runs only; final-loss "
            "error = mean |predicted - real| / real over the WSD runs"
        )
        print(header)
        print("-" * len(header))
        for peak in sweep["peaks"]:
            folder = meta.parent / f"{peak:g}"
            fit = [read_curve(folder / f"{n}.csv") for n in ("constant", "cosine")]
            # a sweep logs the loss of a fixed test set, not of noisy training batches: its last
            # point is the run's final loss (law predict/compare smooth a training log's tail)
            real = np.array([read_curve(folder / f"wsd_{f:g}.csv").losses[-1] for f in fractions])
            real_best = fractions[int(np.argmin(real))]
            for label in (*COOLDOWN_LAWS, "auto"):
                if label == "auto":  # learnlaw law fit --law auto: cross-validation on the runs
                    start = time.perf_counter()
                    selection = select_law(fit)
                    law, seconds = selection.law, time.perf_counter() - start
                    label = f"auto: {selection.choice}"
                else:
                    law, seconds = fit_timed(label, fit, 1)
                predicted = sweep_wsd(
                    law,
                    sweep["steps"],
                    peak,
                    final=peak / 10,
                    warmup=sweep["warmup"],
                    fractions=fractions,
                ).final_losses
                rho = spearmanr(predicted, real).statistic
                err = float(np.mean(np.abs(predicted - real) / real))
                best = fractions[int(np.argmin(predicted))]
                row(
                    f"{peak:<6g} {label:22} {best:15g} {real_best:5g} {rho:8.2f} "
                    f"{100 * err:8.3f}% {seconds:6.1f}"
                )
            print(
                f"{'':6} real final losses: "
                + ", ".join(f"{f:g}: {v:.4f}" for f, v in zip(fractions, real))
                + f"; constant {fit[0].losses[-1]:.4f}, cosine {fit[1].losses[-1]:.4f}"
            )


if __name__ == "__main__":
    main()
