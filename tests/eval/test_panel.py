"""Panels, the baselines and per-horizon calibration by rolling origins (twinjax.eval.panel,
twinjax.eval.conformal) on generated panels with known answers."""

import numpy as np
import pandas as pd
import pytest

from twinjax.eval.conformal import (
    auto_forecast,
    elapsed_factor,
    horizon_quantiles,
    rolling,
    subject_scale,
)
from twinjax.eval.panel import (
    drift,
    future_times,
    holdout,
    last_value,
    mixed_model,
    panel_from_long,
    pooled_ar,
    seasonal,
)
from twinjax.eval.score import score


def _long(values, times=None):
    n, t = values.shape
    times = np.tile(np.arange(t, dtype=float), (n, 1)) if times is None else times
    return pd.DataFrame(
        {"s": np.repeat([f"s{i:03d}" for i in range(n)], t), "t": times.ravel(),
         "y": values.ravel()}
    )  # fmt: skip


def _random_walks(n, t, *, seed=0, sd=None):
    rng = np.random.default_rng(seed)
    sd = np.ones(n) if sd is None else sd
    return np.cumsum(rng.normal(size=(n, t)) * sd[:, None], axis=1)


def test_panel_from_long_pads_sorts_and_refuses_bad_rows():
    df = pd.DataFrame({"s": ["b", "a", "a", "b", "a"], "t": [2.0, 5.0, 1.0, 1.0, 3.0],
                       "y": [20.0, 3.0, 1.0, 10.0, 2.0]})  # fmt: skip
    p = panel_from_long(df, subject="s", time="t", value="y")
    assert p.subject.tolist() == ["a", "b"] and p.n.tolist() == [3, 2]
    assert p.y[0].tolist() == [1.0, 2.0, 3.0] and p.y[1, :2].tolist() == [10.0, 20.0]
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        panel_from_long(df.assign(y=[1.0, np.nan, 1, 1, 1]), subject="s", time="t", value="y")
    with pytest.raises(ValueError, match="two visits"):
        panel_from_long(df.assign(t=[2.0, 1, 1, 1, 3]), subject="s", time="t", value="y")
    with pytest.raises(ValueError, match="columns"):
        panel_from_long(df, subject="id", time="t", value="y")


def test_holdout_keeps_last_visits_and_one_for_short_series():
    values = np.arange(24.0).reshape(3, 8)
    df = _long(values)
    df = df[~((df.s == "s002") & (df.t >= 4))]  # s002 has 4 visits: holds out 1
    ho = holdout(panel_from_long(df, subject="s", time="t", value="y"), h=2)
    assert ho.train.n.tolist() == [6, 6, 3]
    assert ho.mask.tolist() == [[True, True], [True, True], [True, False]]
    assert ho.y[0].tolist() == [6.0, 7.0] and ho.y[2, 0] == 19.0
    with pytest.raises(ValueError, match="fewer than 2 visits"):
        holdout(panel_from_long(df[df.t < 1], subject="s", time="t", value="y"))


def test_baselines_on_exact_lines():
    """On noise-free lines y = a_i + b_i t at irregular times, drift and the mixed model are
    exact, LOCF is the last value, seasonal naive repeats the period."""
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 10, size=(6, 7)), axis=1)
    a, b = rng.normal(size=6), rng.normal(size=6)
    p = panel_from_long(_long(a[:, None] + b[:, None] * times, times), subject="s", time="t",
                        value="y", period=3)  # fmt: skip
    ho = holdout(p, h=2)
    truth = a[:, None] + b[:, None] * ho.time
    np.testing.assert_allclose(drift(ho.train, ho.time), truth, atol=1e-9)
    point, sd = mixed_model(ho.train, ho.time)
    np.testing.assert_allclose(point, truth, atol=1e-3)
    assert sd.shape == truth.shape and (sd > 0).all() and (sd < 1e-2).all()  # no noise
    assert (last_value(ho.train, ho.time) == ho.train.y[:, 4:5]).all()
    np.testing.assert_allclose(seasonal(ho.train, ho.time), ho.train.y[:, [2, 3]])
    nxt = future_times(p, 2)
    np.testing.assert_allclose(nxt[:, 0] - p.time[:, -1], np.median(np.diff(p.time), 1))


