"""experiment=hierarchical on files through the app (CI-sized NUTS) beyond its tiny run on R's
Theoph table (tests/experiments/test_experiments.py): a multi-dose IV event table, linear growth
by SVI over calendar years, and the refusals of data=files."""

import numpy as np
import pandas as pd
import pytest
from tiny_runs import theoph_files

from twinjax.pipeline import ConfigError


def test_experiments_refuse_files_they_cannot_use(tmp_path, run_app):
    """A ConfigError, which the app reports in one line (tests/data/test_data_app.py)."""
    files = theoph_files(tmp_path)
    with pytest.raises(ConfigError, match="cannot use data=files.*experiment=hierarchical"):
        run_app(tmp_path / "a", "experiment=pk_theophylline", "data=files", *files)
    with pytest.raises(ConfigError, match="pass data=files"):
        run_app(tmp_path / "b", "experiment=hierarchical")


def _iv_event_table(n=24, seed=0):
    """Boluses of 100 at 0, 12 and 24 h; (lCl, lV) = (1.0, 3.0) with random effects of SD 0.1
    (centred over the cohort, so the simulated cohort's means are exactly the population's) and
    10% proportional error."""
    rng = np.random.default_rng(seed)
    eta = 0.1 * rng.standard_normal((n, 2))
    eta -= eta.mean(axis=0)
    times, rows = np.array([1.0, 4.0, 8.0, 11.5, 13.0, 18.0, 23.5, 26.0, 32.0, 36.0]), []
    for i in range(n):
        cl, v = np.exp(1.0 + eta[i, 0]), np.exp(3.0 + eta[i, 1])
        for td in (0.0, 12.0, 24.0):
            rows.append({"subject_id": f"s{i:02d}", "time": td, "value": np.nan, "amount": 100.0})
        conc = sum(100.0 / v * np.exp(-cl / v * (times - td)) * (times >= td) for td in (0, 12, 24))
        for t, c in zip(times, conc * (1 + 0.1 * rng.standard_normal(len(times))), strict=True):
            rows.append({"subject_id": f"s{i:02d}", "time": t, "value": c, "amount": np.nan})
    return pd.DataFrame(rows)


@pytest.mark.integration
def test_multi_dose_iv_event_table_recovers_cl_and_v(tmp_path, run_app):
    _iv_event_table().to_csv(tmp_path / "events.csv", index=False)
    m = run_app(tmp_path / "run", "experiment=hierarchical", "data=files",
                f"data.observations={tmp_path / 'events.csv'}", "experiment.model=pk_iv",
                "experiment.error_model=proportional", "experiment.nuts.num_warmup=200",
                "experiment.nuts.num_samples=200", "experiment.nuts.num_chains=2",
                "experiment.predictive_draws=100", "experiment.grid_points=25",
                "experiment.progress=false")  # fmt: skip
    assert abs(m["posterior_mean_lCl"] - 1.0) < 0.05 and abs(m["posterior_mean_lV"] - 3.0) < 0.05
    assert m["posterior_mean_V"] == pytest.approx(np.exp(3.0), rel=0.1)
    assert m["posterior_mean_t_half"] == pytest.approx(np.log(2) * np.exp(2.0), rel=0.1)
    assert m["n_subjects"] == 24 and m["n_observations"] == 240


@pytest.mark.integration
def test_growth_with_svi_and_centred_time_in_process(tmp_path):
    """Linear growth over calendar years (centred at their mean, recorded), fitted by SVI with
    data-scale default priors; the driver called directly with its dataclasses."""
    from twinjax.config import Config, DataConfig
    from twinjax_experiments import hierarchical
    from twinjax_experiments.config import Hierarchical

    rng = np.random.default_rng(1)
    n, years = 20, np.arange(1976.0, 1983.0)
    b0 = 500.0 + 20.0 * rng.standard_normal(n)  # level at 1979
    b1 = 10.0 + 1.0 * rng.standard_normal(n)
    y = b0[:, None] + b1[:, None] * (years - 1979.0) + 5.0 * rng.standard_normal((n, len(years)))
    obs = pd.DataFrame({"subject_id": np.repeat(np.arange(n), len(years)),
                        "time": np.tile(years, n), "value": y.ravel()})  # fmt: skip
    obs.to_csv(tmp_path / "obs.csv", index=False)
    cfg = Config(
        data=DataConfig(source="files", observations=str(tmp_path / "obs.csv")),
        experiment=Hierarchical(model="linear", centre_time="mean", correlated=True,
                                inference="svi", svi_steps=1500, svi_draws=200,
                                predictive_draws=100, grid_points=10, progress=False),
    )  # fmt: skip
    m = hierarchical.run(cfg, tmp_path)
    assert m["time_centre"] == 1979.0 and m["inference"] == "svi"
    assert abs(m["posterior_mean_intercept"] - b0.mean()) < 15.0
    assert abs(m["posterior_mean_slope"] - b1.mean()) < 1.0
    assert (
        "corr_intercept_slope" in pd.read_csv(tmp_path / "posterior_summary.csv").parameter.values
    )
    curves = pd.read_csv(tmp_path / "fitted_curves.csv")
    assert curves.time.min() == 1976.0 and curves.time.max() == 1982.0
