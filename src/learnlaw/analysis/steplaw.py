"""The step scaling law of a training run (SPEC A5):  L(t) = L0 + (B / t)^beta  for t > t0.

Two fits:
- ``method="grid"`` (the paper's): a grid over t0 and L0 (below the smallest loss); for each,
  linear regression of ln(L - L0) on ln t (slope -beta, intercept beta ln B); keep the best r^2.
- ``method="robust"``: start from the grid fit and minimise the Huber loss of log residuals
  over (L0, B, beta) directly, with the shared fitting core.
Several curves can share L0 and t0 (the paper assumes one L0 for both policies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnlaw.errors import UserError
from learnlaw.laws.fitting import DEFAULT_DELTA, minimize_multistart

T0_FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
L0_GRID_SIZE = 400


@dataclass
class StepLawFit:
    """Fitted coefficients of one curve; ``r2`` is of the log-log regression (grid) or of the
    losses themselves (robust)."""

    L0: float
    B: float
    beta: float
    t0: float
    r2: float
    points: int

    def predict(self, steps: np.ndarray) -> np.ndarray:
        steps = np.asarray(steps, dtype=float)
        return self.L0 + (self.B / steps) ** self.beta

    def to_json(self) -> dict[str, float]:
        return {
            "L0": self.L0,
            "B": self.B,
            "beta": self.beta,
            "t0": self.t0,
            "r2": self.r2,
            "points": self.points,
        }


def _loglog_regression(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept and r^2 of the least-squares line through (ln t, ln y)."""
    x, z = np.log(t), np.log(y)
    xm, zm = x.mean(), z.mean()
    sxx = np.sum((x - xm) ** 2)
    slope = np.sum((x - xm) * (z - zm)) / sxx
    intercept = zm - slope * xm
    ss_tot = np.sum((z - zm) ** 2)
    r2 = 1 - np.sum((z - intercept - slope * x) ** 2) / ss_tot if ss_tot > 0 else np.nan
    return float(slope), float(intercept), float(r2)


