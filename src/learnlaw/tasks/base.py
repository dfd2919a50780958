"""The contract a model meets to have its data policy learned, with generic implementations.

A task holds a model given functionally (a flat parameter vector ``theta`` and a per-example
loss function) and named sets of examples: ``train`` (the N examples the policy weights),
``objective`` (the part of the desired set whose loss area is minimised), optionally
``select`` (the part of the desired set that picks the kept outer epoch; without it the
objective set picks) and ``test`` (held out; every reported number).

A subclass sets ``theta0``, ``sizes`` (examples per split) and ``n_classes`` (|V| in the
compression ratio: 2 for a binary classifier, the vocabulary for a language model), and
implements ``losses(theta, split, start, stop)``. Optionally it marks ``corrupted`` training
examples (a boolean array: the analysis then reports the policy's weight on them) and
overrides any of the operations below with an analytic fast path. The engine calls only:

- ``train_gradient(theta, gamma)``: grad of sum_n gamma_n l_n(theta);
- ``objective_value_and_grad(theta)``: L_dsr(theta) on the objective set and its gradient;
- ``dots_and_hvp(theta, gamma, v)``: (grad l_n(theta) . v for every n, H v) with H the Hessian
  of sum_n gamma_n l_n at theta (one double-backward pass);
- ``evaluate(theta)``: mean loss on the objective, select and test sets.

``Task`` derives all four from ``losses(theta, split, start, stop)``: the dot products
and the Hessian-vector product come together from one double-backward pass. Large sets are
processed in chunks of ``chunk_size`` examples so memory stays bounded. A task may override any
operation with an analytic fast path.

Data parallelism (``learnlaw.distributed``): ``for_run(comm)`` gives a copy of the task that
computes over its rank's block ``local(split)`` of every set. Its operations then return this
rank's share of each full-batch quantity (sums and means over its examples, a mean still
divided by the whole set's size) and the dot products of its own examples; ``gamma`` holds
the weights of its own training examples. The policy engine sums the shares over the ranks.
On one process the share is the whole. An analytic fast path must honour ``local`` too.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch.func import grad, grad_and_value, jvp

from learnlaw.distributed import SINGLE, Comm
from learnlaw.errors import UserError

SPLITS = ("train", "objective", "select", "test")


def check_sizes(section: str, config: Any, positive: tuple[str, ...]) -> None:
    """The checks every task config shares: positive sizes, and a select part of the desired
    set that leaves examples for the objective. ``section`` names the config section."""
    for key in positive:
        if getattr(config, key) <= 0:
            raise UserError(f"{section}.{key} = {getattr(config, key)}: must be positive")
    if not 0 <= config.select_fraction < 1:
        raise UserError(f"{section}.select_fraction = {config.select_fraction}: must be in [0, 1)")
    if objective_size(config.n_desired, config.select_fraction) <= 0:
        raise UserError(f"{section}.select_fraction leaves no desired examples for the objective")


def objective_size(n_desired: int, select_fraction: float) -> int:
    """How many desired examples form the objective; the rest pick the kept outer epoch."""
    return n_desired - round(select_fraction * n_desired)


class Task:
    """Base class of tasks: subclasses set the attributes below and implement ``losses``.

    A task that a config file can name (``task = "package.module:Class"``) also sets
    ``Config``, a dataclass of its options (the config section named ``name``), and is built
    by ``from_config``.
    """

    name: str = "task"
    Config: ClassVar[type | None] = None
    theta0: torch.Tensor
    n_classes: int
    sizes: dict[str, int]
    corrupted: np.ndarray | None = None
    chunk_size: int | None = None
    comm: Comm = SINGLE  # which examples are this process's (see ``for_run``)
    autocast: torch.dtype | None = None  # e.g. torch.bfloat16: the model's passes under autocast

    @classmethod
    def from_config(
        cls, options: Any, seed: int, dtype: torch.dtype = torch.float64, device: str = "cpu"
    ) -> Task:
        """The task for a config's options (an instance of ``Config``, or None without one)."""
        if cls.Config is None:
            return cls()
        options = options if options is not None else cls.Config()
        return cls(options, seed, dtype=dtype, device=device)

    @property
    def n_train(self) -> int:
        return self.sizes["train"]

    def check(self) -> None:
        """The contract, checked once before a run (a one-line error naming what is missing)."""
        label = f"task {self.name!r}"
        for attr in ("theta0", "sizes", "n_classes"):
            if not hasattr(self, attr):
                raise UserError(f"{label}: sets no {attr}")
        if not isinstance(self.theta0, torch.Tensor) or self.theta0.ndim != 1:
            raise UserError(f"{label}: theta0 must be a 1-D torch tensor (the flat parameters)")
        if not self.theta0.is_floating_point():
            raise UserError(
                f"{label}: theta0 must be a floating-point tensor, not {self.theta0.dtype}"
            )
        splits = ("train", "objective", "select", "test")  # the sets a run reads
        for split in splits:
            n = self.sizes.get(split, 0)
            whole = isinstance(n, (int, np.integer)) and not isinstance(n, bool)
            if not whole or n < 0 or (n == 0 and split != "select"):
                raise UserError(
                    f"{label}: sizes[{split!r}] must be a positive whole number of examples"
                )
        for split in splits:
            # one small call: a loss of the wrong shape would broadcast into wrong numbers
            k = min(int(self.sizes.get(split, 0)), 2)
            if k > 0:
                out = self.losses(self.theta0, split, 0, k)
                if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (k,)):
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise UserError(
                        f"{label}: losses(theta, {split!r}, 0, {k}) must return a 1-D torch tensor "
                        f"of {k} per-example losses, got {got}"
                    )
        if not (isinstance(self.n_classes, int) and self.n_classes >= 2):
            raise UserError(f"{label}: n_classes must be an integer >= 2")
        if self.corrupted is not None and np.shape(self.corrupted) != (self.n_train,):
            raise UserError(f"{label}: corrupted must be a boolean array of {self.n_train} entries")

    def losses(
        self, theta: torch.Tensor, split: str, start: int = 0, stop: int | None = None
    ) -> torch.Tensor:
        """Per-example losses of examples start..stop-1 of ``split`` at ``theta``."""
        raise UserError(
            f"task {self.name!r} ({type(self).__name__}) implements no "
            "losses(theta, split, start, stop), which every task needs"
        )

    # ---- how a run computes: data parallelism and precision ----------------------------------
    def for_run(self, comm: Comm = SINGLE, autocast: torch.dtype | None = None) -> Task:
        """This task as a run computes it: over rank ``comm.rank``'s examples of every set, the
        model's passes under ``autocast`` (e.g. torch.bfloat16; parameters and the adjoint keep
        their dtype). A shallow copy sharing the data; the task itself when nothing changes.
        Every process needs an example of every set."""
        same_shard = (comm.rank, comm.world_size) == (self.comm.rank, self.comm.world_size)
        if same_shard and autocast == self.autocast:
            return self
        for split, n in self.sizes.items():
            if 0 < n < comm.world_size:
                raise UserError(
                    f"{comm.world_size} processes for {n} {split} examples: every process needs "
                    f"at least one example of every set; use at most {n} processes"
                )
        task = copy.copy(self)
        task.comm, task.autocast = comm, autocast
        return task

    def autocast_refusal(self) -> str | None:
        """Why this task cannot run its passes under ``train.autocast`` (None: it can); a new
        run refuses the setting with this reason."""
        return None

    def local(self, split: str) -> tuple[int, int]:
        """This process's examples ``a..b-1`` of ``split`` (all of them on one process)."""
        return self.comm.block(self.sizes[split])

    def _chunks(self, split: str):
        start, stop = self.local(split)
        size = self.chunk_size or max(stop - start, 1)
        for a in range(start, stop, size):
            yield a, min(a + size, stop)

    def _passes(self, device: torch.device):
        """The context of the model's forward and backward passes (autocast when asked)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast)

    # ---- the four operations ----------------------------------------------------------------
    def train_gradient(self, theta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        total, lo = torch.zeros_like(theta), self.local("train")[0]

        # weighted sums are written as sums of products: autocast would run w @ l in bf16
        def weighted(th, a, b):
            return (gamma[a - lo : b - lo] * self.losses(th, "train", a, b)).sum()

        with self._passes(theta.device):
            for a, b in self._chunks("train"):
                total += grad(weighted)(theta, a, b)
        return total

    def objective_value_and_grad(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.sizes["objective"]
        value, total = (
            torch.zeros((), dtype=theta.dtype, device=theta.device),
            torch.zeros_like(theta),
        )
        with self._passes(theta.device):
            for a, b in self._chunks("objective"):
                g, v = grad_and_value(
                    lambda th, a=a, b=b: self.losses(th, "objective", a, b).sum() / n
                )(theta)
                value, total = value + v, total + g
        return value, total

    def dots_and_hvp(
        self, theta: torch.Tensor, gamma: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # The double-backward trick: with f(theta, u) = grad_theta(sum_n u_n l_n) . v, the
        # gradient of f in u is (grad l_n . v)_n and in theta (at u = gamma) is H v. One forward,
        # one backward with graph and one backward through it. On the transformer benchmark the
        # adjoint step fell from 4.92 to 3.55 training steps against the forward-over-reverse
        # jvp, with the same numbers.
        dots, hvp, lo = [], torch.zeros_like(theta), self.local("train")[0]
        with torch.enable_grad(), self._passes(theta.device):
            th = theta.detach().requires_grad_(True)
            for a, b in self._chunks("train"):
                u = gamma[a - lo : b - lo].detach().clone().requires_grad_(True)
                (g,) = torch.autograd.grad(
                    (u * self.losses(th, "train", a, b)).sum(), th, create_graph=True
                )
                du, hv = torch.autograd.grad((g * v).sum(), (u, th))
                dots.append(du)
                hvp += hv
        return torch.cat(dots), hvp

    @torch.no_grad()
    def evaluate(self, theta: torch.Tensor) -> dict[str, float]:
        out = {}
        for split in ("objective", "select", "test"):
            if self.sizes.get(split, 0) == 0:
                continue
            with self._passes(theta.device):
                total = sum(
                    float(self.losses(theta, split, a, b).sum()) for a, b in self._chunks(split)
                )
            out[split] = total / self.sizes[split]
        return out

    def dots(self, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """grad l_n(theta) . v for every training example: one forward-mode pass (a jvp)."""
        out = []
        with self._passes(theta.device):
            for a, b in self._chunks("train"):
                out.append(
                    jvp(lambda th, a=a, b=b: self.losses(th, "train", a, b), (theta,), (v,))[1]
                )
        return torch.cat(out)

    def contributions(self, theta: torch.Tensor) -> torch.Tensor:
        """CT_n = grad L_dsr(theta) . grad l_n(theta) for every training example (SPEC A3),
        with L_dsr the loss on the objective part of the desired set."""
        _, g = self.objective_value_and_grad(theta)
        return self.dots(theta, self.comm.sum(g))

    def describe(self) -> dict:
        """Facts about the task for config.json (sizes, parameter count)."""
        return {
            "name": self.name,
            "sizes": dict(self.sizes),
            "parameters": int(self.theta0.numel()),
            "n_classes": self.n_classes,
        }
