"""The momentum (annealing) law of Tissue et al., arXiv 2408.11029.

    L(s) = L0 + A * S1(s)^(-alpha) - C * S2(s)

S1 is the area under the LR curve; S2 the annealing area, the sum of a momentum of LR drops
    m_i = lambda * m_{i-1} + (eta_{i-1} - eta_i),   S2(s) = sum_{i=1..s} m_i.
Warmup steps count at the peak LR. lambda is given, picked from a grid (``lam="auto"``) or
fitted with the other parameters (``lam="fit"``): S2 is a first-order IIR filter of the
drops, and its derivative in lambda is the same filter applied to the momentum delayed by
one step, dm_i/dlambda = lambda * dm_{i-1}/dlambda + m_{i-1}, so L-BFGS-B gets exact
gradients. With model sizes N (``size_scaling=True``):
    L(s, N) = L0 + A * S1^(-alpha) + B * N^(-beta) - C * S2 * N^gamma.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.signal import lfilter

from learnlaw.errors import UserError
from learnlaw.laws.base import Law
from learnlaw.laws.fitting import FitResult, minimize_multistart
from learnlaw.laws.inputs import MAX_POINTS, LawInput, forward_area

DEFAULT_LAMBDA = 0.999
LAMBDA_GRID = (0.99, 0.995, 0.998, 0.999, 0.9995)
# when the best grid value is at an edge, the grid is extended that way, one value at a time
LAMBDA_BELOW = (0.98, 0.95, 0.9)
LAMBDA_ABOVE = (0.9998, 0.9999)
# a fitted lambda stays below 1 (at 1 the momentum never decays and S2 grows without bound)
LAMBDA_BOUNDS = (0.0, 0.9999)
LAMBDA_CHOICES = ("auto", "fit")
SIZE_UNIT = 1e8  # sizes enter the fit as N / 1e8 so B, beta, gamma start on a sane scale
SIZE_FREE_BOUNDS = [(0, None), (0, None), (0, 10), (0, None)]  # L0, A, alpha, C
# L0, A, alpha, B, beta, C, gamma
SIZE_BOUNDS = [(0, None), (0, None), (0, 10), (0, None), (0, 5), (0, None), (-2, 2)]


def annealing_area(eta: np.ndarray, lam: float) -> np.ndarray:
    """S2(s) for every s = 0..len-1, the momentum form of SPEC B1 (S2(0) = 0)."""
    drops = eta[:-1] - eta[1:]  # eta_{i-1} - eta_i for i = 1..len-1
    momentum = lfilter([1.0], [1.0, -lam], drops)
    return np.concatenate([[0.0], np.cumsum(momentum)])


def annealing_area_grad(eta: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(S2, dS2/dlambda) for every s = 0..len-1.

    m = filter(drops) with the pole lambda; differentiating m_i = lambda m_{i-1} + d_i gives
    q_i = lambda q_{i-1} + m_{i-1} for q = dm/dlambda: the same filter applied to m delayed by
    one step (q_0 = m_0 = 0)."""
    drops = eta[:-1] - eta[1:]
    momentum = lfilter([1.0], [1.0, -lam], drops)
    dmomentum = lfilter([0.0, 1.0], [1.0, -lam], momentum)
    zero = np.zeros(1)
    return np.concatenate([zero, np.cumsum(momentum)]), np.concatenate([zero, np.cumsum(dmomentum)])


