"""Choosing a law by cross-validation (``--law auto``): decay starts, folds, and picking the
law that generated noisy synthetic curves (the right answer is known)."""

import numpy as np
import pytest

from learnlaw.curves import LossCurve
from learnlaw.laws.forward_momentum import ForwardMomentumLaw
from learnlaw.laws.momentum import MomentumLaw
from learnlaw.laws.selection import decay_start, default_candidates, make_folds, select_law
from learnlaw.schedules import parse_schedule

W = 500
SPECS = {
    "constant": f"constant:peak=3e-4,warmup={W},total=20000",
    "cosine": f"cosine:peak=3e-4,final=3e-5,warmup={W},total=20000",
    "wsdcon": f"multistep:peak=3e-4,warmup={W},milestones=8000,values=9e-5,total=20000",
}
STEPS = np.arange(600, 20000, 150)


def _curves(law, names, noise=5e-4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in names:
        sched = parse_schedule(SPECS[n])
        clean = law.predict(sched, STEPS, warmup_steps=W)
        noisy = clean * (1 + noise * rng.standard_normal(len(STEPS)))
        out.append(LossCurve(STEPS, noisy, sched, warmup_steps=W, name=n))
    return out


def _momentum():
    law = MomentumLaw(lam=0.999)
    law.lam_, law.params_ = 0.999, {"L0": 2.91, "A": 0.59, "alpha": 0.77, "C": 0.47}
    return law


def _fm():
    law = ForwardMomentumLaw(size_scaling=False)
    law.params_ = {"L0": 2.66, "A": 0.60, "alpha_S": 0.45, "C": 0.045}
    return law


def test_decay_start():
    curves = _curves(_momentum(), ["constant", "cosine", "wsdcon"], noise=0)
    lrs = curves[1].lrs()
    assert decay_start(curves[0]) is None
    assert decay_start(curves[1]) == W + int(np.argmax(lrs[W:] < 0.99 * 3e-4))
    assert decay_start(curves[2]) == 8000


def test_folds_hold_out_whole_curves_when_another_curve_decays():
    folds, notes = make_folds(_curves(_momentum(), ["constant", "cosine", "wsdcon"], noise=0))
    assert [f.kind for f in folds] == ["curve"] * 3 and not notes
    assert folds[0].scored.steps.tolist() == STEPS.tolist()  # constant: every point
    assert folds[2].scored.steps.min() >= 8000  # wsdcon: from its decay on


def test_the_only_decaying_curve_is_held_out_by_its_tail():
    folds, notes = make_folds(_curves(_momentum(), ["constant", "cosine"], noise=0))
    assert [f.kind for f in folds] == ["curve", "tail"]
    tail = folds[1]
    assert tail.fit[0].name == "constant" and tail.fit[1].steps.max() < tail.cut
    assert tail.scored.steps.min() >= tail.cut and "only curve" in notes[0]


def test_no_decay_keeps_the_first_candidate():
    result = select_law(_curves(_momentum(), ["constant"], noise=0), FAST)
    assert result.choice == "momentum" and "cannot compare" in result.notes[0]


def test_default_candidates():
    curves = _curves(_momentum(), ["constant", "cosine"], noise=0)
    assert list(default_candidates(curves)) == ["momentum", "multipower", "forward-momentum"]
    assert list(default_candidates(curves, size_scaling=True)) == ["momentum", "forward-momentum"]


FAST = {
    "momentum": lambda **kw: MomentumLaw(lam=0.999, **kw),
    "forward-momentum": lambda **kw: ForwardMomentumLaw(size_scaling=False, **kw),
}


@pytest.mark.parametrize("names", [["constant", "cosine", "wsdcon"], ["constant", "cosine"]])
@pytest.mark.parametrize("generator", ["momentum", "forward-momentum"])
def test_cross_validation_picks_the_generating_law(generator, names):
    truth = _momentum() if generator == "momentum" else _fm()
    result = select_law(_curves(truth, names), FAST)
    assert result.choice == generator, result.scores
    other = next(n for n in FAST if n != generator)
    assert result.scores[other] > 1.5 * result.scores[generator]
    assert result.reason.startswith(f"chose {generator}")
    assert isinstance(result.law, type(FAST[generator]()))
