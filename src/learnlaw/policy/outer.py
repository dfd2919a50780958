"""Outer optimisers for the policy: one step per outer epoch, rows kept on the simplex.

- ``pgd``: projected gradient, W <- Proj_simplex(W - s * G) (the reference's method);
- ``eg``: exponentiated gradient (mirror descent), W <- W * exp(-s * G), rows renormalised;
  weights never reach exact zero, so zero-weight statistics need a threshold.

The step size s = base * (1 - epoch / epochs) decays linearly to 0 (as in the reference) when
``decay="linear"``. With ``lr="auto"`` the base is calibrated once, on the first epoch's
hypergradient, so that the largest first-order weight change of that epoch is
``max_change / N``: raw hypergradient scales differ across tasks by orders of magnitude, a
weight change relative to the uniform 1/N does not. (Re-calibrating every epoch was measured to
stall: as the policy concentrates, a few extreme gradients shrink every later step.)

``normalize="row"`` instead scales every row (step) on its own, every epoch, so that each
row's largest weight change is ``max_change / N``. The hypergradient of a late step is orders
of magnitude smaller than that of an early one (a late weight affects few loss terms), so
under one step size for the whole policy the late rows barely move. Row scaling moves them
as fast as the early rows: the policy then converges towards the optimum of the objective
set everywhere, which is what the Learning Law describes, at the price of fitting that set's
idiosyncrasies (see docs/perceptron-configs.md).

The optimiser is an ``init`` / ``update`` pair of pure functions over explicit state (optax's
form): ``simplex_optimizer(config)`` takes the steps above; ``backtracking(inner)`` wraps any
optimiser so that a step that raised the objective is retried from the last accepted policy at
half the step; ``lowest(...)`` tracks the epoch with the smallest value of a score (the kept
policy on the select set; the lowest objective). States are plain dicts of numbers and
tensors, so a checkpoint can store them without pickles.

On several processes (``learnlaw.distributed``) the weights and gradients are this rank's
columns; every reduction over a row (sums, maxima, the softmax, the projection's threshold)
and over the whole policy (the calibration's maximum) is all-reduced, so every rank takes the
step the single process would take, to rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from learnlaw.distributed import SINGLE, Comm
from learnlaw.errors import UserError
from learnlaw.policy.simplex import project_rows_to_simplex

METHODS = ("pgd", "eg")


@dataclass
class OuterConfig:
    epochs: int = 100
    method: str = "pgd"
    lr: float | str = "auto"  # a number, or "auto" (see max_change)
    max_change: float = 0.5  # with lr="auto": largest weight change per epoch, in units of 1/N
    decay: str = "linear"  # or "none"
    segment: int = 1  # steps per policy row (1: a weight vector for every step)
    normalize: str = "run"  # "run": one step size for the whole policy; "row": one per row
    backtrack: bool = False  # a step that raises the objective is retried at half the step
    # outer epochs between checkpoints of a run with a folder (the last epoch, a stop at the
    # time budget and, on one process, an interrupt are always saved): a hard kill loses up to
    # save_every - 1 epochs
    save_every: int = 1

    def validate(self) -> None:
        if self.epochs < 0:
            raise UserError(f"outer.epochs = {self.epochs}: must be >= 0")
        if self.method not in METHODS:
            raise UserError(f"outer.method = {self.method!r}: expected one of {', '.join(METHODS)}")
        numeric = isinstance(self.lr, numbers.Real) and not isinstance(self.lr, bool)
        if numeric:
            self.lr = float(self.lr)
        if self.lr != "auto" and not (numeric and self.lr > 0):
            raise UserError(f'outer.lr = {self.lr!r}: expected a positive number or "auto"')
        if not self.max_change > 0:
            raise UserError(f"outer.max_change = {self.max_change}: must be positive")
        if self.decay not in ("linear", "none"):
            raise UserError(f"outer.decay = {self.decay!r}: expected linear or none")
        if self.normalize not in ("run", "row"):
            raise UserError(f"outer.normalize = {self.normalize!r}: expected run or row")
        if self.normalize == "row" and self.lr != "auto":
            raise UserError(
                'outer.normalize = "row" needs outer.lr = "auto" (it sets each row\'s step)'
            )
        if self.segment < 1:
            raise UserError(f"outer.segment = {self.segment}: must be >= 1")
        if self.save_every < 1:
            raise UserError(f"outer.save_every = {self.save_every}: must be >= 1")


def decay_factor(config: OuterConfig, epoch: int) -> float:
    """1 at the first epoch, falling linearly towards 0 at the last (or 1 with decay="none")."""
    if config.decay == "none" or config.epochs == 0:
        return 1.0
    return 1.0 - epoch / config.epochs


def _row_sum(x: torch.Tensor, comm: Comm) -> torch.Tensor:
    return comm.sum(x.sum(dim=1, keepdim=True))


def _row_max(x: torch.Tensor, comm: Comm) -> torch.Tensor:
    return comm.max(x.amax(dim=1, keepdim=True))


def _softmax_rows(logits: torch.Tensor, comm: Comm) -> torch.Tensor:
    if comm.single:
        return torch.softmax(logits, dim=1)
    e = torch.exp(logits - _row_max(logits, comm))
    return e / _row_sum(e, comm)


def _direction(
    weights: torch.Tensor, grads: torch.Tensor, method: str, comm: Comm = SINGLE
) -> torch.Tensor:
    """First-order change of the weights per unit step (before projection / renormalisation)."""
    if method == "pgd":
        return -grads
    # exponentiated gradient: d w_n = -s w_n (g_n - sum_m w_m g_m)
    return -weights * (grads - _row_sum(weights * grads, comm))


def calibrate_base_step(
    weights: torch.Tensor, grads: torch.Tensor, config: OuterConfig, comm: Comm = SINGLE
) -> float:
    """The base step: ``config.lr``, or for "auto" the step whose largest change is max_change/N."""
    if config.lr != "auto":
        return float(config.lr)
    if config.normalize == "row":
        return config.max_change  # a relative change; outer_step turns it into row steps
    scale = float(comm.max(_direction(weights, grads, config.method, comm).abs().max()))
    n = comm.total(weights.shape[1])
    return config.max_change / (n * scale) if scale > 0 else 0.0


def outer_step(
    weights: torch.Tensor,
    grads: torch.Tensor,
    epoch: int,
    config: OuterConfig,
    base_step: float,
    comm: Comm = SINGLE,
) -> tuple[torch.Tensor, float]:
    """The policy after one outer epoch, and the step size used (for normalize="row": the
    largest weight change per row, in units of 1/N)."""
    step = base_step * decay_factor(config, epoch)
    reported = step
    n = comm.total(weights.shape[1])
    centred = (
        grads - _row_sum(grads, comm) / n  # the projection ignores a shift of a row
        if config.method == "pgd"
        else grads - _row_sum(weights * grads, comm)
    )
    if config.normalize == "row":
        direction = centred if config.method == "pgd" else weights * centred
        scale = _row_max(direction.abs(), comm)
        # a row whose gradient is constant (up to rounding) has nothing to move along
        flat = scale <= 1e-12 * _row_max(grads.abs(), comm)
        step = torch.where(flat, 0.0, step / (n * scale.masked_fill(flat, 1.0)))
    if config.method == "pgd":
        # with one step per row, the raw gradient's common part could swamp a row's tiny
        # differences in rounding; with one step for the run the raw gradient is kept (the
        # projection gives the same point up to rounding)
        update = centred if config.normalize == "row" else grads
        return project_rows_to_simplex(weights - step * update, comm), reported
    # a row collapsed onto one example has a vanishing first-order change, hence a huge row
    # step: bound each log-weight change by the dtype's range (a weight can at most travel from
    # the smallest positive number to 1 in one step) so the update stays finite
    floor = torch.finfo(weights.dtype).tiny
    limit = -math.log(floor)
    change = torch.where(centred == 0, 0.0, step * centred).clamp(-limit, limit)
    logits = torch.log(weights.clamp_min(floor)) - change
    return _softmax_rows(logits, comm), reported


# ---- init / update pairs ---------------------------------------------------------------------
State = dict[str, Any]


class Optimizer(NamedTuple):
    """``init(weights) -> state``; ``update(grads, state, weights, *, objective) -> (weights,
    state)``: the policy after one outer step from ``weights`` with hypergradient ``grads``."""

    init: Callable[[torch.Tensor], State]
    update: Callable[..., tuple[torch.Tensor, State]]


def simplex_optimizer(config: OuterConfig, comm: Comm = SINGLE) -> Optimizer:
    """Projected or exponentiated gradient steps (``config.method``) that decay over the
    epochs; the base step is calibrated on the first update when ``config.lr`` is "auto".
    With ``comm``, the weights are this rank's columns of the policy."""

    def init(weights: torch.Tensor) -> State:
        return {"epoch": 0, "base_step": None, "step_size": None}

    def update(grads, state, weights, *, objective=None, step_scale: float = 1.0):
        base = state["base_step"]
        if base is None:
            base = calibrate_base_step(weights, grads, config, comm)
        new, size = outer_step(weights, grads, state["epoch"], config, base * step_scale, comm)
        return new, {"epoch": state["epoch"] + 1, "base_step": base, "step_size": size}

    return Optimizer(init, update)


