"""twinjax.eval.score against scoringrules (CRPS in three forms, pinball) and closed forms."""

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr

from twinjax.eval.score import (
    LEVELS,
    Forecast,
    coverage_curve,
    crps_draws,
    crps_gaussian,
    pinball,
    pit,
    pit_ks,
    score,
)

RNG = np.random.default_rng(0)


def test_crps_gaussian_matches_scoringrules():
    mean, scale, y = RNG.normal(size=50), RNG.uniform(0.2, 3, 50), RNG.normal(size=50) * 2
    np.testing.assert_allclose(
        crps_gaussian(mean, scale, y), sr.crps_normal(y, mean, scale, backend="numpy"), rtol=1e-10
    )


def test_crps_draws_matches_scoringrules_plugin_estimator():
    draws, y = RNG.normal(size=(37, 4, 3)), RNG.normal(size=(4, 3))
    ours = crps_draws(draws, y)
    theirs = sr.crps_ensemble(y, np.moveaxis(draws, 0, -1), estimator="qd", backend="numpy")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    # the brute-force double sum over pairs: E|X - y| - E|X - X'| / 2
    brute = np.abs(draws - y).mean(0) - 0.5 * np.abs(draws[:, None] - draws[None]).mean((0, 1))
    np.testing.assert_allclose(ours, brute, rtol=1e-10)


def test_quantile_crps_and_pinball_match_scoringrules():
    q = np.sort(RNG.normal(size=(len(LEVELS), 6)), axis=0)
    y = RNG.normal(size=6)
    fc = Forecast(mean=q[9][:, None], quantiles=q[:, :, None], levels=LEVELS, y=y[:, None],
                  mask=np.ones((6, 1), bool))  # fmt: skip
    theirs = sr.crps_quantile(y, q.T, np.asarray(LEVELS), backend="numpy")
    np.testing.assert_allclose(score(fc)["pooled"]["crps"], theirs.mean(), rtol=1e-10)
    qs = np.stack([sr.quantile_score(y, q[k], LEVELS[k], backend="numpy") for k in range(19)])
    np.testing.assert_allclose(pinball(q, LEVELS, y), qs, rtol=1e-10)


def test_three_forms_of_one_gaussian_agree():
    """One N(1, 2^2) given as mean/scale, as 4,000 draws and as 99 quantiles scores the same
    (tolerances: the Monte Carlo error of 4,000 draws, and the quantile grid's truncation)."""
    n = 400
    y = 1 + 2 * RNG.normal(size=(n, 1))
    base = dict(mean=np.ones((n, 1)), y=y, mask=np.ones((n, 1), bool))
    levels = tuple(np.round(np.arange(0.01, 0.995, 0.01), 2))
    gauss = score(Forecast(scale=np.full((n, 1), 2.0), **base))["pooled"]
    draws = score(Forecast(draws=1 + 2 * RNG.normal(size=(4000, n, 1)), **base))["pooled"]
    quant = Forecast(quantiles=Forecast(scale=np.full((n, 1), 2.0), **base).quantile(levels),
                     levels=levels, **base)  # fmt: skip
    quant = score(quant)["pooled"]
    for other in (draws, quant):
        assert other["crps"] == pytest.approx(gauss["crps"], rel=0.02)
        assert other["coverage_90"] == pytest.approx(gauss["coverage_90"], abs=0.02)
        assert other["width_90"] == pytest.approx(2 * 1.6449 * 2, rel=0.03)