class MomentumLaw(Law):
    """``MomentumLaw(lam=0.999).fit(curves).predict(schedule, steps)``.

    ``lam="auto"`` picks lambda from ``LAMBDA_GRID`` by the fit objective (extending the grid
    past an edge when the best value is there, with a note); ``lam="fit"`` fits it as one more
    parameter (bounded to ``LAMBDA_BOUNDS``), started from the best point of that search. The
    lambda used is ``lam_`` (``lam`` itself stays as given).
    """

    name = "momentum"
    base_names = ("L0", "A", "alpha", "C")
    size_names = ("L0", "A", "alpha", "B", "beta", "C", "gamma")
    param_names = size_names

    def __init__(
        self,
        lam: float | str = DEFAULT_LAMBDA,
        size_scaling: bool = False,
        delta: float | str = "auto",
        max_points: int = MAX_POINTS,
        fit_from: int | None = None,
        smooth: int | None = None,
        bootstrap: int = 0,
        seed: int = 0,
    ) -> None:
        self.lam = lam
        self.size_scaling = size_scaling
        self.delta = delta
        self.max_points = max_points
        self.fit_from = fit_from
        self.smooth = smooth
        self.bootstrap = bootstrap
        self.seed = seed

    def hyperparameters(self) -> dict[str, Any]:
        return {"lam": self.lam, "size_scaling": self.size_scaling, **self.common_hyperparameters()}

    def learned(self) -> dict[str, Any]:
        return {"lam": self.lam_}

    def _set_learned(self, values: dict[str, Any]) -> None:
        lam = values["lam"]
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam < 1:
            raise UserError(f"learned lambda = {lam!r}: expected a number in [0, 1)")
        self.lam_ = float(lam)

    def check_hyperparameters(self) -> None:
        super().check_hyperparameters()
        lam = self.lam
        numeric = isinstance(lam, (int, float)) and not isinstance(lam, bool)
        if not (lam in LAMBDA_CHOICES or (numeric and 0 <= lam < 1)):
            raise UserError(
                f"momentum law: lam = {lam!r}: expected a number in [0, 1), 'auto' or 'fit'"
            )
        if not isinstance(self.size_scaling, bool):
            raise UserError(
                f"momentum law: size_scaling = {self.size_scaling!r}: expected true or false"
            )

    def param_bounds(self):
        return self._bounds()

    def active_param_names(self) -> tuple[str, ...]:
        return self.size_names if self.size_scaling else self.base_names

    def n_params(self) -> int:
        return len(self.active_param_names())

    # ---- the formula ------------------------------------------------------------------------
    def features(self, inp: LawInput, steps: np.ndarray, lam: float) -> np.ndarray:
        """Columns S1, S2, N/1e8 at the given steps."""
        eta = inp.lrs_warmup_at_peak()[: int(steps.max()) + 1]
        s1 = forward_area(eta)[steps]
        s2 = annealing_area(eta, lam)[steps]
        size = (inp.model_size or np.nan) / SIZE_UNIT
        return np.stack([s1, s2, np.full(len(steps), size)], axis=1)

    @staticmethod
    def formula(p: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and their Jacobian for 4 parameters (one size) or 7 (with model size)."""
        s1, s2, n = x[:, 0], x[:, 1], x[:, 2]
        l0, a, alpha = p[0], p[1], p[2]
        s1_term = s1 ** (-alpha)
        cols = [np.ones_like(s1), s1_term, -a * s1_term * np.log(s1)]
        if len(p) == 7:
            b, beta, c, gamma = p[3:]
            n_term, n_gamma = n ** (-beta), n**gamma
            pred = l0 + a * s1_term + b * n_term - c * s2 * n_gamma
            cols += [n_term, -b * n_term * np.log(n), -s2 * n_gamma, -c * s2 * n_gamma * np.log(n)]
        else:
            c = p[3]
            pred = l0 + a * s1_term - c * s2
            cols += [-s2]
        return pred, np.stack(cols, axis=1)

    # ---- fitting ----------------------------------------------------------------------------
    def _fit(self, runs, steps, losses, start=None):
        if start is not None:  # a warm start: lambda and the starting point fixed
            if self.lam in LAMBDA_CHOICES and not hasattr(self, "lam_"):
                raise UserError("a warm-started momentum law needs a numeric lambda")
            lam = self.lam_ if self.lam in LAMBDA_CHOICES else float(self.lam)
            self.lam_ = lam
            x = np.concatenate([self.features(r, s, lam) for r, s in zip(runs, steps)])
            names = self.active_param_names()
            result = minimize_multistart(
                lambda p: self.formula(p, x),
                np.concatenate(losses),
                [[start[k] for k in names]],
                self._bounds(),
                self.delta_,
            )
            return dict(zip(names, result.params.tolist())), result.objective
        if self.size_scaling:
            missing = [r.name for r in runs if not r.model_size]
            if missing:
                raise UserError(
                    f"size scaling needs a model size for every curve; none for {', '.join(missing)} "
                    "(write FILE@400M, or a model_size column)"
                )
            if len({r.model_size for r in runs}) < 2:
                raise UserError("size scaling needs curves of at least two model sizes")
        y = np.concatenate(losses)

        def fit_at(lam: float) -> FitResult:
            x = np.concatenate([self.features(r, s, lam) for r, s in zip(runs, steps)])
            return self._fit_features(x, y)

        if self.lam in LAMBDA_CHOICES:
            lam, result = self._search_lambda(fit_at)
        else:
            lam = float(self.lam)
            result = fit_at(lam)
        self.lam_ = lam
        if self.lam == "fit":
            return self._fit_lambda(runs, steps, y, result.params, lam, result.objective)
        return dict(zip(self.active_param_names(), result.params.tolist())), result.objective

    def _search_lambda(self, fit_at) -> tuple[float, FitResult]:
        """The best lambda of ``LAMBDA_GRID`` by the fit objective, the grid extended past an
        edge (``LAMBDA_BELOW``, ``LAMBDA_ABOVE``) while the best value sits on it."""
        results = {lam: fit_at(lam) for lam in LAMBDA_GRID}
        below, above = list(LAMBDA_BELOW), list(LAMBDA_ABOVE)
        while True:
            best = min(results, key=lambda lam: results[lam].objective)
            edge = below if best == min(results) else above if best == max(results) else None
            if not edge:
                break
            extra = edge.pop(0)
            results[extra] = fit_at(extra)
        tried = sorted(results)
        if tried != sorted(LAMBDA_GRID):
            self._note(
                f"lambda: the best value of {LAMBDA_GRID[0]}-{LAMBDA_GRID[-1]} was at the edge; "
                f"tried {', '.join(f'{x:g}' for x in tried if x not in LAMBDA_GRID)} as well"
            )
        if best in (tried[0], tried[-1]):
            self._note(
                f"lambda {best:g} is at the edge of the values tried ({tried[0]:g}-{tried[-1]:g}): "
                "the best lambda may lie beyond; --lambda fit fits it freely"
            )
        return best, results[best]

    def _fit_lambda(self, runs, steps, y, params, lam, objective):
        """Polish (params, lambda) jointly from the search's best; keeps it if no better."""
        etas = [r.lrs_warmup_at_peak()[: int(s.max()) + 1] for r, s in zip(runs, steps)]
        fixed = [self.features(r, s, lam) for r, s in zip(runs, steps)]  # S1 and N: no lambda

        def predict_jac(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x, ds2 = [], []
            for eta, s, f in zip(etas, steps, fixed):
                s2, ds2_run = annealing_area_grad(eta, p[-1])
                x.append(np.column_stack([f[:, 0], s2[s], f[:, 2]]))
                ds2.append(ds2_run[s])
            x, ds2 = np.concatenate(x), np.concatenate(ds2)
            pred, jac = self.formula(p[:-1], x)
            # d pred / d S2 is -C (times N^gamma with model size)
            slope = -p[5] * x[:, 2] ** p[6] if self.size_scaling else -p[3]
            return pred, np.column_stack([jac, slope * ds2])

        result = minimize_multistart(
            predict_jac, y, [[*params, lam]], [*self._bounds(), LAMBDA_BOUNDS], self.delta_
        )
        if result.objective < objective:
            params, lam, objective = result.params[:-1], float(result.params[-1]), result.objective
        self.lam_ = lam
        return dict(zip(self.active_param_names(), np.asarray(params).tolist())), objective

    def _fit_features(self, x: np.ndarray, y: np.ndarray) -> FitResult:
        # The published script's grid of starts, with L0 scaled to the data's loss level.
        low = float(np.min(y))
        l0s = (0.05 * low, 0.75 * low)
        base_starts = list(
            itertools.product(l0s, (1.0, 11.5, 22.0), (0.0, 0.4, 0.8), (1.0, 11.5, 22.0))
        )

        def predict_jac(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self.formula(p, x)

        base = minimize_multistart(predict_jac, y, base_starts, SIZE_FREE_BOUNDS, self.delta_)
        if not self.size_scaling:
            return base
        # Start the size law from the size-free optimum and a small grid for B, beta, gamma.
        l0, a, alpha, c = base.params
        starts = [
            (l0 * f, a, alpha, b, beta, c, gamma)
            for f, b, beta, gamma in itertools.product(
                (0.9, 0.6), (0.1, 1.0), (0.2, 0.6), (0.0, 0.3)
            )
        ]
        return minimize_multistart(predict_jac, y, starts, self._bounds(), self.delta_)

    def _bounds(self) -> list[tuple[float | None, float | None]]:
        return SIZE_BOUNDS if self.size_scaling else SIZE_FREE_BOUNDS

    def _predict(self, params, inp: LawInput, steps: np.ndarray) -> np.ndarray:
        if self.size_scaling and not inp.model_size:
            raise UserError(
                f"{inp.name or 'schedule'}: this fit uses model size; give one (--model-size)"
            )
        p = np.array([params[k] for k in self.active_param_names()])
        return self.formula(p, self.features(inp, steps, self.lam_))[0]
