"""The adjoint hypergradient against autograd through the unrolled loop and finite differences."""

import numpy as np
import pytest
import torch

from learnlaw.policy.engine import Policy, hypergradient, run_policy
from learnlaw.tasks.perceptron import PerceptronConfig, PerceptronTask


def small_task(analytic=True, **overrides):
    cfg = PerceptronConfig(
        dim=5,
        n_train=12,
        n_desired=8,
        n_test=6,
        select_fraction=0.25,
        init="normal",
        analytic=analytic,
        **overrides,
    )
    return PerceptronTask(cfg, seed=3)


def random_policy(steps, n, segment=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = -(-steps // segment)
    w = torch.rand(rows, n, generator=g, dtype=torch.float64) + 0.1
    return Policy(w / w.sum(1, keepdim=True), segment)


def unrolled_objective(task, weights, eta, steps, segment=1):
    """J computed with plain autograd through every step (the independent reference)."""
    theta = task.theta0.clone().requires_grad_(True)
    total = 0.0
    for t in range(steps):
        (g,) = torch.autograd.grad(
            weights[t // segment] @ task.losses(theta, "train"), theta, create_graph=True
        )
        theta = theta - eta * g
        total = total + task.losses(theta, "objective").mean()
    return total / steps


@pytest.mark.parametrize("analytic", [True, False])
@pytest.mark.parametrize("checkpoint_every", [1, 3, 7])
def test_adjoint_equals_autograd_through_the_unrolled_loop(analytic, checkpoint_every):
    task = small_task(analytic)
    steps, eta = 7, 0.5
    policy = random_policy(steps, task.n_train)
    run, grads = hypergradient(task, policy, eta, steps, checkpoint_every=checkpoint_every)
    weights = policy.weights.clone().requires_grad_(True)
    j = unrolled_objective(task, weights, eta, steps)
    (expected,) = torch.autograd.grad(j, weights)
    assert run.objective == pytest.approx(j.item(), rel=1e-12)
    assert torch.allclose(grads, expected, rtol=1e-9, atol=1e-13)


def test_adjoint_equals_central_finite_differences_with_segments():
    task = small_task(True)
    steps, eta, segment = 9, 0.8, 4
    policy = random_policy(steps, task.n_train, segment)
    _, grads = hypergradient(task, policy, eta, steps, checkpoint_every=2)
    h = 1e-6
    rng = np.random.default_rng(0)
    for _ in range(8):
        r, n = int(rng.integers(policy.weights.shape[0])), int(rng.integers(task.n_train))
        plus, minus = policy.weights.clone(), policy.weights.clone()
        plus[r, n] += h
        minus[r, n] -= h
        jp = run_policy(task, Policy(plus, segment), eta, steps).objective
        jm = run_policy(task, Policy(minus, segment), eta, steps).objective
        assert float(grads[r, n]) == pytest.approx((jp - jm) / (2 * h), rel=1e-5, abs=1e-10)


def test_checkpointed_and_stored_trajectory_agree_to_rounding():
    task = PerceptronTask(PerceptronConfig(dim=16, n_train=64, n_desired=32, n_test=16), seed=1)
    policy = random_policy(50, task.n_train)
    _, stored = hypergradient(task, policy, 0.1, 50, checkpoint_every=1)
    _, checkpointed = hypergradient(task, policy, 0.1, 50, checkpoint_every=7)
    assert torch.allclose(stored, checkpointed, rtol=1e-12, atol=1e-16)


def test_generic_and_analytic_paths_agree():
    a, g = small_task(True), small_task(False)
    policy = random_policy(6, a.n_train)
    _, ga = hypergradient(a, policy, 0.3, 6)
    _, gg = hypergradient(g, policy, 0.3, 6)
    assert torch.allclose(ga, gg, rtol=1e-10, atol=1e-14)
