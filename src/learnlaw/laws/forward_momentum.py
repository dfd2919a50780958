"""The Forward-Momentum (FM) law of Wang et al., AAAI 2026 (arXiv 2512.13705).

    L(s, N) = L0 + A * S(s)^(-alpha_S) + B * N^(-alpha_N) - C * M(s)

S is the forward effect, the area under the LR curve; M the annealing momentum, the LR drops
passed through Adam's moment estimates:

    d_t = eta_{t-1} - eta_t                                   (t = 1, 2, ... training steps)
    m_t = beta1 m_{t-1} + (1 - beta1) d_t,      v_t = beta2 v_{t-1} + (1 - beta2) d_t^2
    m^_t = m_t / (1 - beta1^t),                 v^_t = v_scale * v_t / (1 - beta2^t)
    M(s) = sum_{t=1..s} m^_t / (sqrt(v^_t + eps) + eps)

with the published constants beta1 = 0.9, beta2 = 0.999, eps = 1e-8, v_scale = 1e5 (the
public code xmed-lab/fm-annealing, ``compute_M``; the paper writes the update as
M_t = M_{t-1} + m^_t / sqrt(v^_t + eps)). eps is not scale-free: a per-step drop well under
sqrt(eps / v_scale) = 3.2e-7 (every smooth decay of a 3e-4 peak over thousands of steps) leaves
M close to the lagged LR drop itself, sum_t m^_t / 1e-4, while a larger one (a sudden drop)
is normalised, m^/sqrt(v^) ~ 1 per step whatever its size: the law then predicts almost the
same gain from a sudden drop to 3e-5 as to 1.8e-4 (measured: 1-2.4% error on the two-stage runs
of the shared curves), a flaw of the published definition that this port keeps.

Choices where the paper and the public code leave room (each a hyperparameter):

- the grid: the public code runs on whatever (step, lr) arrays it is given, usually the logged
  steps, with d_i = (eta_{i-1} - eta_i) * (step_i - step_{i-1}). A law must not depend on the
  steps it is asked about, so M here runs on a fixed grid of every ``interval`` steps from step
  0 (default 1: every training step, the paper's M_t), with the same width factor, and is
  interpolated linearly between grid points.
- bias correction: Adam's 1 - beta^t with t the number of updates from step 0 (the public code
  uses 1 - beta^(i+1), one more; the two differ only over the first few hundred steps).
- warmup: ``"ramp"`` (default) counts the linear warmup at its own LR in both S and M, the
  literal S = integral_0^T eta dt (S gains 0.5 * peak * W; the rising LR gives negative drops,
  a constant offset of M for every run with the same warmup); ``"peak"`` counts warmup steps
  at the peak LR, the convention of the momentum law here.

Model size: N enters as N / 1e8 (``SIZE_UNIT``), so B is the size term's value at 1e8
parameters (B_paper = B * 1e8^alpha_N). With ``size_scaling=False`` the size term is dropped
(one model size: B N^-alpha_N is a constant inside L0).

Identifiability of the size term: each size's loss floor L0 + B N^-alpha_N is one number, so
two sizes leave L0, B, alpha_N on a flat ridge (the fit notes it; ``alpha_N=`` holds the
exponent fixed) and three sizes determine them exactly, with nothing left to check them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import nnls
from scipy.signal import lfilter

from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.laws.fitting import FitResult, minimize_multistart
from learnlaw.laws.inputs import MAX_POINTS, LawInput, forward_area

SIZE_UNIT = 1e8
BETA1, BETA2, EPS, V_SCALE = 0.9, 0.999, 1e-8, 1e5  # the public code's constants
BASE_NAMES = ("L0", "A", "alpha_S", "C")
SIZE_NAMES = ("L0", "A", "alpha_S", "B", "alpha_N", "C")
BASE_BOUNDS = [(0, None), (0, None), (1e-4, 10), (0, None)]
SIZE_BOUNDS = [(0, None), (0, None), (1e-4, 10), (0, None), (1e-4, 5), (0, None)]
# the exponent grid the starts are built on (linear coefficients by non-negative least squares)
ALPHA_S_GRID = (0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.5)
ALPHA_N_GRID = (0.05, 0.1, 0.2, 0.35, 0.5, 0.8)
WARMUP_MODES = ("ramp", "peak")


def annealing_momentum(
    eta: np.ndarray,
    beta1: float = BETA1,
    beta2: float = BETA2,
    eps: float = EPS,
    v_scale: float = V_SCALE,
    interval: int = 1,
) -> np.ndarray:
    """M(s) for every s = 0..len(eta)-1 (M(0) = 0), from the per-step LRs ``eta``.

    Runs on the grid 0, K, 2K, ... (K = ``interval``) with drops d_k = (eta at the previous grid
    point - eta here) * K, and interpolates M linearly between grid points (the last grid
    point past the end is included, so every step lies inside the grid).
    """
    eta = np.asarray(eta, dtype=float)
    n = len(eta)
    k = int(interval)
    if k < 1:
        raise UserError(f"interval {interval}: must be a positive number of steps")
    grid = np.arange(0, n - 1 + k, k)
    at = eta[np.minimum(grid, n - 1)]  # steps past the end hold the last LR
    d = (at[:-1] - at[1:]) * k
    if len(d) == 0:
        return np.zeros(n)
    m = lfilter([1.0 - beta1], [1.0, -beta1], d)
    v = lfilter([1.0 - beta2], [1.0, -beta2], d * d)
    t = np.arange(1, len(d) + 1)
    m_hat = m / -np.expm1(t * np.log(beta1))  # 1 - beta1^t, accurate for small t
    v_hat = v_scale * v / -np.expm1(t * np.log(beta2))
    increments = m_hat / (np.sqrt(v_hat + eps) + eps)
    on_grid = np.concatenate([[0.0], np.cumsum(increments)])
    if k == 1:
        return on_grid[:n]
    return np.interp(np.arange(n), grid, on_grid)


class ForwardMomentumLaw(Law):
    """``ForwardMomentumLaw(size_scaling=True).fit(curves).predict(schedule, steps, model_size=4e8)``.

    Fitted jointly over every curve (model sizes and schedules); ``size_scaling=True`` needs a
    model size on every curve and at least two sizes (with one size, ``size_scaling=False``
    drops B and alpha_N: the size term is a constant inside L0).
    """

    name = "forward-momentum"
    base_names = BASE_NAMES
    size_names = SIZE_NAMES
    param_names = SIZE_NAMES

    def __init__(
        self,
        size_scaling: bool = False,
        warmup: str = "ramp",
        beta1: float = BETA1,
        beta2: float = BETA2,
        eps: float = EPS,
        v_scale: float = V_SCALE,
        interval: int = 1,
        alpha_N: float | None = None,
        delta: float | str = "auto",
        max_points: int = MAX_POINTS,
        fit_from: int | None = None,
        smooth: int | None = None,
        bootstrap: int = 0,
        seed: int = 0,
    ) -> None:
        self.size_scaling = size_scaling
        self.warmup = warmup
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.v_scale = v_scale
        self.interval = interval
        self.alpha_N = alpha_N
        self.delta = delta
        self.max_points = max_points
        self.fit_from = fit_from
        self.smooth = smooth
        self.bootstrap = bootstrap
        self.seed = seed

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "size_scaling": self.size_scaling,
            "warmup": self.warmup,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
            "v_scale": self.v_scale,
            "interval": self.interval,
            "alpha_N": self.alpha_N,
            **self.common_hyperparameters(),
        }

    def check_hyperparameters(self) -> None:
        super().check_hyperparameters()
        if not isinstance(self.size_scaling, bool):
            raise UserError(
                f"forward-momentum law: size_scaling = {self.size_scaling!r}: expected true or false"
            )
        if self.warmup not in WARMUP_MODES:
            raise UserError(
                f"forward-momentum law: warmup = {self.warmup!r}: expected one of "
                f"{', '.join(WARMUP_MODES)}"
            )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (_number(value) and 0 <= value < 1):
                raise UserError(f"forward-momentum law: {name} = {value!r}: expected [0, 1)")
        for name in ("eps", "v_scale"):
            value = getattr(self, name)
            if not (_number(value) and 0 < value < float("inf")):
                raise UserError(f"forward-momentum law: {name} = {value!r}: expected > 0")
        if not (isinstance(self.interval, int) and not isinstance(self.interval, bool)) or (
            self.interval < 1
        ):
            raise UserError(
                f"forward-momentum law: interval = {self.interval!r}: expected an integer >= 1"
            )
        if self.alpha_N is not None and not (_number(self.alpha_N) and 0 < self.alpha_N <= 5):
            raise UserError(
                f"forward-momentum law: alpha_N = {self.alpha_N!r}: expected a number in (0, 5] "
                "or None to fit it"
            )

    def param_bounds(self):
        return self._bounds()

    def active_param_names(self) -> tuple[str, ...]:
        return self.size_names if self.size_scaling else self.base_names

    # ---- the formula ------------------------------------------------------------------------
    def step_lrs(self, inp: LawInput, last_step: int) -> np.ndarray:
        """Per-step LR for steps 0..last_step as S and M see it (the warmup by ``warmup``)."""
        n = max(last_step + 1, 1)
        if self.warmup == "peak":
            return inp.lrs_warmup_at_peak()[:n]
        eta = inp.lrs.astype(float)[:n].copy()
        w = min(inp.warmup, n)
        eta[:w] = inp.peak * np.arange(w) / max(inp.warmup, 1)  # the library's linear warmup
        return eta

    def features(self, inp: LawInput, steps: np.ndarray) -> np.ndarray:
        """Columns S, M, N / 1e8 at ``steps``."""
        eta = self.step_lrs(inp, int(steps.max()))
        s = forward_area(eta)[steps]
        m = annealing_momentum(eta, self.beta1, self.beta2, self.eps, self.v_scale, self.interval)
        size = (inp.model_size or np.nan) / SIZE_UNIT
        return np.stack([s, m[steps], np.full(len(steps), size)], axis=1)

    @staticmethod
    def formula(p: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and their Jacobian (points x params) for 4 or 6 parameters."""
        s, m, n = x[:, 0], x[:, 1], x[:, 2]
        l0, a, alpha_s = p[0], p[1], p[2]
        s_term = s ** (-alpha_s)
        cols = [np.ones_like(s), s_term, -a * s_term * np.log(s)]
        pred = l0 + a * s_term
        if len(p) == 6:
            b, alpha_n, c = p[3], p[4], p[5]
            n_term = n ** (-alpha_n)
            pred = pred + b * n_term
            cols += [n_term, -b * n_term * np.log(n)]
        else:
            c = p[3]
        pred = pred - c * m
        cols.append(-m)
        return pred, np.stack(cols, axis=1)

    # ---- fitting ----------------------------------------------------------------------------
    def _fit(self, inputs, steps, losses, start=None):
        names = self.active_param_names()
        if self.size_scaling:
            missing = [r.name or "curve" for r in inputs if not r.model_size]
            if missing:
                raise UserError(
                    f"size scaling needs a model size for every curve; none for {', '.join(missing)} "
                    "(write FILE@400M, or a model_size column)"
                )
            sizes = {r.model_size for r in inputs}
            if len(sizes) < 2:
                raise UserError(
                    "size scaling needs curves of at least two model sizes "
                    "(without --size-scaling, one size is fitted without the size term)"
                )
            if len(sizes) == 2 and self.alpha_N is None:
                # each size's floor L0 + B N^-alpha_N is one number: two numbers, three unknowns
                self._note(
                    "two model sizes: L0, B and alpha_N are not identified (L0 + B N^-alpha_N "
                    "is fitted at two sizes only; the objective is flat along a ridge), so "
                    "predictions for other sizes are arbitrary; fit three or more sizes or hold "
                    "alpha_N fixed (alpha_N=...)"
                )
        x = np.concatenate([self.features(r, s) for r, s in zip(inputs, steps)])
        y = np.concatenate(losses)
        if np.any(x[:, 0] <= 0):
            raise UserError("the forward area S must be positive at every fitted step")
        starts = [[start[k] for k in names]] if start is not None else self._starts(x, y)
        result: FitResult = minimize_multistart(
            lambda p: self.formula(p, x), y, starts, self._bounds(), self.delta_
        )
        return dict(zip(names, result.params.tolist())), result.objective

    def _starts(self, x: np.ndarray, y: np.ndarray, keep: int = 6) -> list[list[float]]:
        """Starts from a grid of the exponents: the law is linear in L0, A, B, C for fixed
        exponents, so each grid point gets its non-negative least-squares coefficients; the
        ``keep`` best (by squared error) start L-BFGS-B."""
        s, m, n = x[:, 0], x[:, 1], x[:, 2]
        if not self.size_scaling:
            grid = [(a, None) for a in ALPHA_S_GRID]
        elif self.alpha_N is not None:
            grid = list(itertools.product(ALPHA_S_GRID, (self.alpha_N,)))
        else:
            grid = list(itertools.product(ALPHA_S_GRID, ALPHA_N_GRID))
        floor = 1e-3 * float(np.mean(y))  # a zero coefficient would freeze its exponent
        trials = []
        for alpha_s, alpha_n in grid:
            cols = [np.ones_like(s), s ** (-alpha_s)]
            if alpha_n is not None:
                cols.append(n ** (-alpha_n))
            cols.append(-m)
            design = np.stack(cols, axis=1)
            scale = np.maximum(np.abs(design).max(axis=0), 1e-300)  # column scaling for nnls
            coef, resid = nnls(design / scale, y)
            coef = np.maximum(coef / scale, floor)
            if alpha_n is None:
                p = [coef[0], coef[1], alpha_s, coef[2]]
            else:
                p = [coef[0], coef[1], alpha_s, coef[2], alpha_n, coef[3]]
            trials.append((resid, p))
        trials.sort(key=lambda t: t[0])
        return [p for _, p in trials[:keep]]

    def _bounds(self) -> list[tuple[float | None, float | None]]:
        if not self.size_scaling:
            return BASE_BOUNDS
        if self.alpha_N is not None:  # held fixed
            return [*SIZE_BOUNDS[:4], (self.alpha_N, self.alpha_N), SIZE_BOUNDS[5]]
        return SIZE_BOUNDS

    def _predict(self, params, inp: LawInput, steps: np.ndarray) -> np.ndarray:
        if self.size_scaling and not inp.model_size:
            raise UserError(
                f"{inp.name or 'schedule'}: this fit uses model size; give one (--model-size)"
            )
        p = np.array([params[k] for k in self.active_param_names()])
        return self.formula(p, self.features(inp, steps))[0]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
