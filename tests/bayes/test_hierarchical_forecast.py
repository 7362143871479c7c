"""experiment=hierarchical forecasts past each subject's last visit, and held-out scoring.

The reference is numpyro's ``Predictive`` on the same posterior draws: the test refits the model
through the Python API with the app's NUTS key and settings (same model, data and key: the same
draws, as in the tiny runs of tests/experiments), so the two forecasts differ only by their
residual noise draws. With D = 2,000 draws of residual SD ~1 and a predictive SD ~1.2 at the
forecast times, the Monte Carlo SE of a difference of means is ~sigma sqrt(2 / D) = 0.03 and of
a 5%/95% quantile ~sqrt(2 q (1 - q) / D) / density = 0.02 / 0.085 = 0.25, i.e. ~1% of values
near 25: 2% is about 4 SE (and the mean is also held to 5 of its own SE). A forecast without
residual error would move those quantiles by ~0.8 (~3%).
"""

import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from numpyro.infer import Predictive

from twinjax.bayes import (
    HierarchicalSpec,
    Nuts,
    TwinData,
    flatten_chains,
    hierarchical_model,
    hold_out_last,
    longitudinal_data,
    mean_model,
    run_nuts,
)
from twinjax.config import Config, DataConfig
from twinjax.pipeline import ConfigError
from twinjax_experiments import hierarchical
from twinjax_experiments.config import Hierarchical

PRIORS = dict(prior_loc=[20.0, 1.0], prior_scale=[10.0, 2.0], omega_scale=[3.0, 1.0],
              sigma_scale=2.0)  # fmt: skip


def _cohort() -> pd.DataFrame:
    """Linear growth, unit residual SD: five subjects seen at 0..4, one at 0, 2, 4 (spacing 2)
    and one seen once (the cohort's spacing, 1)."""
    rng = np.random.default_rng(3)
    visits = [np.arange(5.0)] * 5 + [np.array([0.0, 2.0, 4.0]), np.array([0.0])]
    rows = []
    for i, t in enumerate(visits):
        b0, b1 = 20.0 + 2.0 * rng.standard_normal(), 1.0 + 0.3 * rng.standard_normal()
        y = b0 + b1 * t + rng.standard_normal(len(t))
        rows += [{"subject_id": f"s{i}", "time": a, "value": b} for a, b in zip(t, y, strict=True)]
    return pd.DataFrame(rows)


def _run(tmp_path, obs: pd.DataFrame, **options) -> dict:
    obs.to_csv(tmp_path / "obs.csv", index=False)
    cfg = Config(
        data=DataConfig(source="files", observations=str(tmp_path / "obs.csv")),
        experiment=Hierarchical(model="linear", progress=False, prior_check=False,
                                predictive_draws=50, grid_points=10, **PRIORS, **options),
    )  # fmt: skip
    return hierarchical.run(cfg, tmp_path)


