"""experiment=glucose_twins: its refusals, the patients named at the sensor's floor, the run with the
population twin as (b), and (slow) the closed loop in simglucose at the tiny run's sizes (one
patient per age group, 3 days; the tiny run without the closed loop:
tests/experiments/test_experiments.py)."""

import typing
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from tiny_runs import TINY

from twinjax.config import literal_choices
from twinjax.glucose import FREE, TWINS
from twinjax.pipeline import ConfigError
from twinjax_experiments.config import GlucoseTwins
from twinjax_experiments.glucose_twins import run


@pytest.mark.slow
def test_glucose_twins_closed_loop_in_simglucose(run_app, tmp_path):
    pytest.importorskip("simglucose")
    m = run_app(tmp_path, "experiment=glucose_twins", *TINY["glucose_twins"],
                "experiment.closed_loop_days=1")  # fmt: skip
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


def test_the_twin_choices_are_the_librarys():
    assert literal_choices(typing.get_type_hints(GlucoseTwins)["twin"]) == TWINS
    assert GlucoseTwins().twin == "mechanistic"  # the default run's output does not change


@pytest.mark.integration
def test_glucose_twins_with_the_population_twin(run_app, tmp_path):
    """(b) identified by the population fit (a few steps of each phase, two starts): every
    parameter estimated and scored, (b) and (c) forecast, no InferenceData written."""
    population = ["experiment.twin=population", "experiment.population_starts=2",
                  "experiment.population_mode_steps=3", "experiment.population_steps=3"]  # fmt: skip
    m = run_app(tmp_path, "experiment=glucose_twins", *TINY["glucose_twins"], *population)
    b = m["mechanistic"]
    assert b["twin"] == "population" and b["estimated"] == list(FREE) and len(FREE) == 23
    assert b["posterior"] is None and not (tmp_path / "posterior.nc").exists()
    rec = pd.read_csv(tmp_path / "parameter_recovery.csv")
    assert set(rec["parameter"]) == {*FREE, "Gb", "EGPb"} and len(rec) == 3 * (len(FREE) + 2)
    assert {r["parameter"] for r in b["recovery"]} == {*FREE, "Gb", "EGPb"}
    for name in ("(b) Bayesian mechanistic", "(c) hybrid"):
        for v in m["forecasts"][name].values():
            assert 0 < v["rmse_30min"] < 200 and 0 <= v["coverage90_60min"] <= 1
    assert all(w > 0 for w in m["interval_widening"]["(b) Bayesian mechanistic"])
    report = (tmp_path / "report.md").read_text()
    assert "(b) is the population twin" in report and "no `posterior.nc`" in report
