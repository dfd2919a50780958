"""The robust-fitting core shared by every law.

Laws are fitted by minimising the Huber loss of log residuals, sum_i huber(log Lhat_i - log L_i),
which treats a relative error the same at every loss level and keeps a few spikes from
steering the fit. The objective is divided by delta^2, so a point inside delta costs about
0.5 (r/delta)^2 and optimiser tolerances mean the same thing for any delta.

Two optimisers: multi-start L-BFGS-B on a law's numpy ``predict_jac(params) -> (pred, jac)``
(exact gradients, cheap per evaluation), and Adam on a torch prediction function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

DEFAULT_DELTA = 1e-3
_progress: list = []  # the bar of the fit in progress, if one asked for it
_FLOOR = 1e-12  # predictions at or below zero (possible while exploring) are clamped here


def huber(residuals, delta: float):
    """Elementwise Huber (works on numpy arrays and torch tensors alike)."""
    a = abs(residuals)
    m = a.clip(max=delta)
    return 0.5 * m * m + delta * (a - m)


def huber_log_value_and_grad(
    pred: np.ndarray, jac: np.ndarray, log_target: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Objective and its gradient from predictions and their Jacobian (n points x p params)."""
    safe = np.maximum(pred, _FLOOR)
    r = np.log(safe) - log_target
    value = float(np.sum(huber(r, delta))) / delta**2
    dr = np.clip(r, -delta, delta) / delta**2 / safe * (pred > _FLOOR)
    return value, dr @ jac


def huber_log_torch(pred: torch.Tensor, log_target: torch.Tensor, delta: float) -> torch.Tensor:
    """The same objective on torch tensors, for autograd-based optimisers."""
    r = torch.log(pred.clamp_min(_FLOOR)) - log_target
    return huber(r, delta).sum() / delta**2


@contextmanager
def progress(desc: str, enabled: bool) -> Iterator[None]:
    """A progress bar (with ETA once the optimisers have announced their work) over the
    optimisers run inside the block: L-BFGS starts and Adam steps."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, total=0, unit="step", disable=True if not enabled else None, leave=False)
    _progress.append(bar)
    try:
        yield
    finally:
        _progress.pop()
        bar.close()


def _expect(work: int) -> None:
    if _progress:
        _progress[-1].total += work
        _progress[-1].refresh()


def _done(work: int = 1) -> None:
    if _progress:
        _progress[-1].update(work)


@dataclass
class FitResult:
    params: np.ndarray
    objective: float
    starts: int
    converged: int


def minimize_multistart(
    predict_jac: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    target: np.ndarray,
    starts: Sequence[Sequence[float]],
    bounds: Sequence[tuple[float | None, float | None]],
    delta: float = DEFAULT_DELTA,
    maxiter: int = 3000,
) -> FitResult:
    """L-BFGS-B from every start; keep the lowest objective."""
    log_target = np.log(np.asarray(target, float))

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            pred, jac = predict_jac(x)
            value, grad = huber_log_value_and_grad(pred, jac, log_target, delta)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e30, np.zeros_like(x)
        return value, grad

    best, converged = None, 0
    _expect(len(starts))
    for x0 in starts:
        res = minimize(
            value_and_grad,
            np.asarray(x0, float),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-9},
        )
        converged += bool(res.success)
        _done()
        if np.isfinite(res.fun) and res.fun < 1e30 and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise RuntimeError("no start gave a finite objective")
    return FitResult(best.x, float(best.fun), len(starts), converged)


def torch_predict_jac(
    formula: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Wrap a torch formula params -> predictions as numpy ``(pred, jac)`` via forward mode."""
    jacobian = torch.func.jacfwd(formula)

    def predict_jac(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = torch.as_tensor(x, dtype=torch.float64)
        with torch.no_grad():
            return formula(p).numpy(), jacobian(p).numpy()

    return predict_jac


def minimize_adam(
    objective: Callable[[torch.Tensor], torch.Tensor],
    start: Sequence[float],
    steps: int = 2000,
    lr: float = 1e-2,
    project: Callable[[torch.Tensor], None] | None = None,
) -> FitResult:
    """Adam from one start with a cosine-decayed step size; ``project`` clamps in place."""
    p = torch.tensor(np.asarray(start, float), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 1e-2)
    best_x, best_f = p.detach().clone(), float("inf")
    _expect(steps)
    for _ in range(steps):
        opt.zero_grad()
        value = objective(p)
        if torch.isfinite(value) and value.item() < best_f:
            best_f, best_x = value.item(), p.detach().clone()
        value.backward()
        opt.step()
        sched.step()
        _done()
        if project is not None:
            with torch.no_grad():
                project(p)
    return FitResult(best_x.numpy(), best_f, 1, 1)
