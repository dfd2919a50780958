"""The Multi-Power Law of Luo et al., ICLR 2025 (arXiv 2503.12811), SPEC B2.

    L(t) = L0 + A (S1(t) + S_W)^(-alpha) - LD(t)
    LD(t) = B sum_{k=1..t} (eta_{k-1} - eta_k) G(eta_k^(-gamma) S_k(t)),   G(x) = 1 - (C x + 1)^(-beta)
    S1(t) = sum_{tau=1..t} eta_tau,   S_k(t) = sum_{tau=k..t} eta_tau

with t counted after the warmup (absolute step W + t), eta_0 the peak LR and
S_W = 0.5 * peak * W the warmup's LR area.

The warmup (``warmup_drops=True``, the default): the reference implementation evaluates LD over
the whole schedule from step 1, so the linear warmup's LR rises enter as negative drops,
+B * (peak / W) * sum_{k=1..W} G(eta_k^(-gamma) S_k(t)). Their sum tends to B * peak as t grows,
like one more power law in the LR area; the reference's published parameters (and its
published prediction errors) hold only with these terms (without them its parameters are 3-5%
off). ``warmup_drops=False`` is the paper's formula as written, LD from the end of warmup.

Evaluating LD is a double sum: every logged point looks back over every LR drop before it
(1.9 million pairs for the standard split's cosine run). Predictions use the exact sum. For
fitting, the drops at distance j = t - k from each point are aggregated in blocks whose width
grows with j (``block_growth`` x j), each block represented by its |drop|-weighted mean of
eta_k and S_k(t): all block sums come from prefix sums, so building them costs O(points x
blocks) and the objective about 50x less than the exact sum. G is smooth in log-distance, so
the relative error this adds to LD is of order block_growth^2 / 24 (measured below 2e-5 of the
loss on a 24K-step cosine), well under the 7e-4 seed-to-seed noise of the final loss.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.laws.fitting import (
    FitResult,
    huber_log_torch,
    minimize_adam,
    minimize_multistart,
    torch_predict_jac,
)
from learnlaw.laws.inputs import MAX_POINTS, LawInput, forward_area

PARAMS = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
EXACT_PAIRS = 2 * 10**8  # (point, LR drop) pairs a prediction sums exactly; beyond, in blocks
# eta^-gamma at eta = 0 (a schedule ending at zero): as eta -> 0+, x = eta^-gamma S -> infinity and
# G -> 1, the drop fully realised; a tiny floor gives that limit without infinities.
ETA_FLOOR = 1e-30
BOUNDS = [
    (1e-9, None),
    (1e-9, None),
    (1e-6, 5.0),
    (1e-9, None),
    (1e-9, None),
    (1e-6, 3.0),
    (1e-6, 3.0),
]


@dataclass
class DropTerms:
    """The LD double sum laid out flat: term j belongs to point ``point[j]`` and contributes
    ``weight[j] * G(eta[j]^-gamma * area[j])``."""

    point: np.ndarray
    weight: np.ndarray
    eta: np.ndarray
    area: np.ndarray
    s1: np.ndarray  # S1(t) + S_W per point
    n_points: int


def post_warmup(run: LawInput, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(eta after warmup: eta[0] = peak, ..., t per requested step, S_W)."""
    w = run.warmup
    eta = run.lrs[w:].astype(float)
    t = np.maximum(np.asarray(steps, dtype=np.int64) - w, 0)
    return eta, t, 0.5 * run.peak * w


