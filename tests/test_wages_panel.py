"""experiment=wages_panel: the panel layout check, no 1982 target in any training array, and a
tiny app run whose mixed-model forecasts match the library's computed in this process."""

import numpy as np
import pytest

from twinjax_experiments import wages_panel as wp

TINY = ["experiment=wages_panel", "experiment.n_workers=24", "train.steps=2",
        "train.personal_steps=2", "train.checkpoint_every=2", "train.eval_every=2",
        "train.progress=false", "model.hidden=6", "model.attention_dim=4",
        "experiment.num_warmup=20", "experiment.num_samples=20", "experiment.num_chains=1",
        "experiment.progress=false", "experiment.n_plot_workers=2"]  # fmt: skip


@pytest.fixture(scope="module")
def table():
    return wp.load_wages()


def test_layout_holds_and_a_shuffled_table_is_refused(table):
    p = wp.panel(table)
    assert p.lwage.shape == (595, 7) and p.ids[-1] == 595
    assert (np.diff(p.exp, axis=1) == 1).all()
    assert p.lwage[1, 0] == table.lwage.iloc[7]  # worker 2 starts at row 8
    shuffled = table.sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pytest.raises(wp.PanelError, match="worker by worker"):
        wp.panel(shuffled)
    with pytest.raises(wp.PanelError, match="whole number"):
        wp.panel(table.iloc[:-1])
    swapped = table.copy()  # two rows of one worker exchanged: experience goes down
    swapped.iloc[[8, 9]] = swapped.iloc[[9, 8]].to_numpy()
    with pytest.raises(wp.PanelError, match=r"rows 8-14 \(worker 2\)"):
        wp.panel(swapped)


def test_forecast_year_is_in_no_training_array(table):
    p = wp.take(wp.panel(table), np.arange(40))
    moved = p._replace(lwage=p.lwage + np.r_[np.zeros(6), 100.0])  # 1982 values changed
    levels = (0.5, 0.9)
    built = []
    for q in (p, moved):
        d = wp.design(q, 6)
        cohort = wp.twin_cohort(q, 6)
        data = wp.growth_data(d, q.lwage, 6)
        _, lme = wp.lme_forecast(d, q.lwage, 6, levels, "reml")
        lvcf = wp.lvcf_forecast(q.lwage[:, :6], levels)
        built.append((cohort.values, cohort.mask, data.values, data.times, lme.point,
                      lme.intervals[0.9][1], lvcf.point))  # fmt: skip
    assert not built[0][1][:, 6].any()
    for a, b in zip(*built, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tiny_run(tmp_path, run_app, table):
    m = run_app(tmp_path, *TINY)
    assert m["n_workers"] == 24 and m["forecast_year"] == 1982
    assert m["forecast_year_observed_in_training"] is False
    # the app's subset and mixed-model forecasts, recomputed here
    import jax

    k_pick = jax.random.split(jax.random.key(0), 3)[0]
    idx = np.sort(np.asarray(jax.random.permutation(k_pick, 595))[:24])
    p = wp.take(wp.panel(table), idx)
    _, lme = wp.lme_forecast(wp.design(p, 6), p.lwage, 6, (0.9,), "reml")
    rmse = float(np.sqrt(np.mean((lme.point - p.lwage[:, 6]) ** 2)))
    assert m["methods"]["lme"]["rmse"] == pytest.approx(rmse, rel=1e-9)
    for name in wp.METHODS:
        s = m["methods"][name]
        assert set(s["calibration"]) == {"0.5", "0.7", "0.8", "0.9", "0.95"}
        cal = [s["calibration"][k] for k in ("0.5", "0.7", "0.8", "0.9", "0.95")]
        assert cal == sorted(cal)  # nested intervals cover more
        assert s["width90"] > 0 and s["sex=male"]["n"] + s.get("sex=female", {"n": 0})["n"] == 24
    report = (tmp_path / "report.md").read_text()
    verdicts = [v for v in report.splitlines() if v.startswith("- The ")]
    assert len(verdicts) == 6
    assert all(" beats the " in v or " does NOT beat the " in v or " matches the " in v
               for v in verdicts)  # fmt: skip
    assert (tmp_path / "trajectories.png").exists() and (tmp_path / "calibration.png").exists()
