"""experiment=glucose_twins end to end at tiny sizes (one patient per age group, 3 days)."""

from types import SimpleNamespace

import pandas as pd
import pytest

from experiments.config import GlucoseTwins
from experiments.glucose_twins import run
from twinjax.pipeline import ConfigError

TINY = (
    "experiment=glucose_twins", "experiment.per_group=1", "experiment.days=3",
    "experiment.train_days=2", "experiment.every=60", "experiment.draws=8",
    "experiment.context=8", "experiment.rounds=2", "experiment.fine_tune_epochs=1",
    "experiment.progress=false", "model.attention=false", "model.hidden=8",
    "train.steps=20", "train.personal_steps=10", "train.progress=false",
)  # fmt: skip


def test_glucose_twins_tiny(run_app, tmp_path):
    m = run_app(tmp_path, *TINY)
    twins = m["forecasts"]
    assert {"last value", "(a) recurrent personalized", "(d) federated personalized"} <= set(twins)
    for by in twins.values():
        assert set(by) == {"adolescent", "adult", "child", "all"}
        for v in by.values():
            assert 0 < v["rmse_30min"] < 200 and 0 <= v["coverage90_60min"] <= 1
    # the records went through the data layer as long-format Parquet (data=files reads them)
    obs = pd.read_parquet(tmp_path / "cohort" / "observations.parquet")
    assert set(obs["subject_id"]) == set(m["patients"]) and len(m["patients"]) == 3
    assert (tmp_path / "forecast_bands.png").exists() and "RMSE 30 min" in (
        tmp_path / "report.md"
    ).read_text()


def test_glucose_twins_refuses_files_and_bad_days(tmp_path):
    cfg = lambda source, **kw: SimpleNamespace(
        experiment=GlucoseTwins(**kw), data=SimpleNamespace(source=source), seed=0
    )
    with pytest.raises(ConfigError, match="simulates its own cohort"):
        run(cfg("files"), tmp_path)
    with pytest.raises(ConfigError, match="train_days=14"):
        run(cfg("synthetic", train_days=14), tmp_path)
