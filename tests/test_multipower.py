"""The Multi-Power Law: formula against a direct double sum, recovery of known parameters,
schedule optimisation, law comparison, and bootstrap bands."""

import json

import numpy as np
import pytest
import torch

from conftest import noisy_law_curves, run_cli
from learnlaw.curves import write_curve_csv
from learnlaw.errors import UserError
from learnlaw.laws import MomentumLaw, MultiPowerLaw
from learnlaw.laws.inputs import LawInput
from learnlaw.laws.multipower import PARAMS, drop_terms, law_value
from learnlaw.planning import optimize_schedule, sweep_wsd
from learnlaw.schedules import parse_schedule

TRUE = dict(zip(PARAMS, (2.5, 0.6, 0.45, 500.0, 2.0, 0.55, 0.6)))


def direct_double_sum(p, lrs, warmup, step):
    """SPEC B2 written as plain loops (the independent reference)."""
    eta = lrs[warmup:]
    t = step - warmup
    s1 = sum(eta[1 : t + 1]) + 0.5 * eta[0] * warmup
    ld = 0.0
    for k in range(1, t + 1):
        s_k = sum(eta[k : t + 1])
        x = eta[k] ** (-p["gamma"]) * s_k
        ld += (eta[k - 1] - eta[k]) * (1 - (p["C"] * x + 1) ** (-p["beta"]))
    return p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["B"] * ld


@pytest.mark.parametrize(
    "spec",
    [
        "cosine:peak=3e-4,final=3e-5,warmup=20,total=150",
        "multistep:peak=3e-4,warmup=10,milestones=60/90,values=1e-4/3e-5,total=150",
        "cyclic:peak=3e-4,final=3e-5,warmup=10,cycle=50,rewarmup=10,total=150",
    ],
)
def test_formula_equals_the_direct_double_sum(spec):
    sched = parse_schedule(spec)
    lrs = sched.values(151)
    run = LawInput(lrs, sched.warmup)
    steps = np.array([sched.warmup + 1, 50, 100, 150])
    p = torch.tensor([TRUE[k] for k in PARAMS], dtype=torch.float64)
    got = law_value(p, drop_terms(run, steps)).numpy()
    expected = [direct_double_sum(TRUE, lrs, sched.warmup, s) for s in steps]
    assert np.allclose(got, expected, rtol=1e-12)


def test_differentiable_final_loss_equals_the_direct_double_sum():
    # final_loss_torch is the formula the schedule optimiser differentiates: a second copy
    sched = parse_schedule("cosine:peak=3e-4,final=3e-5,warmup=20,total=150")
    lrs = sched.values(151)
    law = MultiPowerLaw(warmup_drops=False)  # the formula as written (the warmup's rises: below)
    law.params_ = dict(TRUE)
    eta = torch.tensor(lrs[sched.warmup :], dtype=torch.float64)
    got = law.final_loss_torch(eta, sched.warmup).item()
    assert got == pytest.approx(direct_double_sum(TRUE, lrs, sched.warmup, 150), rel=1e-12)


def test_blocked_drop_sum_is_close_to_exact():
    sched = parse_schedule("cosine:peak=3e-4,final=3e-5,warmup=500,total=24000")
    run = LawInput(sched.values(24001), 500)
    steps = np.arange(600, 24001, 300)
    p = torch.tensor([TRUE[k] for k in PARAMS], dtype=torch.float64)
    exact = law_value(p, drop_terms(run, steps)).numpy()
    blocked_terms = drop_terms(run, steps, block_growth=0.05)
    blocked = law_value(p, blocked_terms).numpy()
    assert np.max(np.abs(blocked / exact - 1)) < 2e-5
    assert len(blocked_terms.point) < len(drop_terms(run, steps).point) / 20


def synthetic_curves(specs, noise, seed=0, every=50):
    law = MultiPowerLaw()
    law.params_ = dict(TRUE)
    rng = np.random.default_rng(seed)

    def after_warmup(sched):
        return np.arange(sched.warmup + every, sched.total + 1, every)

    return law, noisy_law_curves(law, specs, after_warmup, noise, rng)


FIT_SPECS = [
    "constant:peak=3e-4,warmup=300,total=6000",
    "cosine:peak=3e-4,final=3e-5,warmup=300,total=6000",
    "multistep:peak=3e-4,warmup=300,milestones=3000,values=9e-5,total=5000",
]


def test_fitter_recovers_predictions_from_noisy_synthetic_curves():
    truth, curves = synthetic_curves(FIT_SPECS, noise=3e-4)
    fit = MultiPowerLaw(adam_steps=800).fit(curves)
    unseen = parse_schedule(
        "wsd:peak=3e-4,final=3e-5,warmup=300,total=9000,decay_frac=0.2,shape=linear"
    )
    steps = np.arange(400, 9001, 100)
    err = np.abs(fit.predict(unseen, steps) / truth.predict(unseen, steps) - 1)
    assert err.max() < 2e-3
    # the parameters that the data pin down come back
    assert fit.params_["L0"] == pytest.approx(TRUE["L0"], rel=0.05)
    assert fit.params_["alpha"] == pytest.approx(TRUE["alpha"], rel=0.15)


