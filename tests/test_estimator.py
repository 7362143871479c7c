"""``twinjax.Twins``, the estimator: the CLI's forecasts for the same settings, from the
project's long format and from a Nixtla-shaped frame; personalize, update, save and load; the
errors a notebook user meets first."""

import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import twinjax
from twinjax import bundle as tb
from twinjax.__main__ import run_experiment
from twinjax.config import register_configs
from twinjax.estimator import NotFittedError
from twinjax.eval import FORECAST_COLUMNS

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CANDIDATES = ["last", "drift", "mixed"]  # ETS/ARIMA: exercised by bench_forecast
FAST = "model.candidates=[last,drift,mixed]"


def _cli(out: Path, *overrides) -> Path:
    """The app run in process (``run_experiment`` on the composed config): its directory."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    run_experiment(cfg, out)
    return out


def _rows(n=16, visits=10, seed=0) -> pd.DataFrame:
    """Personal linear trends plus noise, visits every 2 time units, long format."""
    rng = np.random.default_rng(seed)
    t = 2.0 * np.arange(visits)
    y = rng.normal(10, 2, (n, 1)) + rng.normal(1, 0.3, (n, 1)) * t + rng.normal(0, 0.5, (n, visits))
    return pd.DataFrame({"subject_id": np.repeat([f"p{i:02d}" for i in range(n)], visits),
                         "time": np.tile(t, n), "variable": "score", "value": y.ravel()})  # fmt: skip


@pytest.fixture(scope="module")
def cli_auto(tmp_path_factory):
    """The app's auto twin on a file: its forecasts of the next 2 visits."""
    tmp = tmp_path_factory.mktemp("cli")
    rows = _rows()
    rows.to_csv(tmp / "obs.csv", index=False)
    run = _cli(tmp / "run", "data=files", f"data.observations={tmp / 'obs.csv'}", "data.step=2",
               "data.horizon=2", FAST)  # fmt: skip
    return rows, pd.read_csv(run / "forecasts.csv")


def _auto() -> twinjax.Twins:
    return twinjax.Twins(freq=2, data__horizon=2, model__candidates=CANDIDATES)


def test_fit_forecast_equals_the_cli_on_the_same_table(cli_auto):
    rows, cli = cli_auto
    got = _auto().fit(rows).forecast()
    assert list(got.columns) == list(cli.columns) == list(FORECAST_COLUMNS)
    assert got.subject_id.astype(str).tolist() == cli.subject_id.astype(str).tolist()
    # the same float64 table (a CSV written with pandas' round-trip repr) and the same code:
    # equal to the CSV's 17 significant digits
    for col in ["time", "mean", "q05", "q50", "q95"]:
        np.testing.assert_allclose(got[col], cli[col], rtol=1e-12, err_msg=col)


def test_a_nixtla_frame_gives_the_same_forecasts_in_nixtlas_shape(cli_auto):
    rows, cli = cli_auto
    rng = np.random.default_rng(1)
    nix = pd.DataFrame({"unique_id": rows.subject_id, "ds": rows.time, "y": rows.value,
                        "temperature": rng.normal(20, 3, len(rows))})  # an exogenous column  # fmt: skip
    got = _auto().fit(nix).forecast(shape="nixtla")
    assert list(got.columns) == ["unique_id", "ds", "twinjax", "twinjax-lo-90", "twinjax-hi-90"]
    np.testing.assert_allclose(got["twinjax"], cli["mean"], rtol=1e-12)
    np.testing.assert_allclose(got["twinjax-lo-90"], cli["q05"], rtol=1e-12)
    np.testing.assert_allclose(got["twinjax-hi-90"], cli["q95"], rtol=1e-12)
    np.testing.assert_allclose(got["ds"], cli["time"])


def test_timestamps_come_back_as_timestamps():
    rng = np.random.default_rng(2)
    days = pd.date_range("2024-01-01", periods=12, freq="D")
    nix = pd.DataFrame({"unique_id": np.repeat(["a", "b", "c"], 12), "ds": np.tile(days, 3),
                        "y": rng.normal(size=36).cumsum()})  # fmt: skip
    got = twinjax.Twins(freq="1D", data__horizon=2, model__candidates=["last", "drift"]).fit(
        nix).forecast(shape="nixtla")  # fmt: skip
    assert got.ds.tolist() == [pd.Timestamp("2024-01-13"), pd.Timestamp("2024-01-14")] * 3


