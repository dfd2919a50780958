"""Learning-Law analysis: every metric against a brute-force computation; the report renders."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import run_cli
from learnlaw.analysis.learning_law import (
    Thresholds,
    learning_law_summary,
    sim_statistic,
    trace_policy,
)
from learnlaw.analysis.steplaw import largest_rise
from learnlaw.policy import load_config, optimize
from learnlaw.policy.engine import Policy
from learnlaw.policy.speedup import acceleration_ratio, auc_ratio, compression_ratio
from learnlaw.tasks.perceptron import PerceptronConfig, PerceptronTask


@pytest.mark.parametrize("analytic", [True, False])
def test_contributions_equal_per_example_autograd(analytic):
    task = PerceptronTask(
        PerceptronConfig(
            dim=6, n_train=10, n_desired=8, n_test=4, init="normal", analytic=analytic
        ),
        seed=2,
    )
    theta = task.theta0 + 0.3
    ct = task.contributions(theta)
    th = theta.clone().requires_grad_(True)
    (g_dsr,) = torch.autograd.grad(task.losses(th, "objective").mean(), th)
    for n in range(task.n_train):
        (g_n,) = torch.autograd.grad(task.losses(th, "train")[n], th)
        assert float(ct[n]) == pytest.approx(float(g_dsr @ g_n), rel=1e-10, abs=1e-14)


def test_sim_by_hand():
    gamma = np.array([0.5, 0.5, 0.0])
    ct = np.array([1.0, 3.0, -5.0])
    in_use = gamma > 0
    # weighted mean 2.0; std over the two in use (n-1): sqrt(2)
    assert sim_statistic(gamma, ct, in_use) == pytest.approx(2.0 / np.sqrt(2.0))
    assert np.isnan(sim_statistic(gamma, ct, np.array([True, False, False])))


def test_trace_properties_by_brute_force():
    task = PerceptronTask(
        PerceptronConfig(dim=4, n_train=12, n_desired=8, n_test=4, init="normal", label_noise=0.25),
        seed=5,
    )
    assert task.corrupted.sum() == 3
    steps = 6
    rng = np.random.default_rng(0)
    w = rng.random((steps, 12)) + 0.2
    w[:, :4] = 0.0  # the policy drops four examples at every step
    w /= w.sum(1, keepdims=True)
    policy = Policy(torch.as_tensor(w), 1)
    th = Thresholds(zero_weight=0.01, fitted_loss=0.3, small_weight=0.2, tau=0.1)
    trace = trace_policy(task, policy, 0.5, steps, stride=2, snapshot_steps=(2,), thresholds=th)
    assert trace.steps.tolist() == [0, 2, 4]
    theta = task.theta0.clone()
    pooled = {"tau": [0, 0], "flipped": [0, 0]}  # (examples, of which zero-weighted), by hand
    for t in range(steps):
        if t % 2 == 0:
            k = t // 2
            ct = task.contributions(theta).numpy()
            loss = task.losses(theta, "train").numpy()
            zero, harmful, fitted = w[t] < 0.01 / 12, ct <= 0, loss < 0.3
            assert trace.zero_weights[k] == 4
            assert trace.sim[k] == pytest.approx(np.sum(w[t] * ct) / np.std(ct[~zero], ddof=1))
            # the weighted contribution is minus the rate of change of the desired loss along
            # the policy's step (central finite difference)
            d = task.train_gradient(theta, torch.as_tensor(w[t]))
            eps = 1e-6
            rate = (  # d L(theta - s d) / ds at s = 0
                float(task.losses(theta - eps * d, "objective").mean())
                - float(task.losses(theta + eps * d, "objective").mean())
            ) / (2 * eps)
            assert trace.weighted_ct[k] == pytest.approx(-rate, rel=1e-6, abs=1e-10)
            if harmful.any():
                assert trace.prop1_share[k] == pytest.approx((harmful & zero).sum() / harmful.sum())
            unfitted = harmful & ~fitted
            assert trace.prop1_unfitted_counts[k].tolist() == [
                unfitted.sum(),
                (unfitted & zero).sum(),
            ]
            # clearly harmful, by a loop over the examples: CT below -tau x std of all CTs
            mean = sum(ct) / len(ct)
            std = (sum((c - mean) ** 2 for c in ct) / (len(ct) - 1)) ** 0.5
            clearly = [n for n in range(12) if ct[n] < -0.1 * std]
            assert trace.prop1_tau_counts[k].tolist() == [
                len(clearly),
                sum(1 for n in clearly if w[t, n] < 0.01 / 12),
            ]
            flipped = [n for n in range(12) if task.corrupted[n]]
            assert trace.prop1_corrupted_counts[k].tolist() == [
                3,
                sum(1 for n in flipped if w[t, n] < 0.01 / 12),
            ]
            for key, group in (("tau", clearly), ("flipped", flipped)):
                pooled[key][0] += len(group)
                pooled[key][1] += sum(1 for n in group if w[t, n] < 0.01 / 12)
            small = w[t] < 0.2 * w[t].max()
            if fitted.any():
                assert trace.prop2_share[k] == pytest.approx((fitted & small).sum() / fitted.sum())
            if t == 2:
                assert np.allclose(trace.snapshots[2]["ct"], ct)
        theta = theta - 0.5 * task.train_gradient(theta, torch.as_tensor(w[t]))
    summary = learning_law_summary(trace, trace, 12, 4, th)["property1"]
    assert summary["below_tau"]["share_pooled"] == pytest.approx(
        pooled["tau"][1] / pooled["tau"][0]
    )
    assert summary["corrupted"]["share_pooled"] == pytest.approx(pooled["flipped"][1] / 9)
    assert summary["zeroing_steps"] == 3 and summary["corrupted"]["examples"] == 3


def test_speedup_metrics_by_hand():
    conv = np.array([9.0, 5.0, 4.0, 3.0, 2.0])
    fast = np.array([9.0, 3.0, 2.0, 1.5, 1.0])
    assert acceleration_ratio(conv, fast) == pytest.approx(4 / 2)  # fast reaches 2.0 at t=2
    assert acceleration_ratio(fast, conv) == pytest.approx(2 / 4)  # the slower one: t'/T
    assert auc_ratio(conv, fast) == pytest.approx(14 / 7.5)
    assert compression_ratio(conv, 2, 2) == pytest.approx(4 * 1 / 14)
    assert compression_ratio(conv, 8, np.e) == pytest.approx(4 * np.log(8) / 14)


# a small perceptron policy run (pgd steps, so that some weights reach zero)
SMALL_RUN = {
    "perceptron.dim": 8,
    "perceptron.n_train": 64,
    "perceptron.n_desired": 64,
    "perceptron.n_test": 32,
    "perceptron.train_scale_is": "std",
    "train.steps": 60,
    "train.lr": 0.5,
    "outer.epochs": 6,
    "outer.method": "pgd",
    "outer.lr": "auto",
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = load_config(None, "perceptron", {**SMALL_RUN, "outer.max_change": 2.0})
    optimize(config=cfg, out=out, quiet=True)
    return out


def test_analyze_writes_json_and_report(finished_run, capsys):
    code, _out, err = run_cli(["analyze", finished_run], capsys)
    assert code == 0, err
    a = json.loads((finished_run / "analysis.json").read_text())
    for key in (
        "sim",
        "property1",
        "property2",
        "property3",
        "step_law",
        "compression_ratio",
        "auc",
        "acceleration_ratio",
        "thresholds",
        "paper",
    ):
        assert key in a
    assert set(a["compression_ratio"]) >= {"log2", "ln"}
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert a["acceleration_ratio"] == pytest.approx(metrics["acceleration_ratio"], rel=1e-6)
    assert a["step_law"]["acceleration_measured"] == a["acceleration_ratio"]
    page = (finished_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and 'src="http' not in page


def test_report_renders_in_headless_chromium(finished_run, tmp_path, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    if not (finished_run / "report.html").exists():
        run_cli(["analyze", finished_run], capsys)
    # the page's own script reports how many images decoded, in the title of the dumped DOM
    probe = tmp_path / "probe.html"
    page = (finished_run / "report.html").read_text()
    probe.write_text(
        page.replace(
            "</body>",
            """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.title = 'IMAGES ' + ok + '/' + imgs.length;
});</script></body>""",
        )
    )
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "<title>IMAGES 5/5</title>" in result.stdout, result.stderr[-2000:]


def test_bad_run_folders(tmp_path, finished_run, capsys):
    def one_line(args, fragment):
        code, _, err = run_cli(args, capsys)
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and fragment in lines[0], err

    one_line(["analyze", tmp_path / "missing"], "no such run folder")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(finished_run / "config.json", partial / "config.json")
    one_line(["analyze", partial], "no policy.npz (deleted, and there is no checkpoint")
    other = tmp_path / "other"
    shutil.copytree(finished_run, other, ignore=shutil.ignore_patterns("analysis*", "report.html"))
    cfg = json.loads((other / "config.json").read_text())
    cfg["format_version"] = 7
    (other / "config.json").write_text(json.dumps(cfg))
    one_line(["analyze", other], "run format 'learnlaw.run' version 7")
    one_line(["analyze", finished_run, "--stride", "0"], "--stride 0")


def test_moving_average_against_a_loop():
    from learnlaw.analysis.steplaw import moving_average

    rng = np.random.default_rng(7)
    y = rng.random(23)
    for window in (1, 2, 5, 8, 30):
        half = window // 2
        by_hand = []
        for t in range(23):
            h = min(half, t, 22 - t)  # centred: the window shrinks at both ends
            by_hand.append(sum(y[t - h : t + h + 1]) / (2 * h + 1))
        assert np.allclose(moving_average(y, window), by_hand)


def test_largest_rise_against_all_pairs():
    rng = np.random.default_rng(3)
    for _ in range(20):
        curve = np.cumsum(rng.normal(-0.1, 0.3, 40)) + 10
        start = int(rng.integers(0, 10))
        pairs = [
            (curve[b] - curve[a], a, b) for a in range(start, 40) for b in range(a, 40)
        ]  # every (earlier, later) pair from start on
        got = largest_rise(curve, start)
        assert got["rise"] == pytest.approx(max(p[0] for p in pairs))
        assert curve[got["to_step"]] - curve[got["from_step"]] == pytest.approx(got["rise"])
        assert start <= got["from_step"] <= got["to_step"]
    assert largest_rise(np.array([3.0, 2.0, 1.0]))["rise"] == 0.0


def test_analyze_the_lowest_objective_policy(finished_run, capsys):
    code, out, err = run_cli(["analyze", finished_run, "--policy", "objective"], capsys)
    assert code == 0, err
    assert "analysis-objective.json" in out and "report-objective.html" in out
    a = json.loads((finished_run / "analysis-objective.json").read_text())
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert a["policy"]["which"] == "objective"
    assert a["policy"]["epoch"] == metrics["lowest_objective_epoch"]
    assert a["policy"]["epoch"] == int(np.argmin(metrics["objective_per_epoch"]))
    page = (finished_run / "report-objective.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "smallest objective" in page
    missing = finished_run.parent / "no-objective-policy"
    shutil.copytree(finished_run, missing, ignore=shutil.ignore_patterns("policy_objective.npz"))
    code, _, err = run_cli(["analyze", missing, "--policy", "objective"], capsys)
    assert (
        code == 2
        and "no policy_objective.npz (the run is unfinished or the file was deleted" in err
    )
    (missing / "checkpoint.npz").unlink()
    code, _, err = run_cli(["analyze", missing, "--policy", "objective"], capsys)
    assert code == 2 and "analyse the kept policy with --policy kept" in err
    # the checkpoint rewrites a deleted output: resume with the folder's own configuration
    shutil.rmtree(missing)
    shutil.copytree(finished_run, missing, ignore=shutil.ignore_patterns("policy_objective.npz"))
    code, _, err = run_cli(["policy", "optimize", "--resume", "--quiet", "--out", missing], capsys)
    assert code == 0, err
    assert (missing / "policy_objective.npz").exists()


def test_note_points_to_the_optimum_when_the_kept_policy_is_not_it():
    from learnlaw.analysis.report import analysis_notes

    base = {
        "step_law": {},
        "policy": {"which": "kept", "kept_epoch": 3, "lowest_objective_epoch": 6},
    }
    assert any("--policy objective" in n for n in analysis_notes(base))
    same = {**base, "policy": {**base["policy"], "lowest_objective_epoch": 3}}
    assert not analysis_notes(same)
    other = {**base, "policy": {**base["policy"], "which": "objective"}}
    assert not analysis_notes(other)


def test_note_names_only_rises_above_rounding():
    # perceptron-noisy's uniform curve converges to 0.439 and jitters by 5.55e-17: the note said
    # "rises by 5.55e-17" as if that were why the step law does not fit it
    from learnlaw.analysis.analyze import step_law_summary
    from learnlaw.analysis.steplaw import StepLawFit

    t = np.arange(1, 201)
    learned = 0.05 + (2.0 / t) ** 0.5
    bad_fit = StepLawFit(L0=0.05, B=1e-25, beta=0.01, t0=0.0, r2=0.33, points=200)
    good_fit = StepLawFit(L0=0.05, B=2.0, beta=0.5, t0=0.0, r2=1.0, points=200)
    for jitter, named in ((5.551115123125783e-17, False), (1e-3, True)):
        flat = np.full(200, 0.4394151645872939)
        flat[150] += jitter
        # brute force: the largest rise over all (earlier, later) pairs
        rise = max(flat[b] - flat[a] for a in range(1, 200) for b in range(a, 200))
        note = step_law_summary(flat, learned, bad_fit, good_fit, 200)["note"]
        assert rise == pytest.approx(jitter, rel=1e-6)
        assert ("rises by" in note) is named
        assert note.startswith("the uniform test curve does not follow")


def test_property1_on_corrupted_examples_is_read_against_its_threshold():
    """With flipped labels, analysis.json carries the 95% threshold and whether the share
    meets it, and the report prints the share to two decimals (94.96% is not 95.0%)."""
    from learnlaw.analysis.analyze import P1_CORRUPTED, analyze
    from learnlaw.analysis.report import headline_rows

    cfg = load_config(None, "perceptron", {**SMALL_RUN, "perceptron.label_noise": 0.25})
    data = analyze(optimize(config=cfg, quiet=True)).data
    corrupted = data["property1"]["corrupted"]
    assert corrupted["threshold"] == P1_CORRUPTED == 0.95
    assert corrupted["meets_threshold"] == (corrupted["share_pooled"] >= 0.95)
    for share, shown in (
        (0.949996, "95.00% (not met)"),
        (0.9496, "94.96% (not met)"),
        (0.95, "95.00% (met)"),
    ):
        corrupted.update(share_pooled=share, meets_threshold=share >= P1_CORRUPTED)
        row = next(r for r in headline_rows(data) if r[0].startswith("Property 1: corrupted"))
        assert row[1:] == (shown, "threshold 95%")