def _check(steps: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(steps, dtype=float)
    losses = np.asarray(losses, dtype=float)
    keep = (steps > 0) & np.isfinite(losses)
    if keep.sum() < 4:
        raise UserError("the step law needs at least 4 finite loss points at steps > 0")
    return steps[keep], losses[keep]


def fit_step_laws(
    curves: list[tuple[np.ndarray, np.ndarray]],
    *,
    method: str = "grid",
    shared: bool = True,
    t0: float | None = None,
    L0: float | None = None,
    delta: float = DEFAULT_DELTA,
) -> list[StepLawFit]:
    """Fit L0 + (B/t)^beta to each ``(steps, losses)``; ``shared`` ties L0 and t0 across curves in
    the grid fit (the robust refinement then refits each curve, L0 included, on its own).

    ``t0`` or ``L0`` fix those values instead of searching for them.
    """
    if method not in ("grid", "robust"):
        raise UserError(f"step-law method {method!r}: expected grid or robust")
    data = [_check(s, y) for s, y in curves]
    groups = [data] if shared else [[d] for d in data]
    fits: list[StepLawFit] = []
    for group in groups:
        fits += _grid_fit(group, t0, L0)
    if method == "robust":
        fits = [
            _robust_fit(s, y, f, fixed_l0=L0 is not None, delta=delta)
            for (s, y), f in zip(data, fits)
        ]
    return fits


def fit_step_law(steps: np.ndarray, losses: np.ndarray, **kwargs) -> StepLawFit:
    """One curve's step law (see :func:`fit_step_laws`)."""
    return fit_step_laws([(steps, losses)], **kwargs)[0]


def _grid_fit(group: list[tuple[np.ndarray, np.ndarray]], t0: float | None, L0: float | None):
    last = max(s[-1] for s, _ in group)
    t0s = [t0] if t0 is not None else sorted({float(round(f * last)) for f in T0_FRACTIONS})
    best_score, best = -np.inf, None
    for t0_value in t0s:
        subsets = [(s[s > t0_value], y[s > t0_value]) for s, y in group]
        if any(len(s) < 4 for s, _ in subsets):
            continue
        low = min(y.min() for _, y in subsets)
        l0s = [L0] if L0 is not None else low * np.linspace(0.0, 0.9995, L0_GRID_SIZE)
        for l0 in l0s:
            if any(np.any(y <= l0) for _, y in subsets):
                continue
            regs = [_loglog_regression(s, y - l0) for s, y in subsets]
            score = np.mean([r[2] for r in regs])
            if score > best_score:
                best_score = score
                best = [
                    StepLawFit(
                        float(l0),
                        float(np.exp(-icpt / slope)) if slope < 0 else np.inf,
                        float(-slope),
                        float(t0_value),
                        r2,
                        len(s),
                    )
                    for (slope, icpt, r2), (s, _) in zip(regs, subsets)
                ]
    if best is None:
        raise UserError("no (t0, L0) pair leaves enough points for the step law; give a smaller t0")
    return best


def _robust_fit(steps, losses, start: StepLawFit, fixed_l0: bool, delta: float) -> StepLawFit:
    keep = steps > start.t0
    t, y = steps[keep], losses[keep]
    log_t = np.log(t)

    def predict_jac(p: np.ndarray):
        l0, log_b, beta = p
        e = np.exp(beta * (log_b - log_t))
        jac = np.stack([np.ones_like(t), beta * e, (log_b - log_t) * e], axis=1)
        if fixed_l0:
            jac[:, 0] = 0.0
        return l0 + e, jac

    log_b0 = np.log(start.B) if np.isfinite(start.B) and start.B > 0 else np.log(t[0])
    bounds = [(0.0, float(y.min()) * (1 - 1e-9)), (None, None), (1e-6, 20.0)]
    result = minimize_multistart(
        predict_jac, y, [(start.L0, log_b0, max(start.beta, 1e-3))], bounds, delta
    )
    l0, log_b, beta = result.params
    pred = l0 + np.exp(beta * (log_b - log_t))
    ss_tot = np.sum((y - y.mean()) ** 2)
    r2 = float(1 - np.sum((pred - y) ** 2) / ss_tot) if ss_tot > 0 else float("nan")
    return StepLawFit(float(l0), float(np.exp(log_b)), float(beta), start.t0, r2, len(t))


def closed_form_acceleration(
    conventional: StepLawFit, learned: StepLawFit, total_steps: float
) -> float:
    """T / t* where the learned law reaches the conventional law's loss at T (equal L0):

    AR = T^(1 - b1/b2) * B1^(b1/b2) / B2    (1 = conventional, 2 = learned).
    """
    b1, b2 = conventional.beta, learned.beta
    ratio = b1 / b2
    log_ar = (1 - ratio) * np.log(total_steps) + ratio * np.log(conventional.B) - np.log(learned.B)
    return float(np.exp(log_ar))


def largest_rise(curve: np.ndarray, start: int = 0) -> dict[str, float | int]:
    """The largest increase of a loss curve above its running minimum from step ``start`` on:
    ``rise`` = L(to_step) - L(from_step) with ``from_step`` the best step in start..to_step; 0
    for a curve that only falls. A step law L0 + (B/t)^beta only falls, so a large rise in the
    fitted range says why a fit is poor."""
    y = np.asarray(curve, dtype=float)[start:]
    best = np.minimum.accumulate(y)
    to_step = int(np.argmax(y - best))
    from_step = int(np.argmin(y[: to_step + 1]))
    return {
        "rise": float(y[to_step] - y[from_step]),
        "from_step": start + from_step,
        "to_step": start + to_step,
    }


def moving_average(curve: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` steps (an odd number is used: window | 1), the
    window shrinking symmetrically at both ends so that every point stays centred."""
    y = np.asarray(curve, dtype=float)
    half = max(int(window), 1) // 2
    if half == 0:
        return y.copy()
    t = np.arange(len(y))
    h = np.minimum(half, np.minimum(t, len(y) - 1 - t))
    cum = np.concatenate([[0.0], np.cumsum(y)])
    return (cum[t + h + 1] - cum[t - h]) / (2 * h + 1)
