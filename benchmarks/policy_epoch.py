"""Seconds per outer epoch and memory of the hypergradient at the paper's perceptron size.

Rows: the analytic and the generic (torch.func) path, each with the whole trajectory stored
(k = 1) and with checkpointing every k = ceil(sqrt(T)) steps. Columns: median seconds per outer
epoch (forward run + adjoint), its ratio to one plain training run, the number of parameter
vectors the adjoint holds at once, and the peak resident memory of a fresh process.

    python benchmarks/policy_epoch.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def measure(analytic: bool, k: int, repeats: int, steps: int, threads: int) -> dict:
    import torch

    from learnlaw.policy.engine import Policy, hypergradient, run_policy
    from learnlaw.tasks.perceptron import PerceptronConfig, PerceptronTask

    torch.set_num_threads(threads)
    task = PerceptronTask(PerceptronConfig(analytic=analytic), seed=0)
    policy = Policy.uniform(steps, task.n_train)
    epoch, plain = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_policy(task, policy, 0.1, steps)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hypergradient(task, policy, 0.1, steps, checkpoint_every=k)
        epoch.append(time.perf_counter() - t0)
    held = steps if k == 1 else -(-steps // k) + k  # parameter vectors alive during the sweep
    return {
        "epoch": statistics.median(epoch),
        "plain": statistics.median(plain),
        "held": held,
        "theta_bytes": task.theta0.numel() * task.theta0.element_size(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        analytic, k = json.loads(args.child)
        print(json.dumps(measure(analytic, k, args.repeats, args.steps, args.threads)))
        return
    import math

    k_sqrt = math.ceil(math.sqrt(args.steps))
    print(
        f"perceptron D=128 N=4096 T={args.steps}, float64, {args.threads} threads, "
        f"median of {args.repeats} repeats, each row in a fresh process"
    )
    header = (
        f"{'path':9} {'trajectory':18} {'s/epoch':>8} {'x plain run':>11} "
        f"{'held vectors':>12} {'peak RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for analytic in (True, False):
        for k in (1, k_sqrt):
            child = [
                sys.executable,
                __file__,
                "--child",
                json.dumps([analytic, k]),
                "--repeats",
                str(args.repeats),
                "--threads",
                str(args.threads),
                "--steps",
                str(args.steps),
            ]
            r = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
            results[(analytic, k)] = r
            label = "stored (k=1)" if k == 1 else f"checkpoint k={k}"
            print(
                f"{'analytic' if analytic else 'generic':9} {label:18} {r['epoch']:8.2f} "
                f"{r['epoch'] / r['plain']:11.1f} {r['held']:12d} {r['peak_rss_mb']:11.0f}"
            )
    best_a = min(r["epoch"] for (a, _), r in results.items() if a)
    best_g = min(r["epoch"] for (a, _), r in results.items() if not a)
    print(
        f"generic / analytic: {best_g / best_a:.1f}x (target <= 10x); analytic target <= 2 s per epoch"
    )


if __name__ == "__main__":
    main()
