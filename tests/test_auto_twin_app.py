"""The command-line path of the auto twin on a generated panel: train on a file (the default
family for data=files), ``experiment=forecast twin=RUN`` the next visits, score them against the
held-back rows; in process (``run_experiment`` on the composed config, as the app runs it)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from twinjax.__main__ import run_experiment
from twinjax.config import register_configs
from twinjax.eval.auto import load_auto
from twinjax.eval.panel import panel_from_long
from twinjax.pipeline import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAST = "model.candidates=[last,drift,mixed]"  # ETS/ARIMA: exercised by bench_forecast


def _compose(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _run(out: Path, *overrides) -> dict:
    run_experiment(_compose(*overrides), out)
    return json.loads((out / "metrics.json").read_text())


def _panel_rows(n=40, visits=12, seed=0):
    """Linear trends with personal slopes and noise sd 0.5, visits every 2 time units."""
    rng = np.random.default_rng(seed)
    t = 2.0 * np.arange(visits)
    y = rng.normal(10, 2, (n, 1)) + rng.normal(1, 0.3, (n, 1)) * t + rng.normal(0, 0.5, (n, visits))
    return pd.DataFrame({"subject_id": np.repeat([f"p{i:02d}" for i in range(n)], visits),
                         "time": np.tile(t, n), "variable": "score", "value": y.ravel()})  # fmt: skip


@pytest.mark.integration
def test_train_on_a_file_forecast_the_next_visits_and_score_them(tmp_path):
    rows = _panel_rows()
    late = rows.time >= 20  # each subject's last 2 visits: held back from everything
    rows[~late].to_csv(tmp_path / "train.csv", index=False)
    data = ["data=files", f"data.observations={tmp_path / 'train.csv'}", "data.step=2"]
    m = _run(tmp_path / "fit", *data, FAST, "data.horizon=2")
    # personal linear trends: the mixed model (the true model) or drift, never LOCF
    assert m["family"] == "auto" and m["final_choice"].split("+")[0] in ("mixed", "drift")
    assert json.dumps(m, allow_nan=False)  # no NaN anywhere
    assert set(m["skill"]) == {"last", "drift", "mixed", "auto"}
    report = (tmp_path / "fit" / "report.md").read_text()
    assert "Skill on the held-out visits" in report and "forecasts.png" in report
    f = _run(tmp_path / "fc", *data, "experiment=forecast", f"twin={tmp_path / 'fit'}",
             "experiment.horizon=2")  # fmt: skip
    assert f["members"] == m["final_choice"].split("+") and f["objective"] is None
    fc = pd.read_csv(tmp_path / "fc" / "forecasts.csv")
    truth = rows[late].rename(columns={"value": "y"})
    fc["subject_id"] = fc.subject_id.astype(str)
    scored = fc.merge(truth[["subject_id", "time", "y"]], on=["subject_id", "time"], how="inner")
    assert len(scored) == 80  # every forecast time is a held-back visit
    covered = ((scored.y >= scored.q05) & (scored.y <= scored.q95)).mean()
    rmse = np.sqrt(np.mean((scored.y - scored["mean"]) ** 2))
    last = rows[~late].groupby("subject_id").value.last()
    rmse_locf = np.sqrt(np.mean((scored.y - scored.subject_id.map(last)) ** 2))
    # 80 points: a 90% interval's coverage has sd 0.034; 0.75 is > 4 sd below 0.9
    assert covered >= 0.75
    assert rmse < 0.5 * rmse_locf  # a trend: far better than the last value
    # the CLI's forecasts are the Python API's (rtol 1e-6: the app's cohort holds float32
    # values, the table here float64; float32 rounds at 6e-8 and the MixedLM fit amplifies it)
    twin = load_auto(tmp_path / "fit")
    panel = panel_from_long(rows[~late], subject="subject_id", time="time", value="value")
    api = twin.forecast(panel).frame()
    np.testing.assert_allclose(fc["mean"], api["mean"], rtol=1e-6)
    np.testing.assert_allclose(fc["q95"], api["q95"], rtol=1e-6)
    # experiment.at: forecasts at the user's times; the second visit 6 after the last instead
    # of 2 median gaps (4): its spread grows by at least sqrt(6 / 4) (the elapsed-time factor;
    # more where the mixed model's own sd grows with time), the first visit's is unchanged
    at = truth[["subject_id", "time"]].assign(time=lambda d: np.where(d.time == 22, 26.0, d.time))
    at.to_csv(tmp_path / "at.csv", index=False)
    fc_at = [*data, "experiment=forecast", f"twin={tmp_path / 'fit'}"]
    _run(tmp_path / "at", *fc_at, f"experiment.at={tmp_path / 'at.csv'}")
    g = pd.read_csv(tmp_path / "at" / "forecasts.csv")
    assert len(g) == 80 and sorted(set(g.time)) == [20.0, 26.0]
    one, two = (g.horizon == 1).to_numpy(), (g.horizon == 2).to_numpy()
    np.testing.assert_allclose(g.q95[one] - g.q05[one], (fc.q95 - fc.q05)[one], rtol=1e-6)
    ratio = (g.q95 - g.q05)[two].to_numpy() / (fc.q95 - fc.q05)[two].to_numpy()
    assert ratio.min() >= np.sqrt(1.5) * (1 - 1e-6)
    at.assign(time=10.0).to_csv(tmp_path / "early.csv", index=False)
    with pytest.raises(ConfigError, match="at or before the last visit"):
        _run(tmp_path / "early", *fc_at, f"experiment.at={tmp_path / 'early.csv'}")


def test_family_defaults_and_bad_candidates(tmp_path):
    from twinjax.pipeline import ConfigError
    from twinjax.pipeline import family_of as family

    assert family(OmegaConf.to_object(_compose())) == "recurrent"  # the synthetic cohort
    files = OmegaConf.to_object(_compose("data=files", "data.observations=x.csv"))
    assert family(files) == "auto"
    doses = _compose("data=files", "data.observations=x.csv", "data.interventions=d.csv")
    assert family(OmegaConf.to_object(doses)) == "recurrent"  # twins that take doses in
    assert family(OmegaConf.to_object(_compose("model=auto"))) == "auto"
    _panel_rows(n=6, visits=4).to_csv(tmp_path / "obs.csv", index=False)
    with pytest.raises(ConfigError, match="unknown"):
        _run(tmp_path / "bad", "data=files", f"data.observations={tmp_path / 'obs.csv'}",
             "model.candidates=[last,prophet]")  # fmt: skip


def test_four_visit_panel_runs_with_the_defaults(tmp_path):
    """4 visits a subject: one held out per subject, the rest forecast from 3 visits."""
    _panel_rows(n=12, visits=4).to_csv(tmp_path / "obs.csv", index=False)
    m = _run(tmp_path / "run", "data=files", f"data.observations={tmp_path / 'obs.csv'}",
             "data.step=2", FAST)  # fmt: skip
    assert m["held_out_points"] == 12 and m["skill"]["auto"]["n"] == 12
    assert np.isfinite(m["objective"])


def test_panel_cohort_puts_visits_on_a_grid_with_their_gaps():
    from twinjax.pipeline import panel_cohort

    rows = _panel_rows(n=6, visits=7)
    rows.loc[rows.subject_id == "p00", "time"] *= 1.5  # irregular gaps for one subject
    panel = panel_from_long(rows, subject="subject_id", time="time", value="value")
    cohort = panel_cohort(panel, panel.last()[0][:, None] + 5.0)
    assert cohort.interventions[0, :, 0].tolist() == [3.0] * 6 + [5.0]
    assert cohort.interventions[1, :, 0].tolist() == [2.0] * 6 + [5.0]
    np.testing.assert_allclose(cohort.values[..., 0], panel.y, rtol=1e-6)


@pytest.mark.slow  # two tiny twin fits: ~100 s with compilation on a loaded 2-core CPU
def test_recurrent_candidate_fits_once_for_its_rolling_origins(tmp_path):
    """The recurrent twins as a candidate: their rolling origins come from one fit (before the
    first origin), their forecasts at every origin; auto scores them with the baselines."""
    from twinjax.config import Config, DataConfig, ModelConfig, TrainConfig
    from twinjax.eval.conformal import auto_forecast
    from twinjax.eval.panel import holdout, last_value
    from twinjax.pipeline import RecurrentForecaster

    panel = panel_from_long(_panel_rows(n=6, visits=7), subject="subject_id", time="time",
                            value="value")  # fmt: skip
    cfg = Config(data=DataConfig(context=3), model=ModelConfig(hidden=4, attention=False),
                 train=TrainConfig(steps=3, personal_steps=3, batch_windows=2,
                                   calibration_samples=4, progress=False))  # fmt: skip
    rec = RecurrentForecaster(cfg, tmp_path)
    ho = holdout(panel, h=2)
    fcs, choice = auto_forecast({"last": last_value, "recurrent": rec}, ho.train, ho.time,
                                y=ho.y, mask=ho.mask, origins=2)  # fmt: skip
    assert rec.fits == 2  # one for the rolling origins, one on all the training visits
    assert np.isfinite(choice.validation_crps["recurrent"])
    assert fcs["recurrent"].shape == (6, 2) and np.isfinite(fcs["recurrent"].quantiles).all()


def test_requested_times_read_dates_on_a_datetime_clock(tmp_path):
    from twinjax.data.options import DataConfig
    from twinjax_experiments.forecast import requested_times

    day = 86_400.0
    start = pd.Timestamp("2024-03-01").timestamp()
    panel = panel_from_long(pd.DataFrame({
        "subject_id": ["a", "a", "b", "b", "b"],
        "time": start + day * np.array([0, 7, 0, 7, 14]),
        "value": [1.0, 2.0, 3.0, 4.0, 5.0],
    }), subject="subject_id", time="time", value="value")  # fmt: skip
    at = tmp_path / "at.csv"
    at.write_text("subject_id,time\nb,2024-03-22\na,2024-03-15\na,2024-03-29\n")
    sub, times = requested_times(at, panel, DataConfig(), "datetime")
    assert list(sub.subject) == ["a", "b"]
    np.testing.assert_array_equal(times, start + day * np.array([[14, 28], [21, np.nan]]))
    with pytest.raises(ConfigError, match="read as datetimes, the data's as numbers"):
        requested_times(at, panel, DataConfig(), "number")
    at.write_text("subject_id,time\na,2024-03-15\nb,2024-03-10\n")  # b's last visit: 03-15
    with pytest.raises(ConfigError, match=r"at or before the last visit of \['b'\]"):
        requested_times(at, panel, DataConfig(), "datetime")
