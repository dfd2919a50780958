"""Data parallelism over torch.distributed: which examples are this process's, and the few
collectives a policy run needs.

A run on P processes (ranks) splits every set of examples (train, objective, select, test)
into P contiguous blocks, rank r taking block r. Each rank builds the whole task from the seed
but computes only over its blocks; the engine sums the ranks' shares of every full-batch
quantity with one all-reduce, and keeps the per-example quantities (the N dot products, the
policy's columns) on their rank. On one process every collective is the identity, so a
single-process run does exactly what it did before this module existed.

    comm = Comm.of(process_group)   # None: the default group if one is initialised, else 1 process
    a, b = comm.block(n)            # this rank's examples a..b-1 of a set of n
    g = comm.sum(local_g)           # all-reduce (several tensors in one call: comm.sum(x, y))

Failures: a process that fails posts its message in the group's store before it stops; a
collective on another process that loses its peer (or waits past the group's timeout) raises
``PeerFailure`` naming the rank that failed and its message. ``joined`` starts and ends the
process group of a ``torchrun`` launch for the command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch

from learnlaw.errors import UserError

FAILED_KEY = "learnlaw/failed/{}"  # "RANK\nmessage" of the first process that failed
REPORTED_KEY = "learnlaw/reported"  # set by rank 0 once it reports a failure itself
_opened = [0]  # communicators opened in this process: every rank opens them in the same order


class PeerFailure(UserError):
    """Another process of the run failed (or stopped answering): this one stops too."""


class RankFailure(UserError):
    """This process (not rank 0) failed and rank 0 did not report it: say so, naming the rank."""


def _dist():
    import torch.distributed as dist

    return dist


def _message(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


class Comm:
    """One process's place in a run: its rank, the number of processes, and the collectives
    (identities on one process). Build it with ``Comm.of``."""

    def __init__(
        self,
        rank: int = 0,
        world_size: int = 1,
        group: Any = None,
        device: torch.device | str = "cpu",
        store: Any = None,
    ) -> None:
        self.rank, self.world_size = rank, world_size
        self.group, self.device, self.store = group, torch.device(device), store
        # one store key per communicator, so that a failure of an earlier run in the same
        # processes is not taken for this run's
        self._failed_key = FAILED_KEY.format(_opened[0])
        _opened[0] += world_size > 1

    @classmethod
    def of(cls, group: Any = None) -> Comm:
        """The communicator of ``group`` (an initialised torch.distributed process group); with
        None, the default group when torch.distributed is initialised, else one process; a
        ``Comm`` (e.g. ``SINGLE``: this process alone) as it is."""
        if isinstance(group, Comm):
            return group
        dist = _dist()
        if not (dist.is_available() and dist.is_initialized()):
            if group is not None:
                raise UserError("process_group: torch.distributed is not initialised")
            return cls()
        world = dist.get_world_size(group)
        if world == 1:
            return cls()
        # nccl reduces CUDA tensors of the current device; gloo reduces CPU tensors
        nccl = dist.get_backend(group) == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if nccl else "cpu"
        try:  # where a failing process leaves its message (private, but stable for years)
            store = dist.distributed_c10d._get_default_store()
        except (AttributeError, RuntimeError, ValueError):  # pragma: no cover
            store = None
        return cls(dist.get_rank(group), world, group, device, store)

    @property
    def single(self) -> bool:
        return self.world_size == 1

    def __repr__(self) -> str:
        return f"Comm(rank={self.rank}, world_size={self.world_size})"

    # ---- sharding --------------------------------------------------------------------------
    def block(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """Examples ``a..b-1`` of a set of ``n`` that rank ``rank`` (default: this one) owns:
        contiguous blocks in rank order, sizes differing by at most one."""
        r = self.rank if rank is None else rank
        return r * n // self.world_size, (r + 1) * n // self.world_size

    def run_device(self, requested: str) -> str:
        """The device this rank computes on: ``cuda`` means one GPU per rank (with nccl the
        current device, which ``joined`` sets from ``LOCAL_RANK``)."""
        if requested != "cuda" or self.single:
            return requested
        if self.device.type == "cuda":
            return str(self.device)
        local = os.environ.get("LOCAL_RANK")
        index = int(local) if local is not None else self.rank % torch.cuda.device_count()
        return f"cuda:{index}"

    # ---- collectives -----------------------------------------------------------------------
    def sum(self, *tensors: torch.Tensor) -> Any:
        """Every tensor summed over the ranks (one all-reduce for all of them); one tensor in,
        one out; several in, a tuple out."""
        if self.single:
            return tensors[0] if len(tensors) == 1 else tensors
        out = self._all_reduce(tensors, "SUM")
        return out[0] if len(out) == 1 else out

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise maximum over the ranks."""
        return tensor if self.single else self._all_reduce((tensor,), "MAX")[0]

    def total(self, count: int) -> int:
        """``count`` summed over the ranks (e.g. columns per rank -> N)."""
        if self.single:
            return count
        return round(float(self.sum(torch.tensor([float(count)], dtype=torch.float64))))

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (the same answer on every rank)."""
        if self.single:
            return flag
        return bool(self.max(torch.tensor([float(flag)], dtype=torch.float64)))

    def gather(self, tensor: torch.Tensor, n: int) -> torch.Tensor:
        """The ranks' blocks of the last dimension put back together: (..., n)."""
        if self.single:
            return tensor
        sizes = [b - a for a, b in (self.block(n, r) for r in range(self.world_size))]
        if tensor.shape[-1] != sizes[self.rank]:
            raise ValueError(f"gather: {tensor.shape[-1]} columns, expected {sizes[self.rank]}")
        # all_gather moves equal sizes: pad every block to the largest
        width = max(sizes)
        padded = torch.nn.functional.pad(tensor, (0, width - tensor.shape[-1])).to(self.device)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        self._call("all_gather", parts, padded.contiguous())
        return torch.cat([p[..., :s] for p, s in zip(parts, sizes)], dim=-1).to(tensor.device)

    def barrier(self) -> None:
        if not self.single:
            self.sum(torch.zeros(1))  # an all-reduce: works on every backend and device

    def _all_reduce(self, tensors, op: str) -> list[torch.Tensor]:
        dist = _dist()
        flat = torch.cat([t.reshape(-1) for t in tensors]).to(self.device)
        self._call("all_reduce", flat, op=getattr(dist.ReduceOp, op))
        out, start = [], 0
        for t in tensors:
            out.append(flat[start : start + t.numel()].view(t.shape).to(t.device))
            start += t.numel()
        return out

    def _call(self, name: str, *args, **kwargs) -> None:
        try:
            getattr(_dist(), name)(*args, group=self.group, **kwargs)
        except RuntimeError as exc:  # gloo and nccl report a lost peer or a timeout this way
            raise self._peer_failure(exc) from None

    # ---- failures --------------------------------------------------------------------------
    def post_failure(self, exc: BaseException) -> None:
        """Leave this process's message for the others (the first process to fail wins)."""
        if self.single or self.store is None or isinstance(exc, PeerFailure):
            return
        try:
            self.store.compare_set(self._failed_key, "", f"{self.rank}\n{_message(exc)}")
        except Exception:  # the store is gone too: the others will say a peer was lost
            pass

    def posted_failure(self) -> tuple[int, str] | None:
        """(rank, message) of the process that failed first, if one left a message (waiting up
        to 2 s for it)."""
        if not _wait_for(self.store, self._failed_key, 2.0):
            return None
        try:
            rank, _, message = self.store.get(self._failed_key).decode("utf-8").partition("\n")
            return int(rank), message
        except Exception:
            return None

    def _peer_failure(self, exc: RuntimeError) -> PeerFailure:
        posted = self.posted_failure()
        if posted is not None:
            rank, message = posted
            return PeerFailure(f"process {rank} of {self.world_size} failed: {message}")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return PeerFailure(
            f"process {self.rank} of {self.world_size}: lost contact with the other processes "
            f"of the run, or they did not answer within the timeout ({first[:200]})"
        )

    @contextmanager
    def failures(self) -> Iterator[None]:
        """Post the message of any exception raised inside (see ``post_failure``)."""
        try:
            yield
        except BaseException as exc:
            self.post_failure(exc)
            raise


