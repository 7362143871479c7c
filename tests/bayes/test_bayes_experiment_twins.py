"""The bayes_twins experiment (Bayesian recurrent twins) through Hydra with tiny overrides."""


def test_bayes_twins_tiny(tmp_path, run_app):
    # the core stages use tests/test_app.py's TINY shapes: their compiled programs are shared
    # through the persistent compilation cache
    overrides = [
        "experiment=bayes_twins",
        "data.n_individuals=4", "data.n_steps=80", "data.context=8", "data.horizon=4",
        "model.hidden=8", "model.attention_dim=4", "train.batch_windows=2", "train.steps=20",
        "train.personal_steps=20", "train.eval_every=5", "train.progress=false",
        "experiment.steps=10",
        "experiment.num_draws=3", "experiment.n_plot_individuals=2",
    ]  # fmt: skip
    m = run_app(tmp_path, *overrides)
    assert m["n_individuals"] == 4 and set(m["streams"]) == {"glucose", "temperature", "activity"}
    s = m["streams"][m["target"]]
    assert s["bayesian_raw"]["n_points"] > 20
    # recalibration fits one spread factor per stream on validation data; a tiny fit is still
    # far from degenerate (neither collapsed nor everything inside)
    assert s["validation_spread_factor"] > 0
    assert 0.5 < m["bayesian_twin_test_coverage_90"] <= 1.0
    assert s["bayesian_calibrated"]["crps"] > 0 and s["point_map_calibrated"]["crps"] > 0
    assert set(m["learned_prior_sd"]) == {"mean/w", "mean/b", "scale/w", "scale/b"}  # head
    assert "90% interval coverage" in (tmp_path / "report.md").read_text()
    for png in ("forecast_bands.png", "coverage_levels.png", "pit_bayesian.png"):
        assert (tmp_path / png).stat().st_size > 1000