def test_schedule_optimizer_stays_in_range_and_beats_the_sweep():
    law = MultiPowerLaw()
    law.params_ = dict(TRUE)
    law.fit_info_ = {}
    result = optimize_schedule(law, 4000, 3e-4, warmup=200, iterations=600)
    assert np.all(result.lrs >= 0) and np.all(result.lrs <= 3e-4 + 1e-18)
    assert np.all(np.diff(result.lrs[200:]) <= 1e-18)  # non-increasing after warmup
    sweep = sweep_wsd(law, 4000, 3e-4, final=0.0, warmup=200)
    assert result.final_loss <= sweep.best.final_loss + 1e-9
    # the written schedule holds every LR the loss at step 4000 depends on: the differentiable
    # double sum the optimiser minimised, evaluated on the written LRs, gives the reported loss
    assert len(result.lrs) == 4001
    direct = law.final_loss_torch(torch.tensor(result.lrs[200:], dtype=torch.float64), 200)
    assert float(direct) == pytest.approx(result.final_loss, rel=1e-9)


def test_momentum_law_refuses_to_design_a_schedule():
    law = MomentumLaw()
    law.params_, law.lam_ = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 0.5}, 0.999
    with pytest.raises(UserError, match="degenerate"):
        optimize_schedule(law, 1000, 1e-3)


def test_bootstrap_band_covers_the_truth_at_about_its_nominal_rate():
    truth = MomentumLaw(lam=0.999)
    truth.lam_, truth.params_ = 0.999, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    specs = [
        "constant:peak=3e-4,warmup=500,total=12000",
        "cosine:peak=3e-4,final=3e-5,warmup=500,total=12000",
    ]
    target = parse_schedule("wsd:peak=3e-4,final=3e-5,warmup=500,total=16000,decay_frac=0.2")
    true_final = truth.predict(target, np.array([16000]))[0]
    covered, trials, widths, finals = 0, 24, [], []
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        curves = noisy_law_curves(truth, specs, np.arange(600, 12000, 500), 2e-3, rng)
        # a warm start from the truth skips the global search (not what this test is about)
        fit = MomentumLaw(lam=0.999, bootstrap=30, seed=seed).fit(curves, start=truth.params_)
        lo, hi = fit.predict_bands(target, np.array([16000]), level=0.9)
        covered += int(lo[0] <= true_final <= hi[0])
        widths.append(hi[0] - lo[0])
        finals.append(fit.predict(target, np.array([16000]))[0])
    assert covered / trials >= 0.7
    # nor wider than it needs to be: against the real spread of the fitted prediction over the
    # independent noise draws (a 90% normal interval is 3.29 standard deviations wide)
    assert 0.5 < np.mean(widths) / (3.29 * np.std(finals)) < 2.0


def test_law_compare_and_multipower_cli(tmp_path, capsys):
    _, curves = synthetic_curves(
        [*FIT_SPECS, "wsd:peak=3e-4,final=3e-5,warmup=300,total=6000,decay_frac=0.3"],
        noise=2e-4,
        every=100,
    )
    files = []
    for c in curves:
        files.append(write_curve_csv(c, tmp_path / f"{c.name}.csv"))
    code, out, err = run_cli(
        [
            "law",
            "compare",
            *files,
            "--fit-on",
            "constant,cosine,multistep",
            "--warmup-steps",
            300,
            "--json",
            "--plot",
            tmp_path / "cmp.png",
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["curves"][0]["curve"] == "wsd"
    assert (
        result["curves"][0]["multipower"]["pred_error"] < 2e-3
    )  # data made by the Multi-Power Law
    assert (tmp_path / "cmp.png").exists()
    assert any(f["last_step"] == 6000 for f in result["families"])

    fit = tmp_path / "mpl.json"
    code, out, err = run_cli(
        ["law", "fit", *files[:3], "--law", "multipower", "--warmup-steps", 300, "-o", fit], capsys
    )
    assert code == 0, err
    assert json.loads(fit.read_text())["law"] == "multipower"
    code, out, err = run_cli(
        [
            "schedule",
            "optimize",
            fit,
            "--total",
            6000,
            "--peak",
            3e-4,
            "--iterations",
            200,
            "-o",
            tmp_path / "opt.csv",
        ],
        capsys,
    )
    assert code == 0, err
    table = np.loadtxt(tmp_path / "opt.csv", delimiter=",", skiprows=1)
    lrs = table[:, 1]  # steps 0..6000: the loss at step 6000 uses the LR of step 6000
    assert table[-1, 0] == 6000 and len(lrs) == 6001
    assert lrs.max() <= 3e-4 and lrs.min() >= 0
    for option, value in (("--peak", 0), ("--peak", "inf"), ("--warmup", -5), ("--iterations", 0)):
        args = ["schedule", "optimize", fit, "--total", 6000, "--peak", 3e-4, "-o", tmp_path / "x"]
        code, out, err = run_cli([*args, option, value], capsys)
        assert code == 2 and err.count("\n") == 1 and f"{option} {value}:" in err, err
    code, out, err = run_cli(
        ["law", "predict", fit, "--schedule", "constant:peak=3e-4,warmup=300,total=60000"], capsys
    )
    assert code == 0 and "beyond the longest fitted run" in err
