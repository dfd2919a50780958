"""Choosing a schedule from Python (learnlaw.planning): what the functions take from the user,
what they refuse, and the defaults they share with the command line."""

import numpy as np
import pytest

from conftest import LAW_SPECS, true_momentum_law
from learnlaw.errors import UserError
from learnlaw.laws import MultiPowerLaw
from learnlaw.laws.multipower import PARAMS
from learnlaw.planning import compare_schedules, optimize_schedule, predict_schedule, sweep_wsd
from learnlaw.schedules import Schedule


def fitted_with_warmup(law, warmup: int):
    """``law`` as if fitted on two runs that both had ``warmup`` steps of warmup."""
    law.fit_info_ = {"curves": [{"warmup_steps": warmup}, {"warmup_steps": warmup}]}
    return law


@pytest.mark.parametrize(
    "fractions, fragment",
    [
        ([0.3, 1.5, -1], r"fractions: every fraction must be in \(0, 1\], got 1\.5"),
        ([0.3, float("nan")], r"every fraction must be in \(0, 1\], got nan"),
        ([0.0], r"got 0$"),
        ([], "expected a list of decay fractions"),
        (["a"], "expected a list of decay fractions"),
    ],
)
def test_sweep_refuses_bad_fractions_instead_of_skipping_them(fractions, fragment):
    with pytest.raises(UserError, match=fragment):
        sweep_wsd(true_momentum_law(), total=2000, peak=3e-3, final=3e-4, fractions=fractions)


def test_sweep_and_optimize_default_to_the_fits_warmup():
    law = fitted_with_warmup(true_momentum_law(), 500)
    default = sweep_wsd(law, 12000, 3e-4, final=3e-5, fractions=[0.1, 0.3])
    given = sweep_wsd(law, 12000, 3e-4, final=3e-5, fractions=[0.1, 0.3], warmup=500)
    assert default.warmup == 500 and all(s.warmup == 500 for s in default.schedules)
    np.testing.assert_array_equal(default.final_losses, given.final_losses)
    assert sweep_wsd(law, 12000, 3e-4, fractions=[0.3], warmup=0).warmup == 0
    with pytest.raises(
        UserError, match=r"total 400 \(--total\): must exceed the warmup \(500 steps; --warmup\)"
    ):
        sweep_wsd(law, 400, 3e-4)
    # curves fitted with different warmups name no default: none is assumed
    law.fit_info_["curves"][1]["warmup_steps"] = 100
    assert sweep_wsd(law, 12000, 3e-4, fractions=[0.3]).warmup == 0

    mpl = MultiPowerLaw()
    mpl.params_ = dict(zip(PARAMS, (2.5, 0.6, 0.45, 500.0, 2.0, 0.55, 0.6)))
    fitted_with_warmup(mpl, 50)
    assert optimize_schedule(mpl, 400, 3e-4, iterations=2).warmup == 50


def test_spec_strings_are_schedules():
    law = true_momentum_law()
    spec = LAW_SPECS["wsd"]
    by_spec = predict_schedule(law, spec)
    by_object = predict_schedule(law, Schedule.parse(spec))
    np.testing.assert_array_equal(by_spec.losses, by_object.losses)
    assert by_spec.schedule.spec() == Schedule.parse(spec).spec()
    comparison = compare_schedules(law, [LAW_SPECS["cosine"], Schedule.parse(spec)])
    assert [p.final_loss for p in comparison.predictions] == [
        predict_schedule(law, LAW_SPECS["cosine"]).final_loss,
        by_object.final_loss,
    ]
    with pytest.raises(UserError, match=r"schedules\[1\]: expected a Schedule or a spec string"):
        compare_schedules(law, [spec, 3e-4])
    with pytest.raises(UserError, match="expected a list of schedules, got a single one"):
        compare_schedules(law, spec)
    with pytest.raises(UserError, match="unknown kind 'zigzag'"):
        predict_schedule(law, "zigzag:peak=1,total=10")


def test_compare_wants_one_label_per_schedule():
    law = true_momentum_law()
    cosine = Schedule.cosine(3e-4, 12000, warmup=500)
    with pytest.raises(UserError, match=r"labels: expected one per schedule \(1\), got 2"):
        compare_schedules(law, [cosine], labels=["a", "b"])
    with pytest.raises(UserError, match="got 0"):
        compare_schedules(law, [cosine], labels=[])
    assert compare_schedules(law, [cosine], labels=["a"]).best.label == "a"