def drop_terms(
    run: LawInput, steps: np.ndarray, block_growth: float = 0.0, warmup_drops: bool = False
) -> DropTerms:
    """The LD terms at ``steps``: exact (``block_growth=0``) or in growing blocks.

    ``warmup_drops`` adds the warmup's LR rises as negative drops: the warmup taken as the
    linear ramp eta = peak * s / W over absolute steps s = 0..W (the ramp S_W assumes), whose
    W rises of peak / W each enter LD like any other LR change (the reference code's sum runs
    over every step from 1, warmup included).
    """
    eta, t, s_w = post_warmup(run, steps)
    n = int(t.max()) + 1
    eta = eta[:n]
    cum = forward_area(eta)  # cum[j] = sum_{tau=1..j} eta_tau = S1(j)
    drops = np.zeros(n)
    drops[1:] = eta[:-1] - eta[1:]  # d_k = eta_{k-1} - eta_k
    terms = _terms(eta, cum, drops, t, block_growth, cum[t] + s_w)
    w = run.warmup
    if not warmup_drops or w == 0:
        return terms
    # the same sum over absolute steps, with only the warmup's rises (k = 1..W) as drops; kept
    # apart from the decay's drops so that no block mixes rises with drops
    eta_abs = np.concatenate([run.peak * np.arange(w) / w, eta])
    rises = np.zeros(len(eta_abs))
    rises[1 : w + 1] = -run.peak / w
    rise_terms = _terms(eta_abs, forward_area(eta_abs), rises, t + w, block_growth, terms.s1)
    fields = ("point", "weight", "eta", "area")
    return DropTerms(
        *(np.concatenate([getattr(terms, f), getattr(rise_terms, f)]) for f in fields),
        terms.s1,
        terms.n_points,
    )


def _terms(eta, cum, drops, t, block_growth, s1) -> DropTerms:
    """LD terms of ``drops`` (d_k at index k of ``eta``, zero where none) at indices ``t``."""
    n = len(eta)
    if block_growth <= 0:
        points, ks = [], []
        nz = np.flatnonzero(drops)
        for i, ti in enumerate(t):
            k = nz[nz <= ti]
            points.append(np.full(len(k), i))
            ks.append(k)
        point = np.concatenate(points) if points else np.zeros(0, int)
        k = np.concatenate(ks) if ks else np.zeros(0, int)
        area = cum[t[point]] - cum[k - 1]
        return DropTerms(point, drops[k], eta[k], area, s1, len(t))
    # prefix sums over k (index 0 = empty) of d, |d|, |d| eta_k and |d| cum[k-1]
    absd = np.abs(drops)
    prev = np.concatenate([[0.0], cum[:-1]])
    p_d, p_a, p_ae, p_ac = (
        np.concatenate([[0.0], np.cumsum(x)]) for x in (drops, absd, absd * eta, absd * prev)
    )
    edges = [0]
    while edges[-1] < n:
        edges.append(edges[-1] + max(1, int(block_growth * edges[-1])))
    edges = np.array(edges)
    # block m of point i covers k in (t_i - edges[m+1], t_i - edges[m]], clipped to k >= 1
    hi = t[:, None] - edges[None, :-1]
    lo = np.maximum(t[:, None] - edges[None, 1:], 0)
    valid = hi >= 1
    point = np.broadcast_to(np.arange(len(t))[:, None], hi.shape)[valid]
    hi, lo = hi[valid], lo[valid]
    mass = p_a[hi + 1] - p_a[lo + 1]
    keep = mass > 0
    point, hi, lo, mass = point[keep], hi[keep], lo[keep], mass[keep]
    weight = p_d[hi + 1] - p_d[lo + 1]
    eta_rep = (p_ae[hi + 1] - p_ae[lo + 1]) / mass
    area = cum[t[point]] - (p_ac[hi + 1] - p_ac[lo + 1]) / mass
    return DropTerms(point, weight, eta_rep, area, s1, len(t))


def law_value(p: torch.Tensor, terms: DropTerms) -> torch.Tensor:
    """The law at the points of ``terms`` for raw parameters p = (L0, A, alpha, B, C, beta, gamma)."""
    l0, a, alpha, b, c, beta, gamma = p
    dtype = p.dtype
    s1 = torch.as_tensor(terms.s1, dtype=dtype)
    eta = torch.as_tensor(terms.eta, dtype=dtype)
    x = eta.clamp_min(ETA_FLOOR) ** (-gamma) * torch.as_tensor(terms.area, dtype=dtype)
    g = 1.0 - (c * x + 1.0) ** (-beta)
    contrib = torch.as_tensor(terms.weight, dtype=dtype) * g
    ld = torch.zeros(terms.n_points, dtype=dtype).index_add(
        0, torch.as_tensor(terms.point), contrib
    )
    return l0 + a * s1 ** (-alpha) - b * ld


