"""Accuracy and fit time of the loss-curve laws on the real curves in ../shared/data/loss-curves.

Prints one row per (size, split, law): PredE (mean over held-out files of the mean relative
error), worst relative error, mean R^2 and the median fit time over --repeats fits.

    python benchmarks/curve_laws.py [--repeats 3] [--laws momentum,momentum-auto]
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
from learnlaw.laws import law_from_options, law_points
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
PUBLISHED = {
    "momentum": {"25M": 0.0014, "100M": 0.0022, "400M": 0.0025},
    "multipower": {"25M": 0.0012, "100M": 0.0013, "400M": 0.0019},
}
LAW_OPTIONS = {
    "momentum": ("momentum", {"lam": 0.999}),
    "momentum-auto": ("momentum", {"lam": "auto"}),
    "multipower": ("multipower", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--laws", default="momentum,momentum-auto,multipower")
    parser.add_argument("--sizes", default="25M,100M,400M")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not present")
        return
    print(f"torch threads: {torch.get_num_threads()}, fit time = median of {args.repeats} fits")
    header = f"{'size':5} {'split':8} {'law':14} {'PredE':>8} {'worst':>8} {'R^2':>8} {'fit s':>7} {'published':>9}"
    print(header)
    print("-" * len(header))
    # both splits predict the standard split's six held-out files
    held_out = [n for n in ALL if n not in SPLITS["standard"]]
    for size in args.sizes.split(","):
        curves = {
            n: law_points(read_curve(DATA / size / f"{n}.csv", warmup_steps=2160)) for n in ALL
        }
        for split, fit_names in SPLITS.items():
            for label in args.laws.split(","):
                name, options = LAW_OPTIONS[label]
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    law = law_from_options(name, **options).fit([curves[n] for n in fit_names])
                    times.append(time.perf_counter() - start)
                scores = score_curves(law, [curves[n] for n in held_out])
                pred_e, worst, r2 = scores.pred_error, scores.worst_error, scores.r2
                published = PUBLISHED.get(label, {}).get(size) if split == "standard" else None
                pub = f"{100 * published:.2f}%" if published else ""
                print(
                    f"{size:5} {split:8} {label:14} {100 * pred_e:7.3f}% {100 * worst:7.3f}% "
                    f"{r2:8.5f} {statistics.median(times):7.2f} {pub:>9}"
                )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