@pytest.mark.integration
def test_cli_forecasts_match_numpyro_predictive_on_the_same_draws(tmp_path):
    obs = _cohort()
    nuts = Nuts(num_warmup=300, num_samples=1000, num_chains=2)
    m = _run(tmp_path, obs, forecast_steps=3, nuts=nuts)
    fc = pd.read_csv(tmp_path / "forecasts.csv")
    assert list(fc.columns) == ["subject_id", "time", "mean", "q05", "q25", "q50", "q75", "q95"]
    times = fc.time.to_numpy().reshape(7, 3)
    expected = np.array([[5.0, 6.0, 7.0]] * 5 + [[6.0, 8.0, 10.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(times, expected)  # own median gap; the cohort's for s6
    assert m["forecast_points"] == 21 and (tmp_path / "forecasts.png").stat().st_size > 1000
    assert "## Forecasts" in (tmp_path / "report.md").read_text()

    # the Python API: the same model, data and NUTS key (the first of the app's four)
    data = longitudinal_data(obs)
    spec = HierarchicalSpec(mean_model("linear").predict, ("intercept", "slope"),
                            **{k: tuple(v) if isinstance(v, list) else v
                               for k, v in PRIORS.items()}, standardized=True)  # fmt: skip
    k_fit = jax.random.split(jax.random.key(0), 4)[0]
    fit = run_nuts(hierarchical_model, k_fit, spec, data, **nuts.kwargs())
    flat = flatten_chains(fit.samples)
    assert m["posterior_mean_slope"] == pytest.approx(float(flat["mu"][:, 1].mean()), abs=1e-5)
    future = TwinData(times, None, np.ones(times.shape, bool), data.regimen, data.covariates)
    y = Predictive(hierarchical_model, posterior_samples=flat, return_sites=["y"])(
        jax.random.key(123), spec, future
    )["y"]
    y = np.asarray(y)
    assert y.shape == (2000, 7, 3)
    q = np.quantile(y, [0.05, 0.95], axis=0)
    for col, ref in (("mean", y.mean(axis=0)), ("q05", q[0]), ("q95", q[1])):
        np.testing.assert_allclose(fc[col].to_numpy().reshape(7, 3), ref, rtol=0.02, err_msg=col)
    se = np.sqrt(2.0 * np.mean(flat["sigma_add"] ** 2) / len(flat["sigma_add"]))
    assert np.abs(fc["mean"].to_numpy().reshape(7, 3) - y.mean(axis=0)).max() < 5 * se


def _crps_pairs(x: np.ndarray, y: float) -> float:
    """E|X - y| - E|X - X'| / 2 over all pairs of draws (brute force)."""
    return float(np.mean(np.abs(x - y)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :])))


@pytest.mark.integration
def test_holdout_masks_the_last_visits_and_drops_short_subjects(tmp_path):
    obs = _cohort().sample(frac=1.0, random_state=0)  # rows in any order
    with pytest.warns(UserWarning, match=r"left out of the fit and the scores: \['s6'\]"):
        m = _run(tmp_path, obs, holdout_last=2, inference="svi", svi_steps=400, svi_draws=300)
    kept = [f"s{i}" for i in range(6)]
    obs = obs[obs.subject_id.isin(kept)]
    by = obs.sort_values("time").groupby("subject_id")
    held, train = by.tail(2).sort_values(["subject_id", "time"]), obs.drop(by.tail(2).index)
    fc = pd.read_csv(tmp_path / "forecasts.csv")
    np.testing.assert_allclose(fc[["time", "observed"]], held[["time", "value"]])
    assert fc.subject_id.tolist() == held.subject_id.tolist()
    assert m["n_subjects"] == 6 and m["n_observations"] == len(train) == 29 - 1 - 12
    assert m["holdout_n_points"] == m["locf_n_points"] == 12
    assert m["holdout_dropped_subjects"] == ["s6"]
    last = train.sort_values("time").groupby("subject_id").value.last()
    locf = last.reindex(held.subject_id).to_numpy()
    assert m["locf_rmse"] == pytest.approx(np.sqrt(np.mean((locf - held.value) ** 2)), rel=1e-6)
    # LOCF's predictive at the h-th held-out visit: last value + the training h-visit changes
    seq = train.sort_values("time").groupby("subject_id").value
    changes = {h: seq.diff(h).dropna().to_numpy() for h in (1, 2)}
    h = held.groupby("subject_id").cumcount().to_numpy() + 1
    points = zip(locf, held.value, h, strict=True)
    ref = np.mean([_crps_pairs(a + changes[k], b) for a, b, k in points])
    assert m["locf_crps"] == pytest.approx(ref, rel=1e-4)
    lines = (tmp_path / "report.md").read_text()
    assert "last value carried forward" in lines and "Left out (too few visits): s6" in lines


def test_hold_out_last_refuses_and_names():
    t = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # the first subject's rows out of order
    d = TwinData(t, 10.0 + t, np.array([[1, 1, 1], [1, 1, 0]], bool), None, np.zeros((2, 0)),
                 subject_ids=("a", "b"))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = hold_out_last(d, 1)  # both have more than one visit: no warning
    assert h.times.tolist() == [[2.0], [1.0]] and h.train.mask.tolist()[0] == [False, True, True]
    assert 12.0 not in h.train.values[0] and h.dropped == ()
    with pytest.warns(UserWarning, match=r"left out of the fit and the scores: \['b'\]"):
        h = hold_out_last(d, 2)
    assert h.dropped == ("b",) and h.times.tolist() == [[1.0, 2.0]]
    assert h.train.mask.tolist() == [[False, True, False]] and h.train.subject_ids == ("a",)
    with pytest.raises(ValueError, match="no individual has more than 3"):
        hold_out_last(d, 3)


def test_contradictory_forecast_options_stop_before_fitting(tmp_path):
    with pytest.raises(ConfigError, match="holdout_last scores forecasts"):
        _run(tmp_path, _cohort(), holdout_last=1, forecast_steps=2)
    with pytest.raises(ConfigError, match="exclude each other"):
        _run(tmp_path, _cohort(), forecast_steps=2, forecast_times=[5.0])
    with pytest.raises(ConfigError, match="experiment.holdout_last=5: no individual"):
        _run(tmp_path, _cohort(), holdout_last=5, inference="svi", svi_steps=10)