def test_score_masks_groups_horizons_and_calibration():
    # its own generator: pytest-randomly orders the file's tests anew each run, so the module's
    # RNG reached this test in another state and, once, masked all of an individual checked below
    rng = np.random.default_rng(5)
    n, h = 300, 3
    y = rng.normal(size=(n, h))
    mask = rng.uniform(size=(n, h)) < 0.8
    y_bad = np.where(mask, y, 1e9)  # masked garbage must change nothing
    fc = Forecast(mean=np.zeros((n, h)), scale=np.ones((n, h)), y=y_bad, mask=mask)
    s = score(fc, groups={"half": np.arange(n) < n // 2})
    assert s["pooled"]["n"] == mask.sum()
    assert s["pooled"]["rmse"] == pytest.approx(np.sqrt(np.mean(y[mask] ** 2)))
    assert [p["n"] for p in s["per_horizon"]] == mask.sum(0).tolist()
    assert s["per_individual"]["n"].sum() == mask.sum()
    # each individual's row is the pooled score of that individual alone
    for i in (0, 7, n - 1):
        alone = score(fc.take([i]))["pooled"]
        row = s["per_individual"].iloc[i]
        for k in ("n", "rmse", "mae", "crps", "pinball", "coverage_90", "width_50"):
            assert row[k] == pytest.approx(alone[k], rel=1e-12), (i, k)
    assert sum(g["n"] for g in s["groups"]["half"].values()) == mask.sum()
    # a calibrated forecaster: 90% coverage near 0.9 (900 points: sd 0.01), flat PIT
    assert s["pooled"]["coverage_90"] == pytest.approx(0.9, abs=0.04)
    assert s["pit"]["var"] == pytest.approx(1 / 12, abs=0.01)
    # KS distance of 900 uniform PITs: 0.065 is its 99.9th percentile (1.95 / sqrt(900))
    assert s["pit"]["ks"] < 0.065
    # too narrow: coverage falls, PIT spreads to the edges
    narrow = score(Forecast(mean=fc.mean, scale=fc.scale / 3, y=y_bad, mask=mask))
    assert narrow["pooled"]["coverage_90"] < 0.6 and narrow["pit"]["var"] > 1 / 12 + 0.03
    assert narrow["pit"]["ks"] > 0.2
    empty = score(Forecast(mean=fc.mean, scale=fc.scale, y=y, mask=np.zeros_like(mask)))
    assert empty["pooled"]["n"] == 0 and empty["pooled"]["crps"] is None


def test_pit_of_quantiles_and_draws():
    y = np.array([[0.0], [10.0]])
    q = np.array([[[-1.0], [-1.0]], [[1.0], [1.0]]])
    fc = Forecast(mean=np.zeros((2, 1)), quantiles=q, levels=(0.25, 0.75), y=y,
                  mask=np.ones((2, 1), bool))  # fmt: skip
    assert pit(fc)[:, 0].tolist() == [0.5, 1.0]
    draws = Forecast(mean=np.zeros((2, 1)), draws=np.arange(4.0)[:, None, None] * np.ones((4, 2, 1)),
                     y=np.array([[1.5], [-1.0]]), mask=np.ones((2, 1), bool))  # fmt: skip
    assert pit(draws)[:, 0].tolist() == [0.5, 0.0]
    tied = Forecast(mean=np.zeros((1, 1)), draws=np.array([0.0, 1.0, 1.0, 2.0])[:, None, None],
                    y=np.ones((1, 1)), mask=np.ones((1, 1), bool))  # fmt: skip
    assert pit(tied)[0, 0] == 0.5  # mid-rank: one draw below, two tied, one above


def test_pit_ks_is_the_largest_gap_to_the_uniform_cdf():
    assert pit_ks([0.5]) == 0.5
    assert pit_ks(np.arange(0.5, 10) / 10) == pytest.approx(0.05)
    assert pit_ks(np.full(10, 0.0)) == 1.0 and pit_ks([]) is None


def test_coverage_curve_at_each_level_of_draws():
    """Draws 0, 1, ..., 9 and y = 4 at two points, one masked out: every central interval from
    30% up contains 4 (np.quantile's linear interpolation: the 30% interval is [3.15, 5.85]);
    the 10% one, [4.05, 4.95], does not."""
    draws = np.zeros((10, 1, 2)) + np.arange(10.0)[:, None, None]
    fc = Forecast(mean=np.full((1, 2), 4.5), draws=draws, y=np.array([[4.0, 100.0]]),
                  mask=np.array([[True, False]]))  # fmt: skip
    assert coverage_curve(fc, (0.1, 0.3, 0.9)) == {0.1: 0.0, 0.3: 1.0, 0.9: 1.0}
    assert score(fc)["pooled"]["coverage_90"] == 1.0 and score(fc)["pooled"]["n"] == 1


def test_forecast_refuses_ambiguous_or_misshapen_input():
    base = dict(mean=np.zeros((2, 3)), y=np.zeros((2, 3)), mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="exactly one"):
        Forecast(**base)
    with pytest.raises(ValueError, match="exactly one"):
        Forecast(scale=np.ones((2, 3)), draws=np.ones((4, 2, 3)), **base)
    with pytest.raises((ValueError, TypeError)):  # jaxtyping's check in tests, ours elsewhere
        Forecast(scale=np.ones((3, 2)), **base)
    with pytest.raises(ValueError, match="levels"):
        Forecast(quantiles=np.ones((2, 2, 3)), levels=(0.9, 0.1), **base)


@pytest.mark.parametrize("kind", ["scale", "draws", "quantiles"])
def test_scores_in_blocks_of_individuals_equal_all_at_once(monkeypatch, kind):
    # 600 individuals: 3 blocks of 256 (the last one short) against one block of all
    from twinjax.eval import score as module

    rng = np.random.default_rng(1)
    n, h = 600, 3
    y, mean = rng.normal(size=(n, h)), rng.normal(size=(n, h))
    spread = {
        "scale": dict(scale=np.exp(rng.normal(size=(n, h)))),
        "draws": dict(draws=mean + rng.normal(size=(20, n, h))),
        "quantiles": dict(quantiles=np.sort(rng.normal(size=(9, n, h)), 0),
                          levels=tuple(np.linspace(0.1, 0.9, 9).round(2).tolist())),
    }[kind]  # fmt: skip
    fc = Forecast(mean=mean, y=y, mask=rng.random((n, h)) < 0.8, **spread)
    blocks = module.score(fc)
    monkeypatch.setattr(module, "_ROWS", n)
    whole = module.score(fc)
    for key in ("pooled", "pit"):
        assert blocks[key].keys() == whole[key].keys()
        for k, v in whole[key].items():
            np.testing.assert_allclose(blocks[key][k], v, rtol=1e-12, err_msg=f"{key}.{k}")
    pd.testing.assert_frame_equal(blocks["per_individual"], whole["per_individual"])