def test_rolling_origins_never_see_later_visits():
    values = _random_walks(5, 10)
    p = panel_from_long(_long(values), subject="s", time="t", value="y")
    seen = []

    def spy(train, times):
        seen.append(train.n.copy())
        return last_value(train, times)

    roll = rolling(spy, p, horizon=2, origins=3)
    assert [s.tolist() for s in seen] == [[9] * 5, [8] * 5, [7] * 5]
    # origin j=1 forecasts visit 9 only; origin 2 visits 8 and 9
    assert roll.mask[0].tolist() == [[True, False]] * 5
    np.testing.assert_allclose(roll.point[1, :, 0], values[:, 7])
    np.testing.assert_allclose(roll.y[1], values[:, 8:10])


def test_per_horizon_calibration_covers_random_walks():
    """Random walks with subject-specific noise (sd 0.5-3): the h-step error sd grows as
    sqrt(h) and with the subject's sd. The calibrated LOCF's 90% intervals cover 0.87-0.93 at
    h = 1, 2, 3 on 400 subjects' held-out visits (sd of a coverage over 400 points: 0.015)."""
    n = 400
    sd = np.random.default_rng(3).uniform(0.5, 3.0, n)
    values = _random_walks(n, 15, seed=4, sd=sd)
    p = panel_from_long(_long(values), subject="s", time="t", value="y")
    ho = holdout(p, h=3)
    fcs, choice = auto_forecast({"last": last_value}, ho.train, ho.time, y=ho.y, mask=ho.mask,
                                origins=3)  # fmt: skip
    s = score(fcs["last"])
    for k, per in enumerate(s["per_horizon"]):
        assert 0.87 <= per["coverage_90"] <= 0.93, (k, per)
    widths = [per["width_90"] for per in s["per_horizon"]]
    assert widths[2] / widths[0] == pytest.approx(np.sqrt(3), rel=0.15)
    # subject scales track the true sd (shrinkage towards the median pulls the extremes in)
    assert np.corrcoef(subject_scale(ho.train), sd)[0, 1] > 0.8
    # one factor fitted one step ahead would under-cover at h = 3: the per-horizon width matters
    q = horizon_quantiles([e for e in rolling(last_value, ho.train, horizon=1).errors()], 3)
    assert q[94, 2] / q[94, 0] == pytest.approx(np.sqrt(3), rel=0.01)  # borrowed, rescaled


def test_calibration_follows_the_time_elapsed_on_irregular_visits():
    """Random walks in continuous time (variance sd^2 per unit time, sd 0.5-3 by subject) seen
    at times 0..8, 8.1 and 9 (a second visit 0.1 after the first, as nlme's BodyWeight weighs
    its rats on days 43 and 44), then held out at 11 and 13: two typical gaps apart. The errors
    at the rolling origins are divided by sqrt(elapsed / (h * median gap)), so the held-out
    90% intervals, sqrt(2) wider than one-gap errors, cover 0.87-0.93 at h = 1, 2 on 400
    subjects (sd of a coverage over 400 points: 0.015). Without the factor they would be
    built for one gap and cover about 0.75 (P(|Z| < 1.645 / sqrt 2))."""
    n = 400
    rng = np.random.default_rng(7)
    sd = rng.uniform(0.5, 3.0, n)
    times = np.array([*range(9), 8.1, 9.0, 11.0, 13.0])
    steps = rng.normal(size=(n, len(times))) * np.sqrt(np.diff(times, prepend=-1.0))[None]
    values = np.cumsum(steps * sd[:, None], axis=1)
    p = panel_from_long(_long(values, np.tile(times, (n, 1))), subject="s", time="t", value="y")
    ho = holdout(p, h=2)
    np.testing.assert_allclose(elapsed_factor(ho.train, ho.time), np.sqrt(2.0), rtol=1e-12)
    assert np.all(elapsed_factor(ho.train, future_times(ho.train, 3)) == 1.0)
    fcs, _ = auto_forecast({"last": last_value}, ho.train, ho.time, y=ho.y, mask=ho.mask)
    for k, per in enumerate(score(fcs["last"])["per_horizon"]):
        assert 0.87 <= per["coverage_90"] <= 0.93, (k, per)


