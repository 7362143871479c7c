"""Calibrated forecasts at every horizon: ``bundle.forecast``'s 90% intervals cover 90% of
held-out values at h = 1..6, they scale with the saved per-horizon factors (old bundles: the
one-step factor at every h, with a warning), and step 1 agrees with ``one_step``."""

import logging

import jax
import numpy as np
import pytest
from ar1 import ar1_cohort, truncated

from twinjax import bundle as tb
from twinjax import pipeline
from twinjax.bundle.use import horizon_factors

H = 6
N, T = 300, 100  # val steps 60..79, test steps 80..99
ORIGINS = range(80, 95, 2)  # forecasts of steps o .. o + 5, all in the test period


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_cfg):
    cohort, _ = ar1_cohort(0, N, T)
    cfg = tiny_cfg(steps=150, personal_steps=30, lr=1e-2, calibration_horizon=H)
    cfg.data.val_fraction = cfg.data.test_fraction = 0.2
    out = tmp_path_factory.mktemp("run")
    fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, out)
    return cohort, fit, pipeline.save_model(fit, cohort, cfg, out / "model")


def _forecast(bundle, cohort, origin, *, horizon=H, n_samples=200, key=0):
    table = tb.forecast(
        bundle, truncated(cohort, origin), horizon=horizon, key=jax.random.key(key),
        n_samples=n_samples,
    )  # fmt: skip
    shape = (cohort.n_individuals, horizon)  # rows: subject, then step (one variable)
    return {c: table[c].to_numpy().reshape(shape) for c in ("mean", "q05", "q50", "q95")}


@pytest.mark.integration
def test_90_percent_intervals_cover_90_percent_at_every_horizon(run):
    """Coverage of held-out test values in [0.87, 0.93] at each h. The points: 300 individuals
    x 8 origins. Origins 2 steps apart share innovations, so count about one independent point
    per individual and 3 origins: sd of a coverage ~ sqrt(0.09 / 900) = 0.01; the calibration
    factor, fitted on ~3,000-6,000 validation values, is off by ~2%, moving coverage by ~0.007.
    0.03 is ~2.5 such sds."""
    cohort, _, bundle = run
    y = cohort.values[..., 0]
    inside = []
    for o in ORIGINS:
        fc = _forecast(bundle, cohort, o, key=o)
        truth = y[:, o : o + H]
        inside.append((fc["q05"] <= truth) & (truth <= fc["q95"]))
    coverage = np.concatenate(inside).mean(0)
    assert np.all((coverage > 0.87) & (coverage < 0.93)), coverage


@pytest.mark.integration
def test_forecast_applies_the_saved_factor_of_each_horizon(run, caplog):
    """Widths of the intervals scale by the saved factor of their horizon (the same draws:
    quantiles are affine-equivariant, so the ratio is exact up to float rounding); beyond the
    calibrated horizon the last factor; a bundle without per-horizon factors (saved before them)
    uses its one-step factor at every horizon and says so."""
    cohort, _, bundle = run
    few = cohort.take(np.arange(20))
    ones = {k: np.ones_like(v) for k, v in bundle.calibration.items()}
    steps = ones | {
        "population_h": np.arange(1.0, H + 1)[:, None] * ones["population_h"],
        "personal_h": np.arange(1.0, H + 1)[None, :, None] * ones["personal_h"],
    }
    width = lambda cal, **kw: (lambda f: f["q95"] - f["q05"])(
        _forecast(bundle._replace(calibration=cal), few, 90, **kw)
    )
    base = width(ones, horizon=H + 2)
    ratio = width(steps, horizon=H + 2) / base
    np.testing.assert_allclose(ratio, np.broadcast_to([1, 2, 3, 4, 5, 6, 6, 6], ratio.shape),
                               rtol=1e-4)  # fmt: skip
    old = {"population": 2 * ones["population"], "personal": 2 * ones["personal"]}
    with caplog.at_level(logging.WARNING, logger="twinjax.bundle.use"):
        np.testing.assert_allclose(width(old, horizon=H + 2) / base, 2.0, rtol=1e-4)
    assert "without per-horizon calibration" in caplog.text


def test_forecast_and_one_step_agree_on_a_one_step_interval(run):
    """Step 1 of ``forecast`` draws from the one-step Gaussian scaled by the horizon-1 factor,
    which ``one_step`` reports analytically: q05/q95 = mean -/+ 1.6449 scale. With S = 4,000
    draws the sample 5% quantile has sd sqrt(0.05 * 0.95 / S) / phi(1.6449) * scale =
    0.0334 scale (0.0158 scale for the mean); 5 sds bound 600 such comparisons. The saved factors
    are set to 1.7 so that a forecast ignoring them misses by 1.15 scale."""
    cohort, fit, bundle = run
    bundle = bundle._replace(calibration={k: 1.7 * v for k, v in bundle.calibration.items()})
    origin = 85
    fc = _forecast(bundle, cohort, origin, horizon=1, n_samples=4000)
    segment = np.zeros((N, T), bool)
    segment[:, origin] = True
    one = tb.one_step(bundle, cohort, segment)
    mean, scale = one.mean[:, 0, 0], one.scale[:, 0, 0]
    factor = horizon_factors(bundle, [bundle.index(s) for s in cohort.subject_ids], 1)
    np.testing.assert_allclose(factor[:, 0, 0], 1.7 * fit.calibration["personal"][:, 0], rtol=1e-6)
    np.testing.assert_array_less(np.abs(fc["mean"][:, 0] - mean), 5 * 0.0158 * scale)
    for q, z in (("q05", -1.6449), ("q95", 1.6449)):
        np.testing.assert_array_less(np.abs(fc[q][:, 0] - (mean + z * scale)), 5 * 0.0334 * scale)
