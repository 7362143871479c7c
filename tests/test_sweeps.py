"""Sweeps: the command's --multirun, with Optuna searching a config entry on a user's files to
minimize each run's validation objective; submitit runs a multirun's jobs; the shipped sweeper
and launcher configs compose."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import twinjax.__main__ as app
from twinjax.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.n_individuals=4", "data.n_steps=80", "data.context=8", "data.horizon=4",
    "model.hidden=8", "model.attention_dim=4", "train.batch_windows=2", "train.steps=5",
    "train.personal_steps=5", "train.checkpoint_every=5", "train.eval_every=5",
    "train.progress=false", "experiment.n_plot_individuals=2",
]  # fmt: skip


def _multirun(run_cli, sweep_dir: Path, *overrides: str) -> None:
    """``twinjax --multirun hydra.sweep.dir=SWEEP_DIR TINY OVERRIDES``, in this process."""
    status, out = run_cli("--multirun", f"hydra.sweep.dir={sweep_dir}", *TINY, *overrides)
    assert status == 0, out[-3000:]


def _metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def _user_files(tmp_path: Path) -> list[str]:
    """A synthetic cohort as a user's files: observations in CSV, doses in Parquet, static
    covariates in CSV, with their own column names."""
    import jax

    from twinjax.data import synthetic_cohort, to_long

    obs, doses, static = to_long(synthetic_cohort(jax.random.key(5), n_individuals=4, n_steps=80))
    names = {"subject_id": "pid", "time": "hours"}
    obs.rename(columns=names).to_csv(tmp_path / "obs.csv", index=False)
    doses.rename(columns=names).to_parquet(tmp_path / "doses.parquet")
    static.rename(columns=names).to_csv(tmp_path / "static.csv", index=False)
    return ["data=files", f"data.observations={tmp_path / 'obs.csv'}",
            f"data.interventions={tmp_path / 'doses.parquet'}",
            f"data.static={tmp_path / 'static.csv'}", "data.subject_col=pid",
            "data.time_col=hours", "data.step=1.0", "data.target=glucose",
            "model.family=recurrent"]  # fmt: skip


@pytest.mark.integration
def test_optuna_sweep_on_a_users_files_minimizes_the_runs_validation_objective(tmp_path, run_cli):
    """``twinjax --multirun``: two jobs in one process, each a run directory of its own."""
    sweep = tmp_path / "sweep"
    _multirun(run_cli, sweep, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
              "hydra.sweeper.sampler.seed=0", "train.prior_strength=tag(log, interval(1, 1000))",
              *_user_files(tmp_path))  # fmt: skip
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    runs = [_metrics(job) for job in jobs]
    strengths = [OmegaConf.load(j / ".hydra" / "config.yaml").train.prior_strength for j in jobs]
    assert all(1 <= s <= 1000 for s in strengths) and strengths[0] != strengths[1]
    for job, strength in zip(jobs, strengths, strict=True):  # the job's own override
        swept = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"train.prior_strength={strength}" in swept
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(r["objective"] for r in runs), rel=1e-9)
    for job, run in zip(jobs, runs, strict=True):
        # a validation NLL, not the test period's
        assert run["objective"] != pytest.approx(run["personalized"]["nll_mean"], rel=1e-6)
        for twin in ("population", "personalized"):
            assert 0.0 <= run[twin]["coverage90_pooled"] <= 1.0
            assert run[twin]["rmse_mean"] > 0
            assert run[twin]["n_targets"] > 0
        assert "Personalized / population RMSE" in (job / "report.md").read_text()
        for png in ("forecasts.png", "rmse_distribution.png"):
            assert (job / png).stat().st_size > 10_000
    # each trial's curves and settings, as TensorBoard reads them
    acc = EventAccumulator(str(jobs[0] / "tensorboard"))
    acc.Reload()
    assert {"population/loss", "population/val_nll", "personal/chunk0/loss"} <= set(
        acc.Tags()["scalars"]
    )
    assert acc.Scalars("objective")[0].value == pytest.approx(runs[0]["objective"], rel=1e-6)
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


# slow: submitit starts a fresh Python (and JAX) per job and polls for their results; on this
# 2-core CPU the two tiny jobs take about 2 minutes of wall time (the Optuna sweep runs its trials
# in one process and stays in the default suite)
@pytest.mark.slow
def test_submitit_local_runs_each_job_of_a_multirun(tmp_path):
    # the command in a subprocess: submitit pickles the job, with Hydra's state, which in a
    # test process holds pytest's (unpicklable) objects
    env = {**os.environ, "XLA_FLAGS": "", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "twinjax", "--multirun", f"hydra.sweep.dir={tmp_path}", *TINY,
           "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
           "train.prior_strength=3,300"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {s: _metrics(tmp_path / str(i)) for i, s in enumerate((3, 300))}
    assert runs[3]["objective"] != runs[300]["objective"]  # two different fits
    assert list((tmp_path / ".submitit").glob("*/*_result.pkl"))  # ran as submitit jobs


def _compose(*overrides: str, hydra: bool = True):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def test_shipped_search_space_and_slurm_gpu_launcher_compose():
    sweeper = _compose("hydra/sweeper=twin_search").hydra.sweeper
    assert sweeper.direction == "minimize" and "OptunaSweeper" in sweeper._target_
    assert set(sweeper.params) == {
        "train.lr", "train.personal_lr", "train.prior_strength", "model.hidden"
    }  # fmt: skip
    launcher = _compose("hydra/launcher=slurm_gpu", "hydra.launcher.partition=gpu").hydra.launcher
    assert "SlurmLauncher" in launcher._target_ and launcher.partition == "gpu"
    assert (launcher.gpus_per_node, launcher.tasks_per_node) == (1, 1)
    assert launcher.cpus_per_task > 0 and launcher.mem_gb > 0 and launcher.timeout_min > 0


def test_an_experiment_without_an_objective_is_refused(tmp_path, monkeypatch):
    cfg = _compose("experiment=abm_finance", hydra=False)
    monkeypatch.setattr(app.importlib, "import_module",
                        lambda name: SimpleNamespace(run=lambda config, out: {"loss": 1.0}))  # fmt: skip
    with pytest.raises(TypeError, match=r"experiments/abm_finance.py: run\(\) must return"):
        app.run_experiment(cfg, tmp_path)
    assert not (tmp_path / "metrics.json").exists()
