"""The experiments on saved twins run end to end at tiny sizes: twin_lifecycle, then forecast
from its run directory on a user's CSV (one subject the twins have never seen)."""

import jax
import numpy as np
import pandas as pd

from twinjax.data import synthetic_cohort, to_long

TINY = [
    "data.n_individuals=4", "data.n_steps=80", "data.context=8", "data.horizon=4",
    "model.hidden=8", "model.attention_dim=4", "train.steps=5", "train.personal_steps=5",
    "train.batch_windows=2", "train.progress=false",
]  # fmt: skip


def test_lifecycle_then_forecast_from_its_run_directory(tmp_path, run_app):
    run = tmp_path / "run"
    m = run_app(
        run, "experiment=twin_lifecycle", *TINY, "experiment.n_new=2",
        "experiment.history_days=3", "experiment.eval_days=1", "experiment.chunks=3",
        "experiment.update_steps=3", "experiment.n_samples=8", "experiment.horizon=4",
    )  # fmt: skip
    assert m["round_trip_max_abs_diff_one_step"] < 1e-6  # data units of order 1-100
    assert m["round_trip_max_abs_diff_sampled"] < 1e-6
    assert len(m["stream_curve"]) == 3 and np.isfinite(m["stream_over_batch_rmse"])
    assert (run / "streaming.png").stat().st_size > 5_000 and (run / "report.md").exists()

    obs, doses, static = to_long(synthetic_cohort(jax.random.key(3), n_individuals=5, n_steps=60))
    obs.to_csv(tmp_path / "new.csv", index=False)  # S0000-S0003 known, S0004 new
    doses.to_csv(tmp_path / "doses.csv", index=False)
    static.to_csv(tmp_path / "static.csv", index=False)
    fc = tmp_path / "fc"
    m = run_app(
        fc, "experiment=forecast", f"twin={run}", "data=files",
        f"data.observations={tmp_path / 'new.csv'}", f"data.interventions={tmp_path / 'doses.csv'}",
        f"data.static={tmp_path / 'static.csv'}", "model.hidden=8", "model.attention_dim=4",
        "data.context=8", "data.horizon=4", "experiment.horizon=6", "experiment.n_samples=16",
        "experiment.personalize_new=true", "train.personal_steps=5",
    )  # fmt: skip
    assert (m["n_known"], m["n_new"], m["new_personalized"]) == (4, 1, True)
    table = pd.read_csv(fc / "forecasts.csv")
    assert len(table) == 5 * 6 * 3 and set(table.step) == set(range(1, 7))
    assert (table.q05 <= table.q50).all() and (table.q50 <= table.q95).all()
    assert (fc / "forecasts.png").stat().st_size > 5_000
