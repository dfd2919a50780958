"""The momentum law's annealing area S2 and its derivative in lambda (a filter itself), and a
fit with lambda as a fifth parameter."""

import numpy as np
import pytest

from learnlaw.curves import LossCurve
from learnlaw.errors import UserError
from learnlaw.laws import MomentumLaw, law_from_options, parse_lambda
from learnlaw.laws.momentum import LAMBDA_BOUNDS, annealing_area, annealing_area_grad
from learnlaw.schedules import parse_schedule

SCHEDULES = [
    "cosine:peak=3e-4,final=3e-5,warmup=100,total=3000",
    "multistep:peak=3e-4,warmup=100,milestones=1200/2000,values=9e-5/3e-5,total=3000",
    "wsd:peak=3e-4,final=0,warmup=100,total=3000,decay_frac=0.2,shape=linear",
    "cyclic:peak=3e-4,final=3e-5,warmup=100,cycle=700,rewarmup=100,total=3000",
]


def direct_s2(eta, lam):
    """S2 by the defining recursion, as plain loops."""
    m, total, out = 0.0, 0.0, [0.0]
    for i in range(1, len(eta)):
        m = lam * m + (eta[i - 1] - eta[i])
        total += m
        out.append(total)
    return np.array(out)


@pytest.mark.parametrize("spec", SCHEDULES)
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.99, 0.999, 0.9999])
def test_s2_gradient_matches_central_differences(spec, lam):
    eta = parse_schedule(spec).values(3001)
    s2, grad = annealing_area_grad(eta, lam)
    assert np.allclose(s2, annealing_area(eta, lam), rtol=0, atol=1e-15)
    assert np.allclose(s2, direct_s2(eta, lam), rtol=1e-10, atol=1e-15)
    # second-order differences (central; one-sided at the bound 0), the step small next to
    # 1 - lambda, where S2 changes fastest
    h = 1e-5 * (1 - lam)
    if lam == 0.0:
        f0, f1, f2 = (annealing_area(eta, x) for x in (0.0, h, 2 * h))
        numeric = (-3 * f0 + 4 * f1 - f2) / (2 * h)
    else:
        numeric = (annealing_area(eta, lam + h) - annealing_area(eta, lam - h)) / (2 * h)
    assert np.max(np.abs(grad - numeric)) <= 1e-5 * np.max(np.abs(grad))


def test_s2_gradient_is_zero_for_a_constant_schedule():
    eta = np.full(500, 3e-4)
    s2, grad = annealing_area_grad(eta, 0.999)
    assert not s2.any() and not grad.any()


def test_fitted_lambda_recovers_a_known_lambda():
    truth = MomentumLaw(lam=0.995)
    truth.lam_, truth.params_ = 0.995, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    rng = np.random.default_rng(0)
    specs = [
        "constant:peak=3e-4,warmup=300,total=8000",
        "cosine:peak=3e-4,final=3e-5,warmup=300,total=8000",
        "multistep:peak=3e-4,warmup=300,milestones=4000,values=9e-5,total=8000",
    ]
    steps = np.arange(400, 8001, 50)
    curves = []
    for spec in specs:
        sched = parse_schedule(spec)
        loss = truth.predict(sched, steps) * (1 + 2e-4 * rng.standard_normal(len(steps)))
        curves.append(LossCurve(steps, loss, sched, warmup_steps=sched.warmup, name=spec[:6]))
    fit = law_from_options("momentum", lam="fit").fit(curves)
    assert LAMBDA_BOUNDS[0] <= fit.lam_ <= LAMBDA_BOUNDS[1]
    assert fit.lam_ == pytest.approx(0.995, abs=2e-3)
    # at least as good as the best grid value by the fit objective (it starts there)
    auto = law_from_options("momentum", lam="auto").fit(curves)
    assert fit.fit_info_["objective"] <= auto.fit_info_["objective"] + 1e-9


@pytest.mark.parametrize("bad", ["1", "-0.1", "often", "nan"])
def test_lambda_option_errors_name_the_option(bad):
    with pytest.raises(UserError, match="--lambda"):
        parse_lambda(bad)
    assert parse_lambda("FIT") == "fit" and parse_lambda("0.998") == 0.998
