"""The simplex projection against a brute-force QP; the outer steps' invariants."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from learnlaw.errors import UserError
from learnlaw.policy.outer import OuterConfig, calibrate_base_step, outer_step
from learnlaw.policy.simplex import project_rows_to_simplex


def qp_projection(v):
    """argmin ||w - v||^2 s.t. w >= 0, sum w = 1, by a generic solver (independent reference)."""
    n = len(v)
    res = minimize(
        lambda w: np.sum((w - v) ** 2),
        np.full(n, 1 / n),
        jac=lambda w: 2 * (w - v),
        bounds=[(0, None)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


def test_projection_matches_a_brute_force_qp():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1, size=(20, 7)) * rng.choice([0.01, 1, 10], size=(20, 1))
    w = project_rows_to_simplex(torch.as_tensor(v)).numpy()
    for row_v, row_w in zip(v, w):
        assert np.allclose(row_w, qp_projection(row_v), atol=1e-7)
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1, atol=1e-12)


def test_projection_keeps_simplex_points_and_handles_ties():
    p = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(project_rows_to_simplex(p), p)
    assert torch.allclose(
        project_rows_to_simplex(torch.tensor([[5.0, 5.0]])), torch.tensor([[0.5, 0.5]])
    )


@pytest.mark.parametrize("method", ["pgd", "eg"])
def test_auto_step_limits_the_largest_change(method):
    rng = np.random.default_rng(1)
    n = 50
    w = torch.full((4, n), 1 / n, dtype=torch.float64)
    g = torch.as_tensor(rng.normal(size=(4, n)) * 1e-7)
    cfg = OuterConfig(method=method, lr="auto", max_change=0.1)
    new, step = outer_step(w, g, 0, cfg, calibrate_base_step(w, g, cfg))
    assert torch.allclose(new.sum(1), torch.ones(4, dtype=torch.float64))
    assert (new >= 0).all()
    # the first-order change (before projection / renormalisation) is exactly max_change / N
    direction = g if method == "pgd" else w * (g - (w * g).sum(1, keepdim=True))
    assert step * float(direction.abs().max()) * n == pytest.approx(0.1)
    assert 0.08 < float((new - w).abs().max()) * n < 0.12
    # and the step lowers a linear objective (descent direction)
    assert float((new * g).sum()) < float((w * g).sum())


def test_linear_decay_reaches_zero_at_the_end():
    w = torch.full((1, 3), 1 / 3, dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64)
    cfg = OuterConfig(epochs=10, method="pgd", lr=0.01)
    base = calibrate_base_step(w, g, cfg)
    assert base == 0.01
    assert outer_step(w, g, 0, cfg, base)[1] == pytest.approx(0.01)
    assert outer_step(w, g, 5, cfg, base)[1] == pytest.approx(0.005)


@pytest.mark.parametrize("method", ["pgd", "eg"])
def test_row_normalised_step_moves_every_row_by_max_change(method):
    # rows whose hypergradients differ by twelve orders of magnitude (early vs late steps)
    rng = np.random.default_rng(2)
    n = 40
    w = torch.as_tensor(rng.dirichlet(np.full(n, 5.0), size=4))
    g = torch.as_tensor(rng.normal(size=(4, n)) * np.array([[1.0], [1e-4], [1e-8], [1e-12]]))
    g[3] = 7.0  # the same gradient for every example: nothing to move
    cfg = OuterConfig(method=method, lr="auto", max_change=0.01, normalize="row")
    new, _ = outer_step(w, g, 0, cfg, calibrate_base_step(w, g, cfg))
    change = (new - w).abs().amax(1).numpy() * n
    # small steps: the realised change of each moving row is its first-order change, 0.01 / N
    assert np.allclose(change[:3], 0.01, rtol=0.05), change
    assert change[3] < 1e-12
    assert torch.allclose(new.sum(1), torch.ones(4, dtype=torch.float64)) and (new >= 0).all()
    # every row's step is a descent step for its own linear objective
    assert all(float(new[r] @ g[r]) < float(w[r] @ g[r]) for r in range(3))
    with pytest.raises(UserError, match=r'needs outer\.lr = "auto"'):
        OuterConfig(method=method, lr=0.1, normalize="row").validate()


def test_row_normalised_steps_stay_on_the_simplex_in_degenerate_rows():
    n = 4096
    # eg: a row collapsed onto one example (the others at the smallest positive weight) has a
    # vanishing first-order change and so a huge row step; the update must stay finite
    for dtype in (torch.float64, torch.float32):
        w = torch.full((2, n), torch.finfo(dtype).tiny, dtype=dtype)
        w[:, 0] = 1.0
        g = torch.as_tensor(np.random.default_rng(3).normal(size=(2, n)) * 1e-3, dtype=dtype)
        cfg = OuterConfig(method="eg", lr="auto", max_change=4.0, normalize="row")
        new, _ = outer_step(w, g, 0, cfg, calibrate_base_step(w, g, cfg))
        assert torch.isfinite(new).all() and torch.allclose(new.sum(1), torch.ones(2, dtype=dtype))
    # pgd: a row whose gradient is the same for every example except for rounding noise does
    # not move (its mean is not exactly representable, so centring leaves ~1e-17)
    w = torch.full((1, n), 1.0 / n, dtype=torch.float64)
    g = torch.full((1, n), 0.1, dtype=torch.float64)
    cfg = OuterConfig(method="pgd", lr="auto", max_change=4.0, normalize="row")
    new, _ = outer_step(w, g, 0, cfg, calibrate_base_step(w, g, cfg))
    assert torch.allclose(new, w, rtol=0, atol=1e-15)
    # and a nearly constant row moves by its differences, not by the rounding of its mean
    g = g + torch.as_tensor(np.random.default_rng(4).normal(size=(1, n)) * 1e-9)
    new, _ = outer_step(w, g, 0, cfg, calibrate_base_step(w, g, cfg))
    centred = g - g.mean()
    expected = project_rows_to_simplex(w - 4.0 / (n * centred.abs().max()) * centred)
    assert torch.allclose(new, expected, rtol=0, atol=1e-12 / n)
    assert float((new - w).abs().max()) * n > 0.5  # it did move
