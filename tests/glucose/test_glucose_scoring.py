import numpy as np
import pytest

from twinjax.glucose import scoring


def test_origins_leave_room_for_the_longest_horizon():
    at = scoring.origins(481, step=3.0, train_days=0.5, every=30.0)  # one day of 3-min cells
    assert at[0] == 240 and (np.diff(at) == 10).all()
    assert at[-1] + 60 / 3 <= 480 < at[-1] + 10 + 60 / 3
    with pytest.raises(ValueError, match="no held-out origins"):
        scoring.origins(100, step=3.0, train_days=1.0)


def test_last_value_scores_a_ramp_exactly():
    # glucose rising 1 mg/dL per cell: the last value is off by exactly h / step, and the
    # training-day changes (all equal to that) give a zero-width interval that misses the target
    cgm = np.tile(100.0 + np.arange(481.0), (2, 1))
    at = scoring.origins(481, step=3.0, train_days=0.5)
    fc = scoring.last_value(cgm, at, step=3.0, train_days=0.5)
    s = scoring.score(fc, scoring.targets(cgm, at, step=3.0))
    np.testing.assert_allclose(s["rmse"], [[10.0, 20.0]] * 2)
    np.testing.assert_allclose(fc.lo - fc.mean, [[[10.0, 20.0]] * len(at)] * 2)
    assert (s["coverage90"] == 1.0).all()  # lo == hi == target: inside (closed interval)
    g = scoring.by_group(s, ["child", "adult"])
    assert g["all"]["rmse_60min"] == 20.0 and set(g) == {"adult", "child", "all"}
