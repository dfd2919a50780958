"""The momentum law and the step power law: areas by hand, recovery of known parameters."""

import numpy as np
import pytest

from conftest import noisy_law_curves
from learnlaw.analysis.steplaw import closed_form_acceleration, fit_step_law, fit_step_laws
from learnlaw.curves import LossCurve
from learnlaw.errors import UserError
from learnlaw.laws import MomentumLaw, load_law
from learnlaw.laws.inputs import LawInput, forward_area, law_points
from learnlaw.laws.momentum import annealing_area
from learnlaw.schedules import parse_schedule


def test_areas_by_hand():
    eta = np.array([1.0, 1.0, 0.5, 0.5, 0.25])
    assert forward_area(eta).tolist() == [0, 1, 1.5, 2, 2.25]
    # drops d_i = eta_{i-1} - eta_i = 0, .5, 0, .25; m_i = 0.5 m_{i-1} + d_i = 0, .5, .25, .375
    assert annealing_area(eta, 0.5).tolist() == [0, 0, 0.5, 0.75, 1.125]
    # lambda = 0: S2 is the current drop eta_0 - eta_s
    assert np.allclose(annealing_area(eta, 0.0), eta[0] - eta)


def test_rewarmup_makes_s2_negative():
    eta = np.array([1.0, 0.5, 1.0, 1.0])
    assert (
        annealing_area(eta, 0.0)[-1] == 0.0
        and annealing_area(eta, 0.9)[2] < annealing_area(eta, 0.9)[1]
    )


def test_warmup_counts_at_peak():
    run = LawInput(np.array([0.0, 0.5, 1.0, 1.0, 0.5]), warmup=2)
    assert run.lrs_warmup_at_peak().tolist() == [1, 1, 1, 1, 0.5]
    law = MomentumLaw(lam=0.5)
    feats = law.features(run, np.array([4]), 0.5)
    assert feats[0, 0] == 3.5 and feats[0, 1] == 0.5


def _synthetic(params, lam, schedules, steps, noise, seed=0, size=None):
    truth = MomentumLaw(lam=lam)
    truth.lam_, truth.params_ = lam, dict(zip(("L0", "A", "alpha", "C"), params))
    rng = np.random.default_rng(seed)
    return noisy_law_curves(truth, schedules, steps, noise, rng, model_size=size)


SCHEDULES = [
    "constant:peak=3e-4,warmup=500,total=20000",
    "cosine:peak=3e-4,final=3e-5,warmup=500,total=20000",
    "multistep:peak=3e-4,warmup=500,milestones=8000,values=9e-5,total=20000",
]


def test_fit_recovers_known_parameters_from_noisy_curves():
    truth = (2.6, 0.43, 0.55, 0.41)  # the paper's 594M fit
    steps = np.arange(600, 20000, 100)
    curves = _synthetic(truth, 0.999, SCHEDULES, steps, noise=5e-4)
    law = MomentumLaw().fit(curves)
    got = [law.params_[k] for k in ("L0", "A", "alpha", "C")]
    assert np.allclose(got, truth, rtol=0.08), got
    # and it predicts an unseen schedule well
    wsd = parse_schedule("wsd:peak=3e-4,final=3e-5,warmup=500,total=30000,decay_frac=0.2")
    s = np.arange(600, 30000, 200)
    true_law = MomentumLaw(lam=0.999)
    true_law.lam_, true_law.params_ = 0.999, dict(zip(("L0", "A", "alpha", "C"), truth))
    assert np.max(np.abs(law.predict(wsd, s) / true_law.predict(wsd, s) - 1)) < 2e-3


def test_lambda_auto_finds_the_generating_lambda():
    curves = _synthetic(
        (2.6, 0.43, 0.55, 0.41), 0.99, SCHEDULES, np.arange(600, 20000, 100), noise=1e-4
    )
    assert MomentumLaw(lam="auto").fit(curves).lam_ == 0.99


