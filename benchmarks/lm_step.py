"""Speed of the language-model task: one full-batch training step and one adjoint step.

Prints training tokens per second for a full-batch step (the gradient of the policy-weighted
loss over all N sequences) and the cost of one adjoint step (the N dot products and the
Hessian-vector product from one double-backward pass, plus the desired-loss gradient)
relative to one training step (target <= 4x). Medians of --repeats, threads stated.

    python benchmarks/lm_step.py [--n-train 256] [--seq-len 32] [--d-model 64] [--vocab 2048]
    python benchmarks/lm_step.py --config lm-cpu    # the sizes of a (built-in) run config
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from learnlaw.tasks.lm import LMConfig, LMTask


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="take the data and model sizes from this run config")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.config:
        from learnlaw.policy.config import load_config

        cfg = load_config(args.config).task_options
        if not isinstance(cfg, LMConfig):
            raise SystemExit(f"--config {args.config}: not a language-model config")
    else:
        cfg = LMConfig(
            vocab_size=args.vocab,
            seq_len=args.seq_len,
            n_train=args.n_train,
            n_desired=128,
            n_test=128,
            d_model=args.d_model,
            n_layers=args.n_layers,
            n_heads=args.n_heads,
            d_ff=args.d_ff,
        )
    task = LMTask(cfg, 0, dtype=torch.float32, device=args.device)
    theta = task.theta0
    gamma = torch.full((task.n_train,), 1.0 / task.n_train, device=theta.device)
    v = torch.randn_like(theta) * 1e-3
    step = timed(lambda: task.train_gradient(theta, gamma), args.repeats)
    adjoint = timed(
        lambda: (task.dots_and_hvp(theta, gamma, v), task.objective_value_and_grad(theta)),
        args.repeats,
    )
    evaluate = timed(lambda: task.evaluate(theta), args.repeats)
    tokens = task.n_train * (cfg.seq_len - 1)
    print(
        f"LM task{f' ({args.config})' if args.config else ''}: {task.theta0.numel():,} parameters, "
        f"N={task.n_train} sequences x {cfg.seq_len} tokens, vocabulary {cfg.vocab_size}, "
        f"{args.device}, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'operation':44} {'seconds':>9} {'x train step':>13}")
    print(f"{'full-batch training step (weighted gradient)':44} {step:9.3f} {1.0:13.2f}")
    print(
        f"{'adjoint step (dots + HVP + desired gradient)':44} {adjoint:9.3f} {adjoint / step:13.2f}"
    )
    print(f"{'evaluation of the held-out sets':44} {evaluate:9.3f} {evaluate / step:13.2f}")
    print(f"training throughput: {tokens / step:,.0f} tokens per second; adjoint target <= 4x")


if __name__ == "__main__":
    main()
