"""The bayes_synthetic experiment (GP twins) through Hydra with tiny overrides."""


def test_bayes_synthetic_tiny(tmp_path, run_app):
    overrides = [
        "experiment=bayes_synthetic",
        "experiment.n_individuals=6",
        "experiment.n_steps=96",
        "experiment.m=24",
        "experiment.steps=40",
    ]
    m = run_app(tmp_path, *overrides)
    assert m["n_individuals"] == 6 and len(m["gp_fit_seconds_per_stream"]) == 3
    assert m["gp_interpolation_n_points"] > 50 and m["gp_test_period_n_points"] > 20
    # even a tiny fit is far from degenerate: coverage neither collapsed nor trivially 1
    assert 0.6 < m["gp_held_out_coverage_90"] <= 1.0
    assert m["gp_interpolation_crps"] > 0
    assert "Pooled held-out 90% coverage" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "gp_individual_fits.png").stat().st_size > 1000
