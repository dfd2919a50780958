"""The metrics against hand-computed values."""

import numpy as np
import pytest

from learnlaw.laws.metrics import curve_metrics


def test_metrics_by_hand():
    real = np.array([2.0, 4.0, 5.0])
    pred = np.array([2.2, 3.6, 5.0])
    m = curve_metrics(pred, real)
    assert m["pred_error"] == pytest.approx((0.1 + 0.1 + 0) / 3)
    assert m["worst_error"] == pytest.approx(0.1)
    assert m["rmse"] == pytest.approx(np.sqrt((0.04 + 0.16) / 3))
    assert m["mae"] == pytest.approx(0.6 / 3)
    ss_tot = (2 - 11 / 3) ** 2 + (4 - 11 / 3) ** 2 + (5 - 11 / 3) ** 2
    assert m["r2"] == pytest.approx(1 - 0.2 / ss_tot)