def backtracking(inner: Optimizer) -> Optimizer:
    """Retry a step that made the objective worse from the last accepted policy; every
    rejected step so far halves the step."""

    def init(weights: torch.Tensor) -> State:
        return {
            "inner": inner.init(weights),
            "accepted": None,
            "rejected": 0,
            "last_rejected": False,
        }

    def update(grads, state, weights, *, objective: float):
        accepted = state["accepted"]
        rejected = accepted is not None and objective > accepted["objective"]
        if rejected:
            weights, grads = accepted["weights"], accepted["grads"]
        else:
            accepted = {"objective": objective, "weights": weights, "grads": grads}
        count = state["rejected"] + rejected
        new, inner_state = inner.update(
            grads, state["inner"], weights, objective=objective, step_scale=0.5**count
        )
        return new, {
            "inner": inner_state,
            "accepted": accepted,
            "rejected": count,
            "last_rejected": rejected,
        }

    return Optimizer(init, update)


def make_optimizer(config: OuterConfig, comm: Comm = SINGLE) -> Optimizer:
    base = simplex_optimizer(config, comm)
    return backtracking(base) if config.backtrack else base


def step_size(state: State) -> float | None:
    """The step size of the last update, whatever wrappers the optimiser has."""
    while "inner" in state:
        state = state["inner"]
    return state["step_size"]


class Tracker(NamedTuple):
    """``init() -> state``; ``update(state, epoch, value, weights, **extra) -> state``."""

    init: Callable[[], State]
    update: Callable[..., State]


def lowest() -> Tracker:
    """The epoch with the smallest value so far, its weights and anything passed with them.

    Policies are replaced by every outer step, never changed in place, so the tracked weights
    are shared with the optimiser's state, not copied."""

    def init() -> State:
        return {"epoch": None, "value": math.inf, "weights": None}

    def update(state: State, epoch: int, value: float, weights: torch.Tensor, **extra) -> State:
        if value < state["value"]:
            return {"epoch": epoch, "value": value, "weights": weights, **extra}
        return state

    return Tracker(init, update)
