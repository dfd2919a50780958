"""Every schedule family against its formula, written out independently here."""

import math

import numpy as np
import pytest

from learnlaw.errors import UserError
from learnlaw.schedules import Schedule, parse_schedule


def test_constant_with_warmup():
    s = parse_schedule("constant:peak=0.01,warmup=4")
    assert np.allclose(s.values(7), [0, 0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_cosine_matches_formula_used_by_the_shared_data():
    s = parse_schedule("cosine:peak=3e-4,final=3e-5,warmup=2160,total=24000")
    for step in (2160, 5000, 23920, 24000, 30000):
        p = min((step - 2160) / (24000 - 2160), 1.0)
        expected = 3e-5 + 0.5 * (3e-4 - 3e-5) * (1 + math.cos(math.pi * p))
        assert s.lr(step) == pytest.approx(expected, rel=1e-12)


def test_linear_decay():
    s = parse_schedule("linear:peak=1,final=0.2,total=10")
    assert np.allclose(s.values(11), [1 - 0.08 * i for i in range(11)])


@pytest.mark.parametrize(
    "shape,formula",
    [
        ("linear", lambda p: 3e-4 + (3e-5 - 3e-4) * p),
        ("cosine", lambda p: 3e-5 + 0.5 * (3e-4 - 3e-5) * (1 + math.cos(math.pi * p))),
        ("geometric", lambda p: 3e-4 ** (1 - p) * 3e-5**p),
        ("1-sqrt", lambda p: 3e-5 + (3e-4 - 3e-5) * (1 - math.sqrt(p))),
    ],
)
def test_wsd_decay_shapes(shape, formula):
    s = parse_schedule(
        f"wsd:peak=3e-4,final=3e-5,warmup=2160,total=24000,decay_start=20000,shape={shape}"
    )
    assert s.lr(2160) == 3e-4 and s.lr(19999) == 3e-4
    for step in (20000, 21000, 22500, 23999, 24000):
        assert s.lr(step) == pytest.approx(formula((step - 20000) / 4000), rel=1e-12)
    assert s.lr(1080) == pytest.approx(1.5e-4)


def test_wsd_geometric_equals_the_shared_data_formula():
    s = parse_schedule("wsd:peak=3e-4,final=3e-5,total=24000,decay_start=20000,shape=geometric")
    for step in (20096, 21120, 23936):
        assert s.lr(step) == pytest.approx(
            3e-4 ** ((24000 - step) / 4000) * 3e-5 ** ((step - 20000) / 4000)
        )


def test_wsd_decay_frac_sets_the_start():
    a = parse_schedule("wsd:peak=1,total=1000,decay_frac=0.2")
    b = parse_schedule("wsd:peak=1,total=1000,decay_start=800")
    assert np.array_equal(a.values(1000), b.values(1000))


def test_multistep_values_and_gamma():
    s = parse_schedule("multistep:peak=3e-4,warmup=2160,milestones=8000,values=9e-5,total=16000")
    assert s.lr(7999) == 3e-4 and s.lr(8000) == 9e-5 and s.lr(15999) == 9e-5
    g = parse_schedule("multistep:peak=1,milestones=10/20,gamma=0.1")
    assert np.allclose(g.lr(np.array([0, 9, 10, 19, 20, 100])), [1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cyclic_rewarms_and_decays():
    s = parse_schedule(
        "cyclic:peak=1,final=0,warmup=10,cycle=100,rewarmup=20,total=300,shape=linear"
    )
    assert s.lr(5) == pytest.approx(0.5)
    assert s.lr(10) == 1 and s.lr(60) == pytest.approx(0.5)  # first cycle: decay over 100 steps
    assert s.lr(110) == pytest.approx(0.0)  # second cycle starts at final ...
    assert s.lr(120) == pytest.approx(0.5)  # ... re-warms over 20 steps ...
    assert s.lr(130) == pytest.approx(1.0)
    assert s.lr(170) == pytest.approx(0.5)  # ... and decays over the remaining 80
    assert s.lr(300) == 0


def test_points_interpolate_and_hold_first():
    s = Schedule.from_points(np.array([100, 200]), np.array([1.0, 3.0]))
    assert np.allclose(s.lr(np.array([0, 100, 150, 200, 500])), [1, 1, 2, 3, 3])
    a = Schedule.from_array(np.array([0.1, 0.2, 0.3]))
    assert np.allclose(a.values(5), [0.1, 0.2, 0.3, 0.3, 0.3])


def test_spec_round_trip():
    spec = "wsd:peak=0.0003,total=24000,final=3e-05,warmup=2160,decay_start=20000,shape=geometric"
    s = parse_schedule(spec)
    assert np.array_equal(parse_schedule(s.spec()).values(24001), s.values(24001))
    assert Schedule.from_json(s.to_json()).spec() == s.spec()


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("triangle:peak=1", "unknown kind 'triangle'"),
        ("cosine:peak=1,total=10,floor=0", "unknown key 'floor'"),
        ("cosine:peak=1", "missing total"),
        ("cosine:peak=abc,total=10", "peak='abc' is not a number"),
        ("wsd:peak=1,total=10", "exactly one of decay_start and decay_frac"),
        ("wsd:peak=1,total=10,decay_frac=0.2,shape=zigzag", "shape='zigzag'"),
        ("wsd:peak=1,total=10,decay_frac=0.2,shape=geometric", "needs final > 0"),
        ("constant:peak=-1", "peak must be positive"),
        ("cosine:peak=1,total=5,warmup=10", "must exceed warmup"),
        ("multistep:peak=1,milestones=5/3,gamma=0.5", "milestones must increase"),
        ("cosine:peak=1,total=1.5", "total='1.5' is not an integer"),
    ],
)
def test_bad_specs_name_the_problem(spec, fragment):
    with pytest.raises(UserError, match=None) as err:
        parse_schedule(spec)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_csv_schedule_keeps_its_warmup(tmp_path):
    path = tmp_path / "s.csv"
    steps = np.arange(0, 1000)
    lrs = parse_schedule("cosine:peak=1e-3,warmup=100,total=1000").values(1000)
    path.write_text("step,lr\n" + "".join(f"{s},{float(lr)!r}\n" for s, lr in zip(steps, lrs)))
    assert parse_schedule(f"csv:path={path}").warmup == 100  # detected
    assert parse_schedule(f"csv:path={path},warmup=50").warmup == 50  # given
    comma = tmp_path / "lr, run 2.csv"  # a path with a comma and a space
    comma.write_text(path.read_text())
    for spec, warmup in (
        (f"csv:path={comma}", 100),
        (f"csv:path={comma}, warmup=7", 7),
        (f"csv:warmup=7,path={comma}", 7),
        (f"csv:path={comma},", 100),
    ):
        parsed = parse_schedule(spec)
        assert parsed.warmup == warmup and np.allclose(parsed.values(1000), lrs)
    for typo in (f"csv:file={path}", f"csv:path={path},warmpu=5"):
        with pytest.raises(UserError, match="expected csv:path=FILE"):
            parse_schedule(typo)


def test_specs_keep_full_precision_and_refuse_non_finite_values():
    s = parse_schedule("cosine:peak=1.23456789e-3,total=100")
    assert parse_schedule(s.spec()).params["peak"] == 1.23456789e-3
    for bad in ("cosine:peak=1,total=inf", "cosine:peak=1,final=nan,total=10"):
        with pytest.raises(UserError, match="is not"):
            parse_schedule(bad)


def test_a_long_schedules_prediction_gives_its_lr_at_the_predicted_spacing():
    """A 10M-step schedule is predicted every k-th step; its LR curve follows the same spacing
    (not 10M values), ends at the last step, and the final LR is the schedule's."""
    from conftest import true_momentum_law
    from learnlaw.planning import MAX_PREDICTED, predict_schedule

    total = 10_000_000
    sched = Schedule.wsd(3e-4, total, final=3e-5, warmup=1000, decay_frac=0.2)
    pred = predict_schedule(true_momentum_law(), sched)
    assert len(pred.steps) <= MAX_PREDICTED + 1 and pred.every > 1
    assert pred.lr_steps[0] == 0 and pred.lr_steps[-1] == total
    assert np.all(np.diff(pred.lr_steps[:-1]) == pred.every)
    assert len(pred.lrs) == len(pred.lr_steps) <= total // pred.every + 2
    # the WSD shape at the sampled steps: warmup from 0, the plateau, the decay to the final LR
    assert pred.lrs[0] == 0 and pred.lrs.max() == pytest.approx(3e-4)
    assert pred.lrs[pred.lr_steps == 7_000_000 // pred.every * pred.every] == pytest.approx(3e-4)
    assert pred.final_lr == pytest.approx(3e-5) == pred.lrs[-1]
