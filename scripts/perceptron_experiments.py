"""Run a table of perceptron configurations (the table in ``docs/perceptron-configs.md``).

Every experiment is the paper's set-up (``configs/perceptron-reference.toml``: D=128, N=4096,
K=512, test 512, eta=0.1, T=2000) with a few overrides: the reading of "N(0, 3I)", the size
of the desired set, label noise, and the outer optimiser. Runs go two at a time, one thread
each, through the real command line; results are read back from each run's metrics.json.

    python scripts/perceptron_experiments.py --out runs/perceptron-table [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS: dict[str, dict[str, object]] = {
    "reference": {"outer.method": "pgd", "outer.lr": 1e-3},
    "var-K512-eg": {"outer.method": "eg", "outer.lr": "auto"},
    "std-K512-eg": {"perceptron.train_scale_is": "std", "outer.method": "eg", "outer.lr": "auto"},
    "std-K512-pgd": {"perceptron.train_scale_is": "std", "outer.method": "pgd", "outer.lr": "auto"},
    "var-K2048-eg": {"perceptron.n_desired": 2048, "outer.method": "eg", "outer.lr": "auto"},
    "std-K2048-eg": {
        "perceptron.train_scale_is": "std",
        "perceptron.n_desired": 2048,
        "outer.method": "eg",
        "outer.lr": "auto",
    },
    "var-K2048-pgd": {"perceptron.n_desired": 2048, "outer.method": "pgd", "outer.lr": "auto"},
    "var-K512-eg-noise10": {
        "perceptron.label_noise": 0.1,
        "outer.method": "eg",
        "outer.lr": "auto",
    },
    "std-K512-pgd-x5": {
        "perceptron.train_scale_is": "std",
        "outer.method": "pgd",
        "outer.lr": "auto",
        "outer.max_change": 5.0,
    },
    "std-K512-pgd-x50": {
        "perceptron.train_scale_is": "std",
        "outer.method": "pgd",
        "outer.lr": "auto",
        "outer.max_change": 50.0,
    },
    "std-K512-eg-noselect": {
        "perceptron.train_scale_is": "std",
        "perceptron.select_fraction": 0.0,
        "outer.method": "eg",
        "outer.lr": "auto",
    },
}


def run_one(name: str, overrides: dict, out: Path, epochs: int, minutes: float) -> dict:
    run_dir = out / name
    args = [
        "learnlaw",
        "policy",
        "optimize",
        "--config",
        "perceptron-reference",
        "--out",
        str(run_dir),
        "--epochs",
        str(epochs),
        "--max-minutes",
        str(minutes),
        "--quiet",
        "--set",
        "train.checkpoint_every=1",
    ]
    for key, value in overrides.items():
        args += ["--set", f"{key}={json.dumps(value) if isinstance(value, str) else value}"]
    if (run_dir / "checkpoint.pt").exists():
        args.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"name": name, "error": proc.stderr.strip().splitlines()[-1]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "name": name,
        "overrides": overrides,
        "metrics": metrics,
        "wall": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "perceptron-table")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--only", default=None)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument(
        "--table-only", action="store_true", help="Rewrite the table from results.json."
    )
    args = parser.parse_args()
    if args.table_only:
        write_table(
            json.loads((args.out / "results.json").read_text()),
            args.out / "table.md",
            args,
        )
        return
    names = args.only.split(",") if args.only else list(EXPERIMENTS)
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(
            pool.map(
                lambda n: run_one(n, EXPERIMENTS[n], args.out, args.epochs, args.minutes), names
            )
        )
    for r in results:
        if "error" in r:
            print(f"{r['name']}: failed: {r['error']}", file=sys.stderr)
            continue
        m = r["metrics"]
        print(
            f"{r['name']:24} AR {m['acceleration_ratio']:6.2f}  AUC ratio {m['auc_ratio']:.3f}  "
            f"kept epoch {m['kept_epoch']:4d} of {m['epochs_run'] - 1}  {m['seconds_per_epoch']:.2f} s/epoch"
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    write_table(results, args.out / "table.md", args)


def describe(overrides: dict) -> tuple[str, str, str, str]:
    reading = overrides.get("perceptron.train_scale_is", "variance")
    k = str(overrides.get("perceptron.n_desired", 512))
    noise = f"{overrides.get('perceptron.label_noise', 0.0):.0%}"
    outer = f"{overrides.get('outer.method', 'pgd')}, lr {overrides.get('outer.lr', 'auto')}"
    if overrides.get("outer.lr", "auto") == "auto":
        outer += f" (max_change {overrides.get('outer.max_change', 0.5):g})"
    if overrides.get("perceptron.select_fraction") == 0.0:
        outer += ", no selection split"
    return reading, k, noise, outer


def write_table(results: list[dict], path: Path, args) -> None:
    lines = [
        f"<!-- written by scripts/perceptron_experiments.py: --epochs {args.epochs} "
        f"--minutes {args.minutes}, {args.parallel} runs at a time, one thread each -->",
        "| experiment | N(0,3I) read as | desired K | label noise | outer optimiser | epochs run | "
        "kept epoch | test AR | test AUC ratio | test CR uniform -> learned | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} |")
            continue
        m = r["metrics"]
        reading, k, noise, outer = describe(r["overrides"])
        cr = m["compression_ratio"]
        lines.append(
            f"| {r['name']} | {reading} | {k} | {noise} | {outer} | {m['epochs_run'] - 1} | "
            f"{m['kept_epoch']} | {m['acceleration_ratio']:.2f} | {m['auc_ratio']:.3f} | "
            f"{cr['uniform']:.2f} -> {cr['learned']:.2f} | {m['seconds_per_epoch']:.2f} |"
        )
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
