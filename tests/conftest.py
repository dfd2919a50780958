"""Shared fixtures. Tests that read ../shared/ skip cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SHARED_CURVES = ROOT.parent / "shared" / "data" / "loss-curves" / "multipowerlaw"


@pytest.fixture
def shared_curves() -> Path:
    if not SHARED_CURVES.is_dir():
        pytest.skip("../shared/data/loss-curves is not present")
    return SHARED_CURVES


# a momentum law and three schedules: the synthetic logs of the law and schedule CLI tests
LAW_TRUTH = {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
LAW_SPECS = {
    "constant": "constant:peak=3e-4,warmup=500,total=12000",
    "cosine": "cosine:peak=3e-4,final=3e-5,warmup=500,total=12000",
    "wsd": "wsd:peak=3e-4,final=3e-5,warmup=500,total=12000,decay_frac=0.25,shape=linear",
}


def true_momentum_law():
    """The momentum law (lambda 0.999) with ``LAW_TRUTH`` as its fitted parameters."""
    from learnlaw.laws import MomentumLaw

    law = MomentumLaw(lam=0.999)
    law.lam_, law.params_ = 0.999, dict(LAW_TRUTH)
    return law


@pytest.fixture
def curve_files(tmp_path) -> dict[str, Path]:
    """CSV logs of ``LAW_SPECS`` from step 512 (after the 500-step warmup, as the shared data
    start) every 64 steps, with 0.03% noise."""
    import numpy as np

    from learnlaw.curves import LossCurve, write_curve_csv
    from learnlaw.schedules import parse_schedule

    law, rng, files = true_momentum_law(), np.random.default_rng(0), {}
    steps = np.arange(512, 12000, 64)
    for name, spec in LAW_SPECS.items():
        sched = parse_schedule(spec)
        loss = law.predict(sched, steps) * (1 + 3e-4 * rng.standard_normal(len(steps)))
        files[name] = write_curve_csv(LossCurve(steps, loss, sched), tmp_path / f"{name}.csv")
    return files


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``learnlaw ARGS`` in-process; return (exit code, stdout, stderr)."""
    from learnlaw.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def noisy_law_curves(law, specs, steps, noise: float, rng, **fields) -> list:
    """Curves a fitted ``law`` predicts for schedule ``specs``, times (1 + noise * N(0, 1)).

    ``steps`` is an array, or a function of the parsed schedule; each curve is named by its
    schedule's kind and starts its fit after the schedule's warmup."""
    from learnlaw.curves import LossCurve
    from learnlaw.schedules import parse_schedule

    curves = []
    for spec in specs:
        sched = parse_schedule(spec)
        at = steps(sched) if callable(steps) else steps
        clean = law.predict(sched, at)
        noisy = clean * (1 + noise * rng.standard_normal(len(at)))
        curves.append(
            LossCurve(
                at, noisy, sched, warmup_steps=sched.warmup, name=spec.split(":")[0], **fields
            )
        )
    return curves


# ---- running a function on P real processes --------------------------------------------------
def _rank_main(
    rank: int, world: int, folder: str, target, kwargs: dict, timeout_s: float, dump_s: float
):
    """One spawned process: join a gloo group, run ``target(rank, **kwargs)``, write its result
    (or its error) to ``folder/rankR.json``, leave the group."""
    import faulthandler
    import json
    import traceback
    from datetime import timedelta

    import torch

    from learnlaw.errors import UserError

    faulthandler.enable()  # should the process abort, stderr shows where each thread was
    faulthandler.dump_traceback_later(dump_s)  # and, should it hang, before it is killed
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"file://{folder}/rendezvous",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=timeout_s),
    )
    result: dict = {}
    try:
        result = target(rank, **kwargs)
    except UserError as exc:
        result = {"error": str(exc), "type": type(exc).__name__}
    except BaseException:
        result = {"error": traceback.format_exc(), "type": "bug"}
    finally:
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(result))
        torch.distributed.destroy_process_group()  # the others' collectives fail at once


def on_processes(
    folder: Path, target, world: int = 2, meanwhile=None, timeout_s: float = 60.0, **kwargs
):
    """Run ``target(rank, **kwargs)`` (a module-level function returning a JSON-able dict) on
    ``world`` spawned processes of a gloo group whose collectives give up after ``timeout_s``;
    their results, in rank order (and ``meanwhile()``'s, computed here while they run).

    A process that died before writing its result gives ``{"exitcode": code}``. One that wrote
    its result and was then aborted (SIGABRT: gloo has been seen to abort a finished process
    on its way out) gives its result and a warning; any other bad exit after the result fails."""
    import json
    import multiprocessing as mp
    import signal
    import warnings

    folder.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    wait_s = max(240.0, timeout_s + 60)
    args = (world, str(folder), target, kwargs, timeout_s, wait_s - 20)
    procs = [ctx.Process(target=_rank_main, args=(r, *args)) for r in range(world)]
    try:
        for p in procs:
            p.start()
        local = meanwhile() if meanwhile is not None else None
        for p in procs:
            p.join(timeout=wait_s)
            assert p.exitcode is not None, f"{target.__name__}: a process hung"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    results = []
    for r, p in enumerate(procs):
        path = folder / f"rank{r}.json"
        if not path.exists():
            results.append({"exitcode": p.exitcode})
            continue
        results.append(json.loads(path.read_text()))
        if p.exitcode == -signal.SIGABRT:
            message = f"{target.__name__}: rank {r} aborted after writing its result"
            warnings.warn(message, stacklevel=2)
        else:
            assert p.exitcode == 0, f"{target.__name__}: rank {r} exited with {p.exitcode}"
    return results if meanwhile is None else (results, local)
