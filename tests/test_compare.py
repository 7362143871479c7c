"""Comparable runs: ``twinjax compare`` tabulates an Optuna sweep's trials with their settings
and metrics; HParams lists the changed settings and the run's real metrics; a run
stopped by a user error is marked failed, with no TensorBoard run left behind."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twinjax.__main__ import mark_failed
from twinjax.runtime.compare import compare, main, varying

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _sweep(run_cli, sweep_dir: Path, obs: Path, trials: int) -> None:
    """An Optuna sweep of the command (``--multirun``), in this process."""
    status, out = run_cli(
        "--multirun", f"hydra.sweep.dir={sweep_dir}", "hydra/sweeper=twin_search",
        f"hydra.sweeper.n_trials={trials}", "data=files", f"data.observations={obs}",
        "data.horizon=2", "model.candidates=[last,drift,mixed]", "model.origins=choice(1,2,3)",
    )  # fmt: skip
    assert status == 0, out[-3000:]


def test_compare_tabulates_every_trial_of_a_sweep(tmp_path, capsys, run_cli):
    rng = np.random.default_rng(0)
    n, v = 12, 9
    t = np.arange(v, dtype=float)
    y = rng.normal(5, 1, (n, 1)) + rng.normal(0.5, 0.2, (n, 1)) * t + rng.normal(0, 0.3, (n, v))
    obs = tmp_path / "obs.csv"
    pd.DataFrame({"subject_id": np.repeat(np.arange(n), v), "time": np.tile(t, n),
                  "variable": "y", "value": y.ravel()}).to_csv(obs, index=False)  # fmt: skip
    sweeps = tmp_path / "sweeps"
    _sweep(run_cli, sweeps / "first", obs, trials=3)
    best = yaml.safe_load((sweeps / "first" / "optimization_results.yaml").read_text())

    assert main([str(sweeps)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(sweeps / "compare.csv")
    assert len(table) == 3 and set(table.status) == {"ok"}
    assert sorted(table.run) == ["first/0", "first/1", "first/2"]
    # sorted best first: the first row is the trial Optuna reports as best
    assert list(table.objective) == sorted(table.objective)
    assert table.objective[0] == best["best_value"]
    assert set(table["set:model.origins"]) <= {1, 2, 3}
    assert {"auto_crps_vs_best_baseline", "n_subjects"} <= set(table.columns)
    assert "| run |" in printed and "model.origins" in printed and "3 runs" in printed
    md = (sweeps / "compare.md").read_text()
    assert md.count("\n") == 2 + 3  # header, rule, one line per trial

    # HParams: the changed settings (not the ~60 others) and the run's metrics
    rows = list(csv.reader((sweeps / "first" / "0" / "tensorboard" / "hparams.csv").open()))
    hparams = {name for kind, name, _ in rows[1:] if kind == "hparam"}
    metrics = {name for kind, name, _ in rows[1:] if kind == "metric"}
    assert {"experiment.name", "model.origins", "train.lr", "data.horizon"} <= hparams
    assert "train.keep_checkpoints" not in hparams and len(hparams) < 20
    assert {"objective", "auto_crps_vs_best_baseline"} <= metrics


def test_a_failed_run_is_marked_and_listed(tmp_path):
    run = tmp_path / "runs" / "bad"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- data=files\n")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.1").write_bytes(b"")
    mark_failed(run, "ConfigError: data=files needs data.observations=PATH")
    assert not (run / "tensorboard").exists()  # TensorBoard lists no such run
    table = compare([tmp_path / "runs"])
    assert table.status[0].startswith("failed: ConfigError: data=files needs")
    assert list(varying(table).columns[:3]) == ["run", "experiment", "status"]
