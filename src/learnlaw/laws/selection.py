"""Choosing a loss-curve law on the user's own curves by cross-validation (``law fit --law auto``).

For each candidate law and each fitted curve, the law is fitted on the other curves and scored
on the held-out curve's points after its LR decay starts (the first step after warmup where the
LR falls below 0.99 x peak; every point if it never decays): the mean relative error, PredE.
The candidate with the lowest mean PredE over the folds is chosen (ties go to the earlier one)
and fitted on every curve.

Identifiability. A law's annealing term is only pinned down by a fitted curve whose LR decays.
Holding out the only decaying curve (with two curves, e.g. constant + cosine, the cosine) would
leave a fit that says nothing about annealing. Such a curve is held out by its tail instead: the
fit keeps its points before the middle of its decay phase (plus every other curve), and the
points from there on are scored. With no decaying curve at all the laws cannot be told apart
and the first candidate is kept, with a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from learnlaw.curves import LossCurve, as_curves
from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.laws.forward_momentum import ForwardMomentumLaw
from learnlaw.laws.metrics import pred_error
from learnlaw.laws.momentum import DEFAULT_LAMBDA, MomentumLaw
from learnlaw.laws.multipower import MultiPowerLaw

DECAY_THRESHOLD = 0.99
TAIL_FRACTION = 0.5  # a tail fold keeps this fraction of the curve's decay phase in the fit

# a factory makes an unfitted law from the data hyper-parameters (delta, max_points, ...)
Factory = Callable[..., Law]


def default_candidates(
    curves: list[LossCurve], lam: float | str = DEFAULT_LAMBDA, size_scaling: bool = False
) -> dict[str, Factory]:
    """The momentum law (with ``lam``), the Multi-Power Law and the Forward-Momentum law; with
    ``size_scaling`` the momentum and FM laws with their size terms (the Multi-Power Law has
    none and is left out)."""
    out: dict[str, Factory] = {
        "momentum": lambda **kw: MomentumLaw(lam=lam, size_scaling=size_scaling, **kw),
    }
    if not size_scaling:
        out["multipower"] = lambda **kw: MultiPowerLaw(**kw)
    out["forward-momentum"] = lambda **kw: ForwardMomentumLaw(size_scaling=size_scaling, **kw)
    return out


def decay_start(curve: LossCurve, threshold: float = DECAY_THRESHOLD) -> int | None:
    """First step at or after warmup whose LR is below ``threshold`` x peak, up to the last
    logged step; None if the LR never falls that far."""
    lrs = curve.lrs()
    w = min(curve.warmup_steps, len(lrs) - 1)
    below = np.flatnonzero(lrs[w:] < threshold * lrs[w])
    return int(w + below[0]) if len(below) else None


def _subset(curve: LossCurve, keep: np.ndarray) -> LossCurve:
    return replace(curve, steps=curve.steps[keep], losses=curve.losses[keep])


@dataclass
class Fold:
    held: str  # name of the held-out curve
    kind: str  # "curve" (the whole curve held out) or "tail" (its points from ``cut`` on)
    fit: list[LossCurve]
    scored: LossCurve  # the held-out points that are scored
    cut: int | None = None


def make_folds(curves: list[LossCurve]) -> tuple[list[Fold], list[str]]:
    """One fold per curve, by the rules in the module docstring; also notes. ``curves`` are the
    points to use (already cut to the law's points)."""
    starts = [decay_start(c) for c in curves]
    decays = [s is not None and bool(np.any(c.steps >= s)) for c, s in zip(curves, starts)]
    if not any(decays):
        return [], ["no curve has an LR decay: cross-validation cannot compare annealing laws"]
    folds, notes = [], []
    for i, (c, s) in enumerate(zip(curves, starts)):
        others = [d for j, d in enumerate(curves) if j != i]
        scored = c.steps >= s if decays[i] else np.ones(len(c.steps), bool)
        if any(decays[j] for j in range(len(curves)) if j != i):
            folds.append(Fold(c.name, "curve", others, _subset(c, scored)))
            continue
        # the only decaying curve: hold out the second part of its decay phase
        cut = int(s + TAIL_FRACTION * (c.steps[-1] - s))
        head, tail = c.steps < cut, c.steps >= cut
        if tail.sum() < 2 or head.sum() < 2:
            notes.append(f"{c.name}: too few points to split its decay; no fold for it")
            continue
        notes.append(
            f"{c.name} is the only curve with an LR decay: its points from step {cut} on are "
            "held out (the fit keeps its earlier points), not the whole curve"
        )
        folds.append(Fold(c.name, "tail", [*others, _subset(c, head)], _subset(c, tail), cut))
    return folds, notes


@dataclass
class Selection:
    """The outcome of ``select_law``: the chosen candidate, fitted on every curve (``law``),
    and the cross-validation behind the choice (errors are fractions)."""

    choice: str
    law: Law
    scores: dict[str, float]  # mean held-out PredE per candidate (inf where a fit failed)
    per_fold: dict[str, list[float]]
    folds: list[tuple[str, str, int | None]]  # (held-out curve, kind, cut)
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why this law: one line."""
        if not self.scores:
            return f"kept {self.choice}: cross-validation had no fold to score"
        ranked = sorted(self.scores, key=self.scores.get)
        text = (
            f"chose {self.choice}: the lowest mean PredE on held-out decays over "
            f"{len(self.folds)} folds ({100 * self.scores[self.choice]:.3f}%"
        )
        if len(ranked) > 1:
            runner = ranked[1] if ranked[0] == self.choice else ranked[0]
            text += f" vs {100 * self.scores[runner]:.3f}% for {runner}"
        return text + ")"

    def to_json(self) -> dict[str, Any]:
        return {
            "choice": self.choice,
            "reason": self.reason,
            "scores": self.scores,
            "per_fold": self.per_fold,
            "folds": [{"held_out": h, "kind": k, "cut": c} for h, k, c in self.folds],
            "seconds": self.seconds,
            "notes": self.notes,
        }


def select_law(
    curves: list[LossCurve],
    candidates: dict[str, Factory] | None = None,
    *,
    progress: bool = False,
    **data: Any,
) -> Selection:
    """Choose among ``candidates`` (default ``default_candidates(curves)``) by the folds of
    ``make_folds`` and fit the choice on every curve. ``data`` are the data hyper-parameters
    every candidate gets (``delta``, ``max_points``, ``fit_from``, ``smooth``, ``bootstrap``,
    ``seed``); the folds use the points they select."""
    curves = as_curves(curves, "select_law")
    if candidates is None:
        candidates = default_candidates(curves)
    if not candidates:
        raise UserError("no candidate laws")
    names = list(candidates)
    probe = candidates[names[0]](**data)
    probe.check_hyperparameters()
    points = [probe.points(c) for c in curves]
    notes = [n for c, p in zip(curves, points) for n in p.notes[len(c.notes) :]]
    folds, fold_notes = make_folds(points)
    notes += fold_notes
    # the folds' points are chosen already: fitted as given (no second cut, binning or smoothing)
    fold_data = {
        **data,
        "fit_from": 1,
        "smooth": None,
        "max_points": 10**9,
        "bootstrap": 0,
    }
    scores: dict[str, float] = {}
    per_fold: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for name in names if folds else []:
        errors = []
        began = time.perf_counter()
        for fold in folds:
            try:
                law = candidates[name](**fold_data).fit(fold.fit, progress=progress)
                errors.append(pred_error(law.predict(fold.scored), fold.scored.losses))
            except (UserError, RuntimeError, ValueError) as exc:
                notes.append(f"{name}: the fit without {fold.held} failed ({exc})")
                errors.append(float("inf"))
        seconds[name] = time.perf_counter() - began
        per_fold[name] = errors
        scores[name] = float(np.mean(errors))
    choice = min(names, key=lambda n: (scores.get(n, 0.0), names.index(n)))
    if not folds:
        notes.append(f"kept {choice}")
    law = candidates[choice](**data).fit(curves, progress=progress)
    return Selection(
        choice,
        law,
        scores,
        per_fold,
        [(f.held, f.kind, f.cut) for f in folds],
        seconds,
        notes,
    )