def test_personalize_update_save_and_load(tmp_path):
    rows = _rows()
    first = rows.subject_id.isin([f"p{i:02d}" for i in range(12)])
    twins = _auto().fit(rows[first])
    with pytest.raises(ValueError, match="already have twins"):
        twins.personalize(rows[first])
    twins.personalize(rows[~first])
    assert len(twins.forecast()) == 16 * 2
    whole = _auto().fit(rows)
    # an auto twin's forecasters refit on the visits they are given: the medians (each
    # member's point; the calibration, measured on the first 12 subjects, sets the spread and
    # the mean) are those of a twin fitted on all 16, when the choice is the same
    assert twins.twin_.members == whole.twin_.members
    np.testing.assert_allclose(twins.forecast()["q50"], whole.forecast()["q50"], rtol=1e-9)
    with pytest.raises(ValueError, match="have no twin"):
        twins.update(rows[rows.subject_id == "p00"].assign(subject_id="zz"))
    twins.update(rows[rows.subject_id == "p00"].iloc[:-2])  # p00 loses its last 2 visits
    p00 = twins.forecast().query("subject_id == 'p00'")
    assert p00.time.tolist() == [16.0, 18.0]
    twins.save(tmp_path / "twins")
    loaded = twinjax.Twins.load(tmp_path / "twins")
    with pytest.raises(ValueError, match="pass frame="):
        loaded.forecast()
    pd.testing.assert_frame_equal(loaded.forecast(frame=rows), twins.forecast(frame=rows))
    assert json.loads((tmp_path / "twins" / "twins.json").read_text())["family"] == "auto"


def test_clear_errors():
    rows = _rows(n=4)
    two = pd.concat([rows, rows.assign(variable="mood")])
    with pytest.raises(ValueError, match=r"2 variables \(\['mood', 'score'\]\).*Twins\(target="):
        twinjax.Twins(freq=2).fit(two)
    with pytest.raises(ValueError, match="did you mean 'data__horizon'"):
        twinjax.Twins(data__horizn=2)
    with pytest.raises(ValueError, match="unknown option 'data__observations'"):
        twinjax.Twins(data__observations="x.csv")  # tables are fit()'s arguments
    with pytest.raises(NotFittedError):
        twinjax.Twins().forecast(2)
    with pytest.raises(TypeError, match="DataFrame"):  # (under the suite, jaxtyping's check)
        twinjax.Twins().fit(rows.to_numpy())
    twins = _auto().fit(rows)
    with pytest.raises(ValueError, match="no intervention plan"):
        twins.forecast(2, plan=np.zeros((4, 2, 1)))
    with pytest.raises(ValueError, match="shape='wide'"):
        twins.forecast(2, shape="wide")


def test_recurrent_twins_equal_the_clis_and_forecast_as_experiment_forecast(tmp_path):
    """The recurrent family: the same parameters as the app's run on the file, and the
    forecasts of ``experiment=forecast twin=RUN`` on it (same keys, same code)."""
    rows = _rows(n=6, visits=14)
    rows.to_csv(tmp_path / "obs.csv", index=False)
    tiny = dict(data__context=4, data__horizon=2, model__hidden=8, model__attention=False,
                train__steps=6, train__personal_steps=4, train__calibration_samples=4)  # fmt: skip
    data = ["data=files", f"data.observations={tmp_path / 'obs.csv'}", "data.step=2"]
    flags = [f"{k.replace('__', '.')}={v}" for k, v in tiny.items()]
    _cli_run = lambda out, *more: _cli(out, *data, *flags, "model.family=recurrent", *more)
    _cli_run(tmp_path / "fit")
    twins = twinjax.Twins("recurrent", freq=2, **tiny).fit(rows)
    saved = tb.load(tmp_path / "fit")
    for a, b in zip(jax.tree.leaves(saved.personal), jax.tree.leaves(twins.twin_.personal),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fc = _cli_run(tmp_path / "fc", "experiment=forecast", f"twin={tmp_path / 'fit'}",
                  "experiment.horizon=3", "experiment.n_samples=50")  # fmt: skip
    cli = pd.read_csv(fc / "forecasts.csv")
    got = twins.forecast(3, n_samples=50)
    # the recurrent family's table has the auto twin's columns (one schema for every family)
    assert list(got.columns) == list(cli.columns) == list(FORECAST_COLUMNS)
    np.testing.assert_allclose(got["mean"], cli["mean"], rtol=1e-6)
    np.testing.assert_allclose(got["q95"], cli["q95"], rtol=1e-6)
