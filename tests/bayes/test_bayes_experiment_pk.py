"""The pk_theophylline experiment through Hydra with tiny overrides (CI-sized NUTS)."""


def test_pk_theophylline_tiny(tmp_path, run_app):
    overrides = [
        "experiment=pk_theophylline",
        "experiment.num_warmup=100",
        "experiment.num_samples=60",
        "experiment.num_chains=2",
        "experiment.predictive_draws=60",
        "experiment.svi_steps=0",
        "experiment.progress=false",
    ]
    m = run_app(tmp_path, *overrides)
    # even a short chain lands near the published fixed effects (the full run is within 0.01)
    for p in ("lKe", "lKa", "lCl"):
        assert abs(m[f"posterior_mean_{p}"] - m[f"fm3_{p}"]) < 0.3, p
    assert m["num_chains"] == 2 and m["num_draws_per_chain"] == 60
    assert isinstance(m["num_divergences"], int) and m["max_r_hat_population"] > 0.9
    assert len(m["dosing"]) == 12
    for row in m["dosing"]:
        assert 0.0 <= row["probability_in_window"] <= 1.0 and row["dose_mg"] > 0
        assert 0.0 < row["expected_fraction_of_time_in_window"] <= 1.0
    assert 0.5 < m["in_sample_coverage_90"] <= 1.0
    report = (tmp_path / "report.md").read_text()
    assert "nlme fm3" in report and "| 12 |" in report
    for png in ("individual_fits", "dosing_steady_state", "pit_histogram", "population_vs_fm3"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000
