"""Data-parallel scaling of policy optimisation, and the GPU rows of the language model.

CPU rows: seconds per outer epoch (the forward run, the adjoint and the outer step; median over
the epochs that take a hypergradient and over --repeats runs) on 1 process and on 2 processes
with one thread each (gloo), at the paper's perceptron size (perceptron-paper: D=128, N=4096,
T=2000, float64) and at the lm-cpu size; the speed-up and the parallel efficiency
(speed-up / processes). Runs of 1 and 2 processes alternate, so both see the same load; the
load average is printed before and after. Every run is a fresh set of processes.

GPU rows (where CUDA exists, or with --gpu-device cpu --tiny to check the code on a CPU):
tokens per second of a full-batch training step of lm-paper (float32 and bf16 autocast), the
adjoint step over the training step, the peak GPU memory of one hypergradient at T = 50, a
compiled training step against the eager one, and the whole lm-gpu run (stopped by
--budget-minutes if it is slower than estimated).

    python benchmarks/scaling.py                     # CPU rows (about 15 minutes on 2 cores)
    python benchmarks/scaling.py --skip-lm --repeats 5
    python benchmarks/scaling.py --gpu-only          # what benchmarks/gpu_check.sh runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ---- CPU rows: 1 and 2 processes ----------------------------------------------------------
def _config(name: str, epochs: int, steps: int | None):
    from learnlaw.policy.config import load_config

    overrides = {"outer.epochs": epochs}
    if steps:
        overrides["train.steps"] = steps
    return load_config(name, None, overrides)


def _worker(rank: int, world: int, folder: str, name: str, epochs: int, steps: int | None):
    import torch

    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group(
            "gloo",
            init_method=f"file://{folder}/rendezvous",
            rank=rank,
            world_size=world,
            timeout=timedelta(minutes=30),
        )
    from learnlaw.policy import optimize

    result = optimize(config=_config(name, epochs, steps), quiet=True)
    if rank == 0:
        record = {
            "seconds": [h["seconds"] for h in result.history[:-1]],  # the epochs with an adjoint
            "objective": [h["objective"] for h in result.history],
        }
        (Path(folder) / "record.json").write_text(json.dumps(record))
    if world > 1:
        torch.distributed.destroy_process_group()


def _latency_worker(rank: int, folder: str) -> None:
    import torch

    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    x = torch.zeros(256, dtype=torch.float64)  # the perceptron's HVP and desired gradient
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(300):
            torch.distributed.all_reduce(x)
        rounds.append((time.perf_counter() - start) / 300)
    if rank == 0:
        (Path(folder) / "latency.json").write_text(json.dumps(statistics.median(rounds)))
    torch.distributed.destroy_process_group()


def collective_latency() -> float:
    """Median seconds of one all-reduce of 256 float64 between 2 processes (gloo, loopback)."""
    import multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_latency_worker, args=(r, folder)) for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return json.loads((Path(folder) / "latency.json").read_text())


def one_run(name: str, world: int, epochs: int, steps: int | None) -> dict:
    """Seconds per outer epoch and objective per epoch of a run on ``world`` fresh processes."""
    import multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=_worker, args=(r, world, folder, name, epochs, steps))
            for r in range(world)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise SystemExit(f"{name} on {world} processes failed")
        return json.loads((Path(folder) / "record.json").read_text())


def describe(name: str, steps: int | None) -> str:
    config = _config(name, 1, steps)
    o, t = config.task_options, config.train
    if config.task == "perceptron":
        return f"D={o.dim} N={o.n_train} T={t.steps} {t.dtype}"
    return (
        f"N={o.n_train}x{o.seq_len} tok, d={o.d_model}, L={o.n_layers}, V={o.vocab_size}, "
        f"T={t.steps} {t.dtype}"
    )


def cpu_rows(args) -> None:
    workloads = [("perceptron-paper", args.epochs, args.repeats, None)]
    if not args.skip_lm:
        workloads.append(("lm-cpu", 1, args.lm_repeats, args.lm_steps))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    latency = collective_latency()
    print(
        f"{'config':17} {'size':46} {'P':>2} {'threads':>8} {'s/epoch':>8} "
        f"{'speed-up':>9} {'efficiency':>10}"
    )
    differences = []
    for name, epochs, repeats, steps in workloads:
        times: dict[int, list[float]] = {1: [], 2: []}
        objectives: dict[int, list[float]] = {}
        for _ in range(repeats):
            for world in (1, 2):  # alternate, so both see the same load
                record = one_run(name, world, epochs, steps)
                times[world] += record["seconds"]
                objectives[world] = record["objective"]
        one = statistics.median(times[1])
        for world in (1, 2):
            s = statistics.median(times[world])
            print(
                f"{name:17} {describe(name, steps):46} {world:>2} {'1 each':>8} {s:8.2f} "
                f"{one / s:8.2f}x {one / s / world:10.2f}",
                flush=True,
            )
        a, b = objectives[1], objectives[2]
        worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
        differences.append(f"{name} {worst:.1e} over {len(a)} epochs")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"objective per epoch, largest relative difference 2 vs 1 process: {'; '.join(differences)}"
    )
    print(
        f"one all-reduce of 256 float64 between 2 processes: {1e6 * latency:.0f} us at the start "
        "(a perceptron-paper epoch makes 2 per step: 4000)"
    )
    print(
        f"medians over {args.repeats} (perceptron) / {args.lm_repeats} (lm) runs of each; "
        "2 cores, OMP_WAIT_POLICY=PASSIVE, gloo on loopback"
    )


# ---- GPU rows ------------------------------------------------------------------------------
def _timed(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gpu_rows(args) -> None:
    import torch
    from torch.func import grad

    from learnlaw.policy import optimize
    from learnlaw.policy.config import load_config
    from learnlaw.policy.engine import Policy, hypergradient
    from learnlaw.tasks.lm import LMTask
    from learnlaw.tasks.transformer import sequence_losses

    started = time.perf_counter()
    device = torch.device(args.gpu_device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def peak_reset():
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak() -> str:
        return f"peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else ""

    def row(label: str, value: str, note: str = "") -> None:
        print(f"{label:66} {value:>14}  {note}", flush=True)

    def minutes_left() -> float:
        return args.deadline_minutes - (time.perf_counter() - started) / 60

    tiny = {"lm.n_train": 64, "lm.n_desired": 32, "lm.n_test": 32, "lm.vocab_size": 512}
    paper = load_config("lm-paper", None, tiny if args.tiny else {})
    options = paper.task_options
    name = "lm-paper" + (" (tiny)" if args.tiny else "")
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"GPU rows on {device_name}, torch {torch.__version__}, median of {args.repeats}")
    row("measurement", "value", "note")
    task = LMTask(options, paper.seed, dtype=torch.float32, device=str(device))
    theta = task.theta0
    gamma = torch.full((task.n_train,), 1.0 / task.n_train, device=device)
    v = torch.randn_like(theta) * 1e-3
    tokens = task.n_train * (options.seq_len - 1)
    for label, autocast in (("float32", None), ("bf16 autocast", torch.bfloat16)):
        work = task.for_run(autocast=autocast)
        peak_reset()
        step = _timed(lambda w=work: w.train_gradient(theta, gamma), args.repeats, sync)
        adjoint = _timed(
            lambda w=work: (w.dots_and_hvp(theta, gamma, v), w.objective_value_and_grad(theta)),
            args.repeats,
            sync,
        )
        row(f"{name} full-batch step, {label}", f"{tokens / step:,.0f} tok/s", f"{step:.3f} s")
        row(f"{name} adjoint / train step, {label}", f"{adjoint / step:.2f}x", peak())
    # one hypergradient at T = 50 in bf16: the memory a whole run needs (checkpointing every
    # ceil(sqrt(50)) = 8 steps, chunks of lm.chunk_size sequences)
    work = task.for_run(autocast=torch.bfloat16)
    steps = 50
    policy = Policy.uniform(steps, task.n_train, 1, torch.float32, device)
    peak_reset()
    start = time.perf_counter()
    hypergradient(work, policy, paper.train.lr, steps)
    sync()
    row(f"{name} hypergradient T=50, bf16", f"{time.perf_counter() - start:.1f} s", peak())
    del task, work
    # the whole lm-gpu run, stopped after the epoch that passes the budget if it is slower
    # than estimated (and before the deadline)
    overrides = {"train.device": str(device)}
    if args.tiny:
        overrides.update({**tiny, "train.steps": 20, "outer.epochs": 2, "outer.segment": 2})
    config = load_config("lm-gpu", None, overrides)
    budget = max(0.5, min(args.budget_minutes, minutes_left() - 2.5))
    peak_reset()
    start = time.perf_counter()
    result = optimize(config=config, quiet=True, max_seconds=60 * budget)
    sync()
    epochs = len(result.history) - 1
    stopped = f", stopped by the {budget:.1f} min budget" if result.stopped_early else ""
    row(
        f"lm-gpu{' (tiny)' if args.tiny else ''} whole run ({epochs} outer epochs{stopped})",
        f"{time.perf_counter() - start:.0f} s",
        peak(),
    )
    per_epoch = result.metrics["seconds_per_epoch"]
    row("lm-gpu seconds per outer epoch (median)", f"{per_epoch:.1f} s")
    row("lm-gpu test acceleration ratio", f"{result.acceleration_ratio:.2f}x")
    # a compiled full-batch training step (first order only: the adjoint's double backward
    # cannot be compiled), to decide whether a compile option would pay
    if minutes_left() < 2.5:
        row("compiled training step", "skipped", "not enough time left")
        return
    chunk = result.task.data["train"][: options.chunk_size or result.task.n_train]
    model, unflatten = result.task.model, result.task.unflatten
    w = torch.full((len(chunk),), 1.0 / len(chunk), device=device)

    def loss(th):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return (w * sequence_losses(unflatten(th), chunk, model)).sum()

    theta = result.task.theta0
    eager = _timed(lambda: grad(loss)(theta), args.repeats, sync)
    try:
        start = time.perf_counter()
        compiled = torch.compile(grad(loss))
        compiled(theta)
        sync()
        compile_s = time.perf_counter() - start
        fast = _timed(lambda: compiled(theta), args.repeats, sync)
        row(
            "lm-gpu compiled / eager train step (one chunk, bf16)",
            f"{fast / eager:.2f}x",
            f"compile {compile_s:.0f} s",
        )
    except Exception as exc:  # report, do not stop the table
        row("lm-gpu compiled train step", "failed", type(exc).__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="perceptron runs per P")
    parser.add_argument("--epochs", type=int, default=3, help="perceptron outer epochs per run")
    parser.add_argument("--lm-repeats", type=int, default=1)
    parser.add_argument("--lm-steps", type=int, default=None, help="shorter lm-cpu horizon")
    parser.add_argument("--skip-lm", action="store_true")
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU rows")
    parser.add_argument("--gpu-device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="GPU rows at a tiny size (a check)")
    parser.add_argument("--budget-minutes", type=float, default=6.0, help="for the lm-gpu run")
    parser.add_argument("--deadline-minutes", type=float, default=60.0, help="for the GPU rows")
    args = parser.parse_args()
    import torch

    gpu = args.gpu_device != "cuda" or torch.cuda.is_available()
    if not args.gpu_only:
        cpu_rows(args)
    if gpu:
        gpu_rows(args)
    elif args.gpu_only:
        sys.exit("no CUDA GPU here (use --gpu-device cpu --tiny to check the GPU rows' code)")


if __name__ == "__main__":
    main()