def test_size_extension_recovers_known_parameters():
    l0, a, alpha, b, beta, c, gamma = 1.8, 0.45, 0.6, 0.9, 0.35, 0.5, 0.15
    rng = np.random.default_rng(1)
    curves = []
    for size in (2.5e7, 1e8, 4e8):
        n = size / 1e8
        for spec in SCHEDULES[:2]:
            sched = parse_schedule(spec)
            steps = np.arange(600, 20000, 150)
            law = MomentumLaw(lam=0.999)
            f = law.features(LawInput(sched.values(20001), 500, size), steps, 0.999)
            clean = l0 + a * f[:, 0] ** -alpha + b * n**-beta - c * f[:, 1] * n**gamma
            curves.append(
                LossCurve(
                    steps,
                    clean * (1 + 3e-4 * rng.standard_normal(len(steps))),
                    sched,
                    warmup_steps=500,
                    model_size=size,
                    name=f"{size:g}-{spec[:6]}",
                )
            )
    fit = MomentumLaw(size_scaling=True).fit(curves)
    # L0 and B trade off exactly only at one size; with three sizes all seven are identified
    assert fit.params_["beta"] == pytest.approx(beta, rel=0.15)
    assert fit.params_["gamma"] == pytest.approx(gamma, abs=0.05)
    assert fit.params_["alpha"] == pytest.approx(alpha, rel=0.1)
    err = [np.mean(np.abs(fit.predict(cv) - cv.losses) / cv.losses) for cv in curves]
    assert max(err) < 1e-3


def test_fit_json_round_trip(tmp_path):
    curves = _synthetic(
        (2.6, 0.43, 0.55, 0.41), 0.999, SCHEDULES, np.arange(600, 20000, 200), noise=0
    )
    law = MomentumLaw().fit(curves)
    law.save(tmp_path / "fit.json")
    back = load_law(tmp_path / "fit.json")
    assert np.array_equal(back.predict(curves[1]), law.predict(curves[1]))


def test_fewer_points_than_parameters_is_refused():
    sched = parse_schedule("constant:peak=1e-3")
    curve = LossCurve(np.array([10, 20, 30]), np.array([3.0, 2.9, 2.8]), sched)
    with pytest.raises(
        UserError, match="3 loss points in all, but the momentum law has 4 parameters"
    ):
        MomentumLaw().fit([curve])


def test_zero_peak_lr_is_refused():
    curve = LossCurve(
        np.arange(1, 10),
        np.linspace(3, 2, 9),
        parse_schedule("multistep:peak=1,milestones=1,values=0"),
    )
    curve.schedule = curve.schedule.from_array(np.zeros(20))
    with pytest.raises(UserError, match="must be positive"):
        MomentumLaw().fit([curve])


# ---- step power law ----------------------------------------------------------------------------
def test_step_law_recovers_parameters_from_noisy_curve():
    rng = np.random.default_rng(3)
    t = np.arange(1, 4001)
    L0, B, beta = 0.05, 3.0e3, 0.35
    y = L0 + (B / t) ** beta
    noisy = y * (1 + 1e-3 * rng.standard_normal(len(t)))
    for method in ("grid", "robust"):
        fit = fit_step_law(t, noisy, method=method)
        assert fit.beta == pytest.approx(beta, rel=0.05), method
        assert fit.B == pytest.approx(B, rel=0.3), method
        assert fit.r2 > 0.99
        assert np.max(np.abs(fit.predict(t[t > fit.t0]) / y[t > fit.t0] - 1)) < 5e-3


def test_shared_l0_fit_and_closed_form_acceleration():
    t = np.arange(1, 4001)
    conv = 0.1 + (5e4 / t) ** 0.12
    opt = 0.1 + (2e3 / t) ** 0.15
    f1, f2 = fit_step_laws([(t, conv), (t, opt)], shared=True)
    assert f1.L0 == f2.L0
    ar = closed_form_acceleration(f1, f2, 4000)
    # independent check: the first step where the learned curve reaches the conventional final loss
    crossing = t[np.argmax(opt <= conv[-1])]
    assert ar == pytest.approx(4000 / crossing, rel=0.02)


def test_fit_leaves_out_points_inside_the_warmup():
    truth = MomentumLaw(lam=0.999)
    truth.lam_, truth.params_ = 0.999, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    cosine = parse_schedule("cosine:peak=3e-4,final=3e-5,warmup=500,total=8000")
    constant = parse_schedule("constant:peak=3e-4,warmup=500")
    steps = np.arange(100, 8000, 100)
    after = steps >= 500
    losses = np.full(len(steps), 3.0)  # inside the warmup: values no law describes
    losses[after] = truth.predict(cosine, steps[after])
    curves = [
        LossCurve(steps, losses, cosine, warmup_steps=500, name="c"),
        LossCurve(
            steps[after],
            truth.predict(constant, steps[after]),
            constant,
            warmup_steps=500,
            name="k",
        ),
    ]
    law = MomentumLaw().fit(curves)
    assert law.fit_info_["notes"] == [
        "c: left out 4 points at step 0 or inside the warmup (steps < 500)"
    ]
    assert law_points(curves[0]).steps.tolist() == steps[after].tolist()
    assert law.fit_info_["curves"][0]["first_step"] == 500
    assert law.params_["alpha"] == pytest.approx(0.55, rel=1e-3)


