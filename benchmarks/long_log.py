"""Fit time and peak memory of ``learnlaw law fit`` on a long per-step log.

Writes a per-step CSV (step, lr, train/loss and 30 other metric columns, like a tracker's
export; 2 million rows, about 1.2 GB) into a temporary folder, then runs the command in a fresh
process several times and prints the median wall time and the peak resident memory.

    python benchmarks/long_log.py [--rows 2000000] [--repeats 3] [--law momentum]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    warmup, peak, final = 2000, 3e-4, 3e-5
    with open(path, "w") as f:
        f.write(",".join(["step", "lr", "train/loss"] + [f"metric_{i}" for i in range(30)]) + "\n")
        for start in range(0, rows, 100_000):
            s = np.arange(start, min(start + 100_000, rows))
            progress = np.clip((s - warmup) / (rows - warmup), 0, 1)
            lr = np.where(
                s < warmup,
                peak * s / warmup,
                final + 0.5 * (peak - final) * (1 + np.cos(np.pi * progress)),
            )
            loss = (2.5 + 5 * (1 + s / 500) ** -0.4 - 0.3 * (1 - lr / peak)) * (
                1 + 0.015 * rng.standard_normal(len(s))
            )
            block = np.column_stack([s, lr, loss, rng.standard_normal((len(s), 30))])
            np.savetxt(f, block, delimiter=",", fmt=["%d", "%.9g", "%.7f"] + ["%.15g"] * 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--law", default="momentum")
    args = parser.parse_args()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "train_log.csv"
        write_log(log, args.rows)
        size = log.stat().st_size
        times = []
        for i in range(args.repeats):
            began = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "learnlaw",
                    "law",
                    "fit",
                    str(log),
                    "--law",
                    args.law,
                    "-o",
                    str(Path(folder) / f"fit{i}.json"),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            times.append(time.perf_counter() - began)
            if result.returncode != 0:
                sys.exit(result.stderr)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MB (Linux: kB)
    threads = os.environ.get("OMP_NUM_THREADS", "torch default")
    print(
        f"{args.rows:,} rows ({size / 1e9:.2f} GB), {args.law} law, threads: {threads}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"law fit wall time: median {statistics.median(times):.1f} s of {args.repeats} "
        f"(min {min(times):.1f}, max {max(times):.1f}); peak memory {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
