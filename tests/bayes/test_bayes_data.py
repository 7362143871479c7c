"""Bad input: each case gets a clear error or the documented handling (twinjax/bayes/data.py)."""

import jax
import numpy as np
import pandas as pd
import pytest

from twinjax.bayes import (
    HierarchicalSpec,
    hierarchical_model,
    oral_predict,
    pk_data_from_frames,
    population_draws,
    run_svi,
    svi_draws,
)
from twinjax.data.errors import CohortError


def _frames(n=4, times=(0.5, 1.0, 2.0, 4.0, 8.0, 12.0)):
    """Subjects with log-normal random effects on Ka and Cl, and small additive noise."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n):
        ka, cl = np.exp(0.5 + 0.5 * rng.normal()), np.exp(-3.0 + 0.2 * rng.normal())
        for t in times:
            c = 4.0 * 0.1 * ka / (cl * (ka - 0.1)) * (np.exp(-0.1 * t) - np.exp(-ka * t))
            rows.append({"subject": s, "time": t, "conc": c + 0.2 * rng.normal()})
    doses = pd.DataFrame({"subject": range(n), "time": 0.0, "amount": 4.0})
    cov = pd.DataFrame({"subject": range(n), "wt": np.linspace(-0.2, 0.2, n)})
    return pd.DataFrame(rows), doses, cov


def test_negative_observation_time_is_an_error_naming_the_row():
    obs, doses, _ = _frames()
    obs.loc[3, "time"] = -1.0
    with pytest.raises(CohortError, match=r"observations.*row\(s\) 3.*negative times"):
        pk_data_from_frames(obs, doses)


def test_negative_dose_time_is_an_error():
    obs, doses, _ = _frames()
    doses.loc[1, "time"] = -0.5
    with pytest.raises(CohortError, match=r"doses.*row\(s\) 1.*negative"):
        pk_data_from_frames(obs, doses)


def test_nonpositive_under_log_model_errors_or_is_dropped():
    obs, doses, _ = _frames()
    obs.loc[[0, 7], "conc"] = [0.0, -0.2]
    with pytest.raises(CohortError, match=r"row\(s\) 0, 7.*non-positive"):
        pk_data_from_frames(obs, doses, error_model="log_additive")
    with pytest.warns(UserWarning, match="dropping 2"):
        d = pk_data_from_frames(obs, doses, error_model="log_additive", drop_nonpositive=True)
    assert d.mask.sum() == len(obs) - 2 and np.all(d.values[d.mask] > 0)
    # the same values are fine under an additive model
    assert pk_data_from_frames(obs, doses).mask.sum() == len(obs)


def test_missing_covariates_error_or_imputed_with_mean():
    obs, doses, cov = _frames()
    cov.loc[2, "wt"] = np.nan
    with pytest.raises(CohortError, match=r"covariates missing for subjects \[2\]"):
        pk_data_from_frames(obs, doses, covariates=cov, covariate_cols=("wt",))
    with pytest.warns(UserWarning, match="imputing"):
        d = pk_data_from_frames(
            obs, doses, covariates=cov, covariate_cols=("wt",), impute_covariates=True
        )
    assert d.imputed == (2,)
    np.testing.assert_allclose(d.covariates[2, 0], np.nanmean(cov["wt"]))


def test_subject_without_observations_is_an_error():
    obs, doses, _ = _frames()
    doses = pd.concat([doses, pd.DataFrame({"subject": [9], "time": [0.0], "amount": [1.0]})])
    with pytest.raises(CohortError, match=r"subjects \[9\] have doses but no observations"):
        pk_data_from_frames(obs, doses)


def _single_observation_data():
    obs, doses, _ = _frames(n=6)
    obs = obs[(obs.subject != 5) | (obs.time == 2.0)]
    return pk_data_from_frames(obs, doses)


def test_single_observation_subject_is_kept():
    d = _single_observation_data()
    assert d.mask[5].sum() == 1 and d.mask[0].sum() == 6


@pytest.mark.slow  # SVI compile of the PK model: ~60-90 s on 2 loaded cores (CI time budget)
def test_single_observation_subject_is_kept_and_shrunk_to_population():
    d = _single_observation_data()
    spec = HierarchicalSpec(
        predict=oral_predict,
        params=("lKe", "lKa", "lCl"),
        random=("lKa", "lCl"),
        prior_loc=(-2.0, 0.0, -3.0),
        omega_scale=0.5,
    )
    fit = run_svi(hierarchical_model, jax.random.key(0), spec, d, steps=300, lr=0.05)
    draws = svi_draws(fit, jax.random.key(1), spec, d, num_samples=300)
    theta = draws["theta"]  # [draws, individuals, params]
    assert np.all(np.isfinite(theta))
    sd = theta.std(axis=0)
    # the single-observation subject is less certain about lKa than any fully observed one
    assert sd[5, 1] > sd[:5, 1].max()
    assert set(population_draws(spec, draws)) >= {"lKe", "omega_lKa", "sigma_add"}
