"""The auto twin: choice, skill table, save/load round trip, panels from gridded cohorts."""

import numpy as np
import pandas as pd
import pytest

from twinjax.data import read_cohort
from twinjax.eval.auto import fit_auto, load_auto, panel_from_cohort, save_auto, skill_table
from twinjax.eval.panel import drift, last_value, panel_from_long

FAST = ("last", "drift", "mixed")  # statsforecast's ETS/ARIMA are exercised by bench_forecast


def _trend_panel(n=40, t=10, seed=0):
    rng = np.random.default_rng(seed)
    time = np.arange(t, dtype=float)
    y = rng.normal(size=(n, 1)) + rng.normal(1, 0.5, (n, 1)) * time + rng.normal(0, 0.2, (n, t))
    df = pd.DataFrame({"s": np.repeat(np.arange(n), t), "t": np.tile(time, n), "y": y.ravel()})
    return panel_from_long(df, subject="s", time="t", value="y")


def test_skill_table_names_the_best_baseline_and_ratios():
    table, fcs, choice = skill_table(_trend_panel(), h=2, families=FAST)
    assert {"last", "drift", "mixed", "auto"} <= set(table.index)
    best = table.attrs["best_baseline"]
    assert table.loc[best, "crps_vs_best_baseline"] == pytest.approx(1.0)
    assert (table.loc[["last", "drift", "mixed"], "crps_vs_best_baseline"] >= 1 - 1e-12).all()
    assert table.loc["last", "crps"] > table.loc["drift", "crps"]  # a trend: LOCF lags
    assert fcs["auto"].shape == (40, 2)


def test_save_load_forecast_round_trip(tmp_path):
    panel = _trend_panel()
    # (last and drift: errors scaled by the subject's change scale, the same at every horizon)
    twin, choice = fit_auto(panel, horizon=3, families=("last", "drift"))
    save_auto(twin, tmp_path / "model")
    back = load_auto(tmp_path)
    assert back.members == twin.members and back.horizon == 3
    np.testing.assert_array_equal(back.quantiles, twin.quantiles)
    a, b = twin.forecast(panel), back.forecast(panel)
    np.testing.assert_allclose(a.quantiles, b.quantiles)
    assert a.shape == (40, 3) and (np.diff(a.quantile([0.05, 0.5, 0.95]), axis=0) > 0).all()
    # 5 steps: the two beyond the calibrated horizon widen as sqrt(h / 3)
    lo, hi = twin.forecast(panel, panel.time[:, -1:] + np.arange(1, 6)[None]).interval(0.9)
    w = (hi - lo).mean(0)
    assert w[4] / w[2] == pytest.approx(np.sqrt(5 / 3), rel=0.05)
    (tmp_path / "model" / "auto.json").write_text('{"format": 1, "fam')
    with pytest.raises(ValueError, match="auto.json"):
        load_auto(tmp_path)


def test_extra_forecasters_take_part_and_are_needed_to_forecast(tmp_path):
    panel = _trend_panel()
    oracle = lambda train, times: drift(train, times)  # another name for drift
    twin, choice = fit_auto(panel, horizon=2, families=FAST, extra={"oracle": oracle})
    assert "oracle" in choice.validation_crps
    if "oracle" in twin.members:
        with pytest.raises(ValueError, match="oracle"):
            twin.forecast(panel)
        assert twin.forecast(panel, extra={"oracle": oracle}).shape == (40, 2)


def test_panel_from_cohort_matches_the_long_table(tmp_path):
    rows = [("a", 0.0, 1.0), ("a", 2.0, 3.0), ("a", 3.0, 4.0), ("b", 1.0, 10.0),
            ("b", 4.0, 12.0)]  # fmt: skip
    df = pd.DataFrame(rows, columns=["subject_id", "time", "value"]).assign(variable="w")
    df.to_csv(tmp_path / "obs.csv", index=False)
    cohort = read_cohort(tmp_path / "obs.csv", step=1.0)
    panel = panel_from_cohort(cohort, "w")
    direct = panel_from_long(df, subject="subject_id", time="time", value="value")
    assert panel.n.tolist() == direct.n.tolist() == [3, 2]
    for a, b in ((panel.time, direct.time), (panel.y, direct.y)):
        np.testing.assert_allclose(a[panel.mask], b[direct.mask])
    np.testing.assert_allclose(last_value(panel, np.zeros((2, 1)))[:, 0], [4.0, 12.0])


def _growth_panel(shape: str, n=20, seed=0):
    """``slowing``: growth curves that level off (drift carries the early growth on, so its
    forecasts run high at every origin); ``walk``: random walks (no lean)."""
    rng = np.random.default_rng(seed)
    t = np.arange(8.0)
    if shape == "slowing":
        y = rng.uniform(50, 70, (n, 1)) * (1 - np.exp(-t / 3.0)) + rng.normal(0, 0.3, (n, len(t)))
    else:
        y = np.cumsum(rng.normal(0, 1, (n, len(t))), axis=1)
    frame = pd.DataFrame({"s": np.repeat(np.arange(n), len(t)), "t": np.tile(t, n),
                          "y": y.ravel()})  # fmt: skip
    return panel_from_long(frame, subject="s", time="t", value="y")


def test_a_lean_at_the_rolling_origins_is_reported():
    from twinjax.eval.auto import bias_warning

    twin, choice = fit_auto(_growth_panel("slowing"), horizon=2, families=("last", "drift"))
    bias = twin.choice["origin_bias"]
    assert bias == choice.bias and bias["subjects"] == 20
    assert bias["below"] >= 18 and bias["p_value"] < 1e-3 and bias["median"] < 0
    words = bias_warning(bias)
    assert len(words) == 1 and words[0].startswith("**The forecasts may run high:**")
    assert f"for {bias['below']} of 20 subjects" in words[0]

    _, walk = fit_auto(_growth_panel("walk"), horizon=2, families=("last", "drift"))
    assert walk.bias["p_value"] > 0.01 and bias_warning(walk.bias) == []
    assert bias_warning(None) == []
