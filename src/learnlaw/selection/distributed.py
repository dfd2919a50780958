"""Data-parallel scoring with torch.distributed, kept small and local to data selection.

Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` in the environment) the scoring pass shards the
corpus's blocks by rank; every rank writes its blocks' scores into the output folder's work
area (a folder all ranks see), and rank 0 assembles them and writes the selection. Without a
launcher, or with a process group the caller made, nothing here changes anything.
"""

from __future__ import annotations

import os
from datetime import timedelta


def world() -> tuple[int, int]:
    """(rank, world size): from an initialised process group, else from torchrun's
    environment (initialising a gloo group), else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size > 1 and "RANK" in os.environ and dist.is_available():
        # the proxy solve runs on rank 0 while the others wait: allow it hours, not minutes
        dist.init_process_group("gloo", timeout=timedelta(hours=24))
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_ok(ok: bool, size: int) -> bool:
    """A barrier that also tells whether every rank got here without an error (a minimum over
    ranks of one integer: no objects are pickled)."""
    if size == 1:
        return ok
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1 if ok else 0], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