def test_auto_picks_the_right_family_without_seeing_the_held_out_visits():
    """Lines with small noise: drift wins at the rolling origins and so is chosen; the choice
    and every forecast stay the same when the held-out values are replaced by garbage."""
    rng = np.random.default_rng(5)
    t = np.arange(12.0)
    values = (
        rng.normal(size=(60, 1))
        + rng.normal(2, 1, size=(60, 1)) * t
        + rng.normal(scale=0.3, size=(60, 12))
    )
    p = panel_from_long(_long(values), subject="s", time="t", value="y")
    ho = holdout(p, h=2)
    methods = {"last": last_value, "drift": drift}
    fcs, choice = auto_forecast(methods, ho.train, ho.time, y=ho.y, mask=ho.mask)
    assert choice.name.split("+")[0] == "drift"
    assert choice.validation_crps["drift"] < choice.validation_crps["last"]
    again, _ = auto_forecast(methods, ho.train, ho.time, y=ho.y * 0 + 1e6, mask=ho.mask)
    np.testing.assert_array_equal(again["auto"].quantiles, fcs["auto"].quantiles)
    assert score(fcs["auto"])["pooled"]["crps"] < score(fcs["last"])["pooled"]["crps"]


def test_calibrated_forecasts_are_centred_on_the_forecasters_point():
    """Lines with a common slope of 2 per visit: LOCF lags by 2h, and its rolling-origin errors
    all say so. The calibration sets the spread, not the location: the calibrated median is the
    last value itself (an uncentred calibration would shift it by the origins' median error,
    +2h here); the mean is the quantiles' average, so RMSE and CRPS judge one forecast; the
    90% interval is as wide as the origins' errors spread (noise sd 0.3 at the cuts: a width
    under 2, against the 2h lag)."""
    rng = np.random.default_rng(6)
    t = np.arange(12.0)
    values = rng.normal(size=(60, 1)) + 2.0 * t + rng.normal(scale=0.3, size=(60, 12))
    p = panel_from_long(_long(values), subject="s", time="t", value="y")
    ho = holdout(p, h=2)
    fcs, _ = auto_forecast({"last": last_value}, ho.train, ho.time, y=ho.y, mask=ho.mask)
    fc = fcs["last"]
    raw = last_value(ho.train, ho.time)
    np.testing.assert_allclose(fc.quantile([0.5])[0], raw, atol=1e-9)
    np.testing.assert_allclose(fc.mean, fc.quantiles.mean(axis=0), rtol=1e-12)
    uncentred = horizon_quantiles(rolling(last_value, ho.train, horizon=2).errors(), 2,
                                  centre=False)  # fmt: skip
    assert np.all(uncentred[49] > 0.5)  # scaled errors: the lag over the change scale
    assert score(fc)["pooled"]["width_90"] < 2.0


def test_pooled_ar_learns_a_drift_and_a_persistence_shared_by_the_subjects():
    """Random walks whose changes follow one AR(1) around a common drift (changes
    0.5 + 0.6 (previous change - 0.5) + unit noise), on subject scales 1-10 and levels that
    differ: the pooled model, learnt across subjects, forecasts 1 and 2 visits ahead within 5%
    of the true model's RMSE (its conditional mean; 400 subjects x 20 visits, so the fitted
    coefficients are off by a few hundredths), where the last value is 20-40% worse."""
    rng = np.random.default_rng(0)
    n, t = 400, 22
    scale = rng.uniform(1, 10, n)[:, None]
    d = np.zeros((n, t))
    for j in range(1, t):
        d[:, j] = 0.5 + 0.6 * (d[:, j - 1] - 0.5) + rng.normal(size=n)
    y = scale * np.cumsum(d, 1) + rng.normal(0, 50, (n, 1))
    panel = panel_from_long(_long(y[:, :20]), subject="s", time="t", value="y")
    times = np.tile(np.arange(20, 22, dtype=float), (n, 1))
    last = d[:, 19] - 0.5
    mean1 = 0.5 + 0.6 * last
    true = y[:, 19:20] + scale * np.stack([mean1, mean1 + 0.5 + 0.6 * (mean1 - 0.5)], 1)
    rmse = lambda f: np.sqrt(np.mean(((f - y[:, 20:]) / scale) ** 2, axis=0))
    best, pooled, locf = rmse(true), rmse(pooled_ar(panel, times)), rmse(last_value(panel, times))
    assert np.all(pooled <= 1.05 * best), (pooled, best)
    assert np.all(locf >= 1.2 * best), (locf, best)