SINGLE = Comm()


@contextmanager
def joined(device: str = "cpu", timeout_minutes: float = 10.0) -> Iterator[Comm]:
    """The communicator of a ``torchrun`` launch (environment RANK and WORLD_SIZE): the process
    group is started here (nccl for a CUDA device, one GPU per rank by LOCAL_RANK; gloo on
    CPU; collectives give up after ``timeout_minutes``) and destroyed on the way out. One
    process (or a group the caller started) is used as it is.

    When the body raises, the group is destroyed first, so the other processes' collectives
    fail at once instead of at the timeout. Rank 0 reports every failure; another rank that
    failed raises ``RankFailure`` (naming itself) only when rank 0 did not report it within a
    few seconds, so a command prints one line however many processes stop.
    """
    dist = _dist()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        yield Comm.of(None)
        return
    if not dist.is_available():  # pragma: no cover - torch built without distributed
        raise UserError("WORLD_SIZE > 1, but this torch has no torch.distributed")
    cuda = device.startswith("cuda")  # checked with the config (configfile.check_device)
    if cuda:
        local, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if device != "cuda":
            raise UserError(
                f"device {device!r} with {world} processes: give 'cuda' (each process takes "
                "the GPU of its LOCAL_RANK)"
            )
        if local >= gpus:
            raise UserError(f"process with LOCAL_RANK {local}: this machine has {gpus} GPU(s)")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=timeout_minutes))
    comm = Comm.of(None)
    try:
        yield comm
    except BaseException as exc:
        comm.post_failure(exc)
        dist.destroy_process_group()
        if comm.rank == 0:
            if comm.store is not None:
                try:
                    comm.store.set(REPORTED_KEY, "1")
                except Exception:
                    pass
            raise
        if isinstance(exc, UserError) and not isinstance(exc, PeerFailure):
            if not _wait_for(comm.store, REPORTED_KEY, 10.0):
                raise RankFailure(f"process {comm.rank} of {comm.world_size}: {exc}") from None
        raise
    else:
        dist.destroy_process_group()


def _wait_for(store: Any, key: str, seconds: float) -> bool:
    """Whether ``key`` appears in ``store`` within ``seconds`` (False without a store)."""
    if store is None:
        return False
    deadline = time.monotonic() + seconds
    try:
        while not store.check([key]):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
    except Exception:  # the store went away with its host
        return False


def reports_errors() -> bool:
    """Whether this process prints the run's errors: rank 0 (or the only process) does; the
    others stay quiet (rank 0 reports their failures, see ``joined``)."""
    return os.environ.get("RANK", "0") == "0"
