"""The Multi-Power Law with the warmup's LR rises in LD (the reference code's sum over every
step from 1): the flat sum and the differentiable final loss against a direct double sum."""

import numpy as np
import pytest
import torch

from learnlaw.laws import MultiPowerLaw
from learnlaw.laws.inputs import LawInput
from learnlaw.laws.multipower import PARAMS, drop_terms, law_value
from learnlaw.schedules import parse_schedule

TRUE = dict(zip(PARAMS, (2.5, 0.6, 0.45, 500.0, 2.0, 0.55, 0.6)))


def direct_with_warmup(p, lrs, warmup, step):
    """SPEC B2 over absolute steps 0..step, the warmup a linear ramp eta_s = peak * s / W whose
    rises enter LD as negative drops; S1 keeps S_W = peak * W / 2 (plain loops)."""
    peak = lrs[warmup]
    eta = np.array([peak * s / warmup for s in range(warmup)] + list(lrs[warmup : step + 1]))
    s1 = sum(eta[warmup + 1 : step + 1]) + 0.5 * peak * warmup
    ld = 0.0
    for k in range(1, step + 1):
        if eta[k - 1] == eta[k]:
            continue
        s_k = sum(eta[k : step + 1])
        ld += (eta[k - 1] - eta[k]) * (
            1 - (p["C"] * eta[k] ** (-p["gamma"]) * s_k + 1) ** (-p["beta"])
        )
    return p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["B"] * ld


@pytest.mark.parametrize(
    "spec",
    [
        "cosine:peak=3e-4,final=3e-5,warmup=20,total=150",
        "multistep:peak=3e-4,warmup=10,milestones=60/90,values=1e-4/3e-5,total=150",
        "constant:peak=3e-4,warmup=30,total=150",
    ],
)
def test_warmup_rises_equal_the_direct_double_sum(spec):
    sched = parse_schedule(spec)
    lrs = sched.values(151)
    run = LawInput(lrs, sched.warmup)
    steps = np.array([sched.warmup, sched.warmup + 1, 50, 100, 150])
    p = torch.tensor([TRUE[k] for k in PARAMS], dtype=torch.float64)
    got = law_value(p, drop_terms(run, steps, warmup_drops=True)).numpy()
    expected = [direct_with_warmup(TRUE, lrs, sched.warmup, s) for s in steps]
    assert np.allclose(got, expected, rtol=1e-12)
    # and the law's final_loss_torch (what the schedule optimiser differentiates)
    law = MultiPowerLaw(warmup_drops=True)
    law.params_ = dict(TRUE)
    eta = torch.tensor(lrs[sched.warmup :], dtype=torch.float64)
    assert law.final_loss_torch(eta, sched.warmup).item() == pytest.approx(expected[-1], rel=1e-12)


def test_blocked_sum_with_warmup_rises_is_close_to_exact():
    sched = parse_schedule("cosine:peak=3e-4,final=3e-5,warmup=2000,total=24000")
    run = LawInput(sched.values(24001), 2000)
    steps = np.arange(2000, 24001, 128)
    p = torch.tensor([TRUE[k] for k in PARAMS], dtype=torch.float64)
    exact = law_value(p, drop_terms(run, steps, warmup_drops=True)).numpy()
    blocked = law_value(p, drop_terms(run, steps, 0.05, warmup_drops=True)).numpy()
    assert np.max(np.abs(blocked / exact - 1)) < 5e-5


def test_fits_saved_before_warmup_drops_load_without_them():
    law = MultiPowerLaw(warmup_drops=False)
    law.params_, law.fit_info_, law.bootstrap_params_ = dict(TRUE), {}, []
    obj = law.to_json()
    del obj["hyperparameters"]["warmup_drops"]
    assert MultiPowerLaw.from_json(obj).warmup_drops is False


def test_long_logs_are_fitted_on_bins_and_scored_on_every_point():
    from learnlaw.curves import LossCurve
    from learnlaw.laws.inputs import law_points

    truth = MultiPowerLaw()
    truth.params_ = dict(TRUE)
    steps = np.arange(30, 3000, 3)  # 990 logged points per curve
    curves = []
    for spec in (
        "constant:peak=3e-4,warmup=20,total=3000",
        "cosine:peak=3e-4,final=3e-5,warmup=20,total=3000",
    ):
        sched = parse_schedule(spec)
        curves.append(LossCurve(steps, truth.predict(sched, steps), sched, 20, name=spec[:6]))
    law = MultiPowerLaw(adam_steps=100, polish=False).fit(curves)
    notes = " ".join(law.fit_info_["notes"])
    assert "bins of its 990 points" in notes and "scores use all" in notes
    assert law.fit_info_["curves"][0]["points"] < 330  # about 250, early bins narrower
    # scores are on every point: the bins are for the fit only
    from learnlaw.laws.evaluation import score_curves

    assert score_curves(law, curves[:1]).curves[0].points == len(law_points(curves[0]).steps)
