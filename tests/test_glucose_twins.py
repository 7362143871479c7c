"""experiment=glucose_twins end to end at tiny sizes (one patient per age group, 3 days)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twinjax.pipeline import ConfigError
from twinjax_experiments.config import GlucoseTwins
from twinjax_experiments.glucose_twins import run

TINY = (
    "experiment=glucose_twins", "experiment.per_group=1", "experiment.days=3",
    "experiment.train_days=2", "experiment.every=60", "experiment.draws=8",
    "experiment.context=8", "experiment.rounds=2", "experiment.fine_tune_epochs=1",
    "experiment.progress=false", "model.attention=false", "model.hidden=8",
    "train.steps=20", "train.personal_steps=10", "train.progress=false",
    "experiment.fit_days=1", "experiment.svi_steps=5", "experiment.mechanistic_draws=4",
    "experiment.hybrid_calib_days=0.5",
)  # fmt: skip


def test_glucose_twins_tiny(run_app, tmp_path):
    m = run_app(tmp_path, *TINY, "experiment.closed_loop_days=0")
    twins = m["forecasts"]
    assert set(twins) == {
        "last value", "(a) recurrent population", "(a) recurrent personalized",
        "(b) Bayesian mechanistic", "(c) hybrid", "(d) federated personalized",
    }  # fmt: skip
    for by in twins.values():
        assert set(by) == {"adolescent", "adult", "child", "all"}
        for v in by.values():
            assert 0 < v["rmse_30min"] < 200 and 0 <= v["coverage90_60min"] <= 1
    # the records went through the data layer as long-format Parquet (data=files reads them)
    obs = pd.read_parquet(tmp_path / "cohort" / "observations.parquet")
    assert set(obs["subject_id"]) == set(m["patients"]) and len(m["patients"]) == 3
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "forecast_bands.png").exists() and "RMSE 30 min" in report
    # recovery: one row per patient and estimated parameter, scored against the table
    rec = pd.read_csv(tmp_path / "parameter_recovery.csv")
    assert set(m["mechanistic"]["estimated"]) <= set(rec["parameter"])
    assert len(rec) == 3 * rec["parameter"].nunique() and (rec["lo"] <= rec["hi"]).all()
    assert "closed_loop" not in m and "Closed loop" not in report


@pytest.mark.slow
def test_glucose_twins_closed_loop_in_simglucose(run_app, tmp_path):
    pytest.importorskip("simglucose")
    m = run_app(tmp_path, *TINY, "experiment.closed_loop_days=1")
    loop = m["closed_loop"]
    assert set(loop["by_group"]) == {"adolescent", "adult", "child", "all"}
    assert len(loop["per_patient"]) == 6  # 3 patients x (advisor, BBController)
    for g in ("adolescent", "adult", "child"):
        assert (tmp_path / f"closed_loop_{g}.png").exists()


def test_glucose_twins_refuses_files_and_bad_days(tmp_path):
    cfg = lambda source, **kw: SimpleNamespace(
        experiment=GlucoseTwins(**kw), data=SimpleNamespace(source=source), seed=0
    )
    with pytest.raises(ConfigError, match="simulates its own cohort"):
        run(cfg("files"), tmp_path)
    with pytest.raises(ConfigError, match="train_days=14"):
        run(cfg("synthetic", train_days=14), tmp_path)


def test_floor_patients_are_named():
    from twinjax_experiments.glucose_twins import floor_patients

    values = np.full((3, 10, 1), 120.0)
    values[1, 4:, 0] = 39.0  # 6 of the last 8 readings at the floor
    values[2, 9, 0] = 39.0  # 1 of 8: a single low reading is not a stuck sensor
    cohort = SimpleNamespace(values=values, subject_ids=("a", "b", "c"))
    assert floor_patients(cohort, 39.0, first=2) == {"b": 0.75}
