"""The app on a user's files: an observations-only CSV trains, evaluates, saves and loads; a data
or configuration error ends the command with its message alone (exit status 1, no traceback).
Both in this process (the command's entry point, ``run_cli``)."""

import jax
import pandas as pd
import pytest

import twinjax
from twinjax.data import CohortError, synthetic_cohort, to_long

# the recurrent twins (data=files would otherwise fit the auto twin: tests/test_auto_twin_app.py)
TINY = ["model.family=recurrent", "data.context=8", "data.horizon=4", "model.hidden=8",
        "model.attention_dim=4",
        "train.batch_windows=2", "train.steps=5", "train.personal_steps=5", "train.eval_every=5",
        "train.progress=false", "experiment.n_plot_individuals=2"]  # fmt: skip


@pytest.mark.integration
def test_observations_only_csv_trains_evaluates_saves_and_loads(tmp_path, run_app):
    obs, _, _ = to_long(synthetic_cohort(jax.random.key(3), n_individuals=4, n_steps=80))
    ts = pd.Timestamp("2025-01-01") + pd.to_timedelta(obs.time, unit="h")
    obs.assign(time=ts.dt.strftime("%Y-%m-%dT%H:%M")).to_csv(tmp_path / "obs.csv", index=False)
    run = tmp_path / "run"
    metrics = run_app(run, "data=files", f"data.observations={tmp_path / 'obs.csv'}",
                      "data.step=1h", *TINY)  # fmt: skip
    summary = metrics["data_summary"]
    assert summary["subjects"] == 4 and summary["time"] == "datetime" and summary["step"] == "1h"
    assert summary["intervention_kinds"] == [] and summary["static_covariates"] == []
    assert metrics["personalized"]["n_targets"] > 0
    assert "Personalized / population RMSE" in (run / "report.md").read_text()
    bundle = twinjax.load(run)
    assert bundle.step == 3600.0 and bundle.intervention_kinds == () and bundle.static_names == ()


def test_data_and_config_errors_end_with_the_message_alone(tmp_path, run_cli):
    missing = tmp_path / "nowhere.csv"
    status, out = run_cli(f"hydra.run.dir={tmp_path / 'run'}", "data=files",
                          f"data.observations={missing}")  # fmt: skip
    assert status == 1, out
    assert f"CohortError: {missing}: no such observations file" in out
    assert "Traceback" not in out and "HYDRA_FULL_ERROR" not in out
    assert (tmp_path / "run" / "failed.txt").read_text().startswith("CohortError: ")
    (tmp_path / "obs.csv").write_text("subject_id,time,variable,value\na,0,x,1\na,1,x,2\n")
    status, out = run_cli(f"hydra.run.dir={tmp_path / 'run2'}", "data=files",
                          f"data.observations={tmp_path / 'obs.csv'}", "data.target=y")  # fmt: skip
    assert status == 1 and "Traceback" not in out, out
    assert "ConfigError: data.target='y' is not one of the variables ['x']" in out
    with pytest.raises(CohortError, match="no such observations file"):  # HYDRA_FULL_ERROR=1
        run_cli(f"hydra.run.dir={tmp_path / 'run3'}", "data=files",
                f"data.observations={missing}", full_error=True)  # fmt: skip