# ---- what a user passes from Python -------------------------------------------------------
def test_a_curve_built_from_arrays_is_cleaned_and_checked_as_a_read_log_is():
    steps = np.array([600, 700, 700, 800, 650, 900])
    losses = np.array([3.0, 2.9, 2.8, np.nan, 2.95, np.inf])
    curve = LossCurve(steps, losses, "cosine:peak=3e-4,total=1000,warmup=500", name="run")
    assert curve.steps.tolist() == [600, 650, 700] and curve.losses.tolist() == [3.0, 2.95, 2.8]
    assert curve.warmup_steps == 500  # the schedule's, when not given
    assert any("2 NaN or infinite" in n for n in curve.notes)
    assert any("repeated steps" in n for n in curve.notes)
    for bad, fragment in (
        ({"losses": [3.0, -1.0]}, "loss must be positive"),
        ({"steps": [1.5, 2]}, "not a non-negative integer"),
        ({"steps": [1, 2, 3]}, "equal length"),
        ({"losses": [np.nan, np.nan]}, "no finite loss"),
    ):
        args = {"steps": [1, 2], "losses": [3.0, 2.0], **bad}
        with pytest.raises(UserError, match=fragment):
            LossCurve(args["steps"], args["losses"], name="run")
    with pytest.raises(UserError, match="expected a Schedule or a spec string"):
        LossCurve([1, 2], [3.0, 2.0], schedule=3e-4)
    for bad, fragment in ((([], []), "no points"), (([1, 2], [3.0, 2.0], None, 2.5), "whole")):
        with pytest.raises(UserError, match=fragment):
            LossCurve(*bad)
    # cleaning a copy leaves the original's notes alone
    from dataclasses import replace

    copy = replace(curve, losses=np.array([3.0, np.nan, 2.8]))
    assert len(copy.notes) == len(curve.notes) + 1 and copy.steps.tolist() == [600, 700]


def test_predict_takes_specs_and_single_steps_and_says_nan_inside_the_warmup():
    from learnlaw.laws import MultiPowerLaw

    steps = np.arange(600, 20000, 200)
    curves = _synthetic((2.6, 0.43, 0.55, 0.41), 0.999, SCHEDULES[:2], steps, noise=0)
    momentum = MomentumLaw(lam=0.999).fit(curves[0])  # one curve needs no list
    assert momentum.params_ == MomentumLaw(lam=0.999).fit([curves[0]]).params_
    spec = "wsd:peak=3e-4,final=3e-5,warmup=500,total=20000,decay_frac=0.2"
    whole = momentum.predict(parse_schedule(spec), [0, 1, 499, 500, 12000])
    assert np.isnan(whole[:3]).all() and np.isfinite(whole[3:]).all()
    assert momentum.predict(spec, 12000) == whole[-1]  # a spec string; one step, one float
    assert momentum.predict(spec, 12000.0) == whole[-1]
    multipower = MultiPowerLaw().fit(curves)
    assert np.isnan(multipower.predict(spec, [1, 499])).all()  # the same rule for every law
    banded = MomentumLaw(lam=0.999, bootstrap=3).fit(curves)
    low, high = banded.predict_bands(spec, 12000)  # one step: two floats, as predict gives one
    lows, highs = banded.predict_bands(spec, [12000])
    assert (low, high) == (lows[0], highs[0]) and isinstance(low, float)
    bad_steps = (([12000.5], "whole step"), ([np.inf], "whole step"), ([-1, 600], "is negative"))
    for steps_, fragment in bad_steps:
        with pytest.raises(UserError, match=fragment):
            momentum.predict(spec, steps_)
    with pytest.raises(UserError, match=r"read a log with learnlaw\.read_curve"):
        MomentumLaw().fit(["constant.csv"])
    with pytest.raises(UserError, match=r"list\(runs\.values\(\)\)"):
        MomentumLaw().fit({"constant": curves[0]})


def test_a_fit_without_a_decaying_run_says_its_annealing_term_is_undetermined():
    steps = np.arange(600, 20000, 200)
    constant, cosine = _synthetic((2.6, 0.43, 0.55, 0.41), 0.999, SCHEDULES[:2], steps, 3e-4)
    alone = MomentumLaw(lam=0.999).fit([constant]).fit_info_["notes"]
    assert any("annealing term is not determined" in n for n in alone)
    both = MomentumLaw(lam=0.999).fit([constant, cosine]).fit_info_["notes"]
    assert not any("annealing term" in n for n in both)