class MultiPowerLaw(Law):
    """``MultiPowerLaw().fit(curves).predict(schedule, steps)``.

    Fit: a momentum-law fit gives L0, A, alpha and the size of B; short Adam runs from a grid of
    (C, beta, gamma) on log-parameters; the best is run longer, then polished by L-BFGS-B with
    beta and gamma bounded (the law is badly conditioned for L-BFGS from a cold start).
    """

    name = "multipower"
    param_names = PARAMS
    # its objective costs points x drops: 250 bins per curve keep a fit on long per-step logs
    # near the cost of the published runs (about 170-560 points each)
    fit_points = 250

    def __init__(
        self,
        block_growth: float = 0.05,
        adam_steps: int = 1500,
        polish: bool = True,
        warmup_drops: bool = True,
        delta: float | str = "auto",
        max_points: int = MAX_POINTS,
        fit_from: int | None = None,
        smooth: int | None = None,
        bootstrap: int = 0,
        seed: int = 0,
    ) -> None:
        self.block_growth = block_growth
        self.adam_steps = adam_steps
        self.polish = polish
        self.warmup_drops = warmup_drops
        self.delta = delta
        self.max_points = max_points
        self.fit_from = fit_from
        self.smooth = smooth
        self.bootstrap = bootstrap
        self.seed = seed

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "block_growth": self.block_growth,
            "adam_steps": self.adam_steps,
            "polish": self.polish,
            "warmup_drops": self.warmup_drops,
            **self.common_hyperparameters(),
        }

    def check_hyperparameters(self) -> None:
        super().check_hyperparameters()
        if not (isinstance(self.block_growth, (int, float)) and 0 <= self.block_growth < 1):
            raise UserError(
                f"multipower law: block_growth = {self.block_growth!r}: expected a number in [0, 1)"
            )
        if not (isinstance(self.adam_steps, int) and self.adam_steps >= 1):
            raise UserError(
                f"multipower law: adam_steps = {self.adam_steps!r}: expected an integer >= 1"
            )
        for flag in ("polish", "warmup_drops"):
            if not isinstance(getattr(self, flag), bool):
                raise UserError(
                    f"multipower law: {flag} = {getattr(self, flag)!r}: expected true or false"
                )

    def param_bounds(self):
        return BOUNDS

    def _fit(self, runs, steps, losses, start=None):
        y = np.concatenate(losses)
        blocks = [
            drop_terms(r, s, self.block_growth, self.warmup_drops) for r, s in zip(runs, steps)
        ]
        terms = _concat(blocks)
        log_y = torch.as_tensor(np.log(y), dtype=torch.float64)

        def objective_log(q: torch.Tensor) -> torch.Tensor:
            return huber_log_torch(law_value(torch.exp(q), terms), log_y, self.delta_)

        if start is not None:  # a warm start (bootstrap refits): a short Adam run, then the polish
            result = minimize_adam(
                objective_log,
                np.log([start[k] for k in PARAMS]),
                steps=max(50, self.adam_steps // 5),
                lr=0.01,
            )
            return self._polish(np.exp(result.params), result.objective, terms, y)
        starts = self._grid_starts(runs, steps, losses, self.delta_)
        trials = [
            minimize_adam(objective_log, s0, steps=max(100, self.adam_steps // 10), lr=0.05)
            for s0 in starts
        ]
        best = min(trials, key=lambda r: r.objective)
        result: FitResult = minimize_adam(
            objective_log, best.params, steps=self.adam_steps, lr=0.02
        )
        return self._polish(np.exp(result.params), result.objective, terms, y)

    def _polish(self, params, objective, terms, y):
        if self.polish:
            polished = minimize_multistart(
                torch_predict_jac(lambda p: law_value(p, terms)), y, [params], BOUNDS, self.delta_
            )
            if polished.objective < objective:
                params, objective = polished.params, polished.objective
        return dict(zip(PARAMS, params.tolist())), objective

    @staticmethod
    def _grid_starts(runs, steps, losses, delta) -> list[np.ndarray]:
        """Starts (log-parameters): a momentum-law fit sets L0, A, alpha and the scale of B
        (a drop long ago contributes B * drop, the momentum law C * drop / (1 - lambda))."""
        from learnlaw.curves import LossCurve
        from learnlaw.laws.momentum import DEFAULT_LAMBDA, MomentumLaw

        curves = [
            LossCurve(s, y, _schedule_of(r), warmup_steps=r.warmup)
            for r, s, y in zip(runs, steps, losses)
        ]
        # the points given are the ones to fit: none left out again, the same delta
        m = MomentumLaw(lam=DEFAULT_LAMBDA, delta=delta, fit_from=1, max_points=10**9)
        m = m.fit(curves).params_
        b0 = max(m["C"], 1e-3) / (1 - DEFAULT_LAMBDA)
        low = float(min(np.min(y) for y in losses))  # floors keep log-parameters finite
        return [
            np.log(
                [
                    max(m["L0"], 1e-3 * low),
                    max(m["A"], 1e-6),
                    max(m["alpha"], 0.05),
                    b0,
                    c,
                    beta,
                    gamma,
                ]
            )
            for c, beta, gamma in itertools.product((0.5, 2.0, 8.0), (0.3, 0.6), (0.3, 0.6))
        ]

    def final_loss_torch(self, eta: torch.Tensor, warmup: int) -> torch.Tensor:
        """The law at the last step for post-warmup LRs ``eta`` (eta[0] = peak), differentiable
        in ``eta``: exact, O(len(eta)) (used to optimise a schedule)."""
        l0, a, alpha, b, c, beta, gamma = (self.params_[k] for k in PARAMS)
        s1 = eta[1:].sum() + 0.5 * eta[0] * warmup
        drops = eta[:-1] - eta[1:]  # d_k for k = 1..t
        area = torch.flip(torch.cumsum(torch.flip(eta[1:], [0]), 0), [0])  # S_k(t) = sum_{tau=k..t}
        g = 1.0 - (c * eta[1:].clamp_min(ETA_FLOOR) ** (-gamma) * area + 1.0) ** (-beta)
        loss = l0 + a * s1 ** (-alpha) - b * (drops * g).sum()
        if self.warmup_drops and warmup > 0:
            # the ramp's W rises of peak / W at k = 1..W (eta_k = peak k / W), as in drop_terms:
            # S_k(t) = peak / W * sum_{tau=k..W-1} tau + every LR from step W on
            k = torch.arange(1, warmup + 1, dtype=eta.dtype)
            ramp_area = eta[0] / warmup * ((warmup - 1) * warmup - (k - 1) * k) / 2
            x = (eta[0] * k / warmup) ** (-gamma) * (ramp_area + eta.sum())
            loss = loss + b * eta[0] / warmup * (1.0 - (c * x + 1.0) ** (-beta)).sum()
        return loss

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MultiPowerLaw:
        # fits saved before warmup_drops existed were made without the warmup's rises
        obj = {**obj, "hyperparameters": {"warmup_drops": False, **obj["hyperparameters"]}}
        return super().from_json(obj)

    def _predict(self, params, run: LawInput, steps: np.ndarray) -> np.ndarray:
        """The exact double sum, in chunks of points (bounded memory); when that would take
        more than ``EXACT_PAIRS`` (point, LR drop) pairs, the blocked sum of the fit, whose
        relative error is below 2e-5 (module docstring)."""
        p = torch.tensor([params[k] for k in PARAMS], dtype=torch.float64)
        eta, t, _ = post_warmup(run, steps)
        drops = int(np.count_nonzero(np.diff(eta[: int(t.max()) + 1])))
        drops += run.warmup if self.warmup_drops else 0
        growth = 0.0 if len(steps) * drops <= EXACT_PAIRS else max(self.block_growth, 0.05)
        out = np.empty(len(steps))
        order = np.argsort(steps)
        for chunk in np.array_split(order, max(1, len(steps) // 64)):
            with torch.no_grad():
                terms = drop_terms(run, steps[chunk], growth, self.warmup_drops)
                out[chunk] = law_value(p, terms).numpy()
        return out


def _concat(blocks: list[DropTerms]) -> DropTerms:
    offsets = np.cumsum([0] + [b.n_points for b in blocks[:-1]])
    return DropTerms(
        np.concatenate([b.point + o for b, o in zip(blocks, offsets)]),
        np.concatenate([b.weight for b in blocks]),
        np.concatenate([b.eta for b in blocks]),
        np.concatenate([b.area for b in blocks]),
        np.concatenate([b.s1 for b in blocks]),
        sum(b.n_points for b in blocks),
    )


def _schedule_of(run: LawInput):
    from learnlaw.schedules import Schedule

    return Schedule.from_array(run.lrs, run.warmup)  # the warmup is known: no re-detection
