"""The app on a user's files: an observations-only CSV trains, evaluates, saves and loads (in this
process); a data or configuration error ends the command with its message alone (exit status 1,
no traceback)."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import pandas as pd
import pytest

import twinjax
from twinjax.data import synthetic_cohort, to_long

ROOT = Path(__file__).resolve().parents[2]
# the recurrent twins (data=files would otherwise fit the auto twin: tests/test_auto_twin_app.py)
TINY = ["model.family=recurrent", "data.context=8", "data.horizon=4", "model.hidden=8",
        "model.attention_dim=4",
        "train.batch_windows=2", "train.steps=5", "train.personal_steps=5", "train.eval_every=5",
        "train.progress=false", "experiment.n_plot_individuals=2"]  # fmt: skip


def app(run_dir: Path, *overrides: str, full_error: bool = False):
    """``python -m twinjax hydra.run.dir=RUN_DIR OVERRIDES`` in a subprocess."""
    env = {**os.environ, "XLA_FLAGS": "", "MPLBACKEND": "Agg"}
    env.pop("HYDRA_FULL_ERROR", None)
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    cmd = [sys.executable, "-m", "twinjax", f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


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


@pytest.mark.integration
def test_data_and_config_errors_end_with_the_message_alone(tmp_path):
    missing = tmp_path / "nowhere.csv"
    proc = app(tmp_path / "run", "data=files", f"data.observations={missing}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"CohortError: {missing}: no such observations file" in out
    assert "Traceback" not in out and "HYDRA_FULL_ERROR" not in out
    (tmp_path / "obs.csv").write_text("subject_id,time,variable,value\na,0,x,1\na,1,x,2\n")
    proc = app(tmp_path / "run2", "data=files", f"data.observations={tmp_path / 'obs.csv'}",
               "data.target=y")  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "ConfigError: data.target='y' is not one of the variables ['x']" in proc.stdout
    full = app(tmp_path / "run3", "data=files", f"data.observations={missing}", full_error=True)
    assert full.returncode == 1 and "Traceback" in full.stderr
