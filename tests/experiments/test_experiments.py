"""Every registered experiment, run with tiny overrides in this process: the config Hydra composes
from ``experiment=NAME`` and the overrides, then the app's ``run_experiment`` (as numpyro's
test_examples.py runs each example and levanter's entry tests call ``main``; the command line
itself is tested in tests/test_app.py and tests/test_sweeps.py).

Each run is checked for what every experiment promises (a strict metrics.json whose ``objective``
is a number, or null where nothing is fitted; report.md; every figure it shows; TensorBoard's
record of the run) and then for its own results.
"""

import ast
import json
import re
import tomllib
import warnings
from pathlib import Path

import dp_accounting
import jax
import numpy as np
import pandas as pd
import pytest
from tiny_runs import NEEDS, TINY, forecast_files, theoph_files

from twinjax_experiments.config import REGISTRY


def test_the_table_holds_every_registered_experiment():
    assert sorted(TINY) == sorted(REGISTRY)


def test_the_import_contract_names_every_driver():
    """pyproject.toml's independence contract (no driver imports another) lists each
    registered driver, so a new experiment is under it."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    (drivers,) = [c["modules"] for c in config["contracts"] if c["type"] == "independence"]
    assert sorted(drivers) == sorted(entry.driver for entry in REGISTRY.values())


def test_drivers_stay_thin():
    """No function of experiments/ runs over 60 lines: a longer one is split into named
    phases, or what it does belongs in the library."""
    folder = Path(__file__).resolve().parents[2] / "experiments"
    long = [
        f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(folder.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno >= 60
    ]
    assert not long, long


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, run_app) -> tuple[dict, Path]:
    """The twin_lifecycle run: its own entry, and the twins experiment=forecast loads."""
    run = tmp_path_factory.mktemp("twin_lifecycle") / "run"
    return run_app(run, "experiment=twin_lifecycle", *TINY["twin_lifecycle"]), run


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_tiny_run(name, tmp_path, run_app, request):
    for module in NEEDS.get(name, ()):
        pytest.importorskip(module)
    if name == "twin_lifecycle":
        m, run = request.getfixturevalue("lifecycle")
    else:
        if name == "hierarchical":
            files = theoph_files(tmp_path)
        elif name == "forecast":  # the lifecycle run's twins
            files = forecast_files(tmp_path, twins=request.getfixturevalue("lifecycle")[1])
        else:
            files = []
        run = tmp_path / "run"
        m = run_app(run, f"experiment={name}", *TINY[name], *files)
    _check_run(name, m, run)
    CHECKS[name](m, run)


def _check_run(name: str, m: dict, run: Path) -> None:
    """What every run writes: metrics.json (strict JSON, ``objective`` a number, null only for
    experiment=forecast, which fits nothing), report.md and each figure it shows, and the run's
    settings and objective for TensorBoard's HParams dashboard."""
    text = (run / "metrics.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json")) == m
    if name == "forecast":
        assert m["objective"] is None
    else:  # (a NaN objective is written as null, and fails here)
        assert isinstance(m["objective"], float), m["objective"]
    report = (run / "report.md").read_text()
    for figure in re.findall(r"^!\[[^]]*\]\(([^)]+)\)", report, re.MULTILINE):
        assert (run / figure).stat().st_size > 1000, figure
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


# ---- each experiment's own results -------------------------------------------------------------


def _twins_synthetic(m: dict, run: Path) -> None:
    for twin in ("population", "personalized"):
        assert 0.0 <= m[twin]["coverage90_pooled"] <= 1.0
        assert m[twin]["rmse_mean"] > 0 and m[twin]["n_targets"] > 0
    assert "Personalized / population RMSE" in (run / "report.md").read_text()
    for png in ("forecasts.png", "rmse_distribution.png"):
        assert (run / png).stat().st_size > 10_000
    # peak memory at each phase's end: every timed phase, positive, a high-water mark (so the
    # last phase's is the largest; device memory only where JAX reports it: not on the CPU)
    rss = m["memory"]["peak_rss_mb"]
    assert sorted(rss) == sorted(m["timings"]) and min(rss.values()) > 0
    assert rss["report"] == max(rss.values())
    assert jax.default_backend() != "cpu" or "device_peak_mb" not in m["memory"]
    assert all(v > 0 for v in m["memory"].get("device_peak_mb", {}).values())


def _bayes_twins(m: dict, run: Path) -> None:
    assert m["n_individuals"] == 4 and set(m["streams"]) == {"glucose", "temperature", "activity"}
    s = m["streams"][m["target"]]
    assert s["bayesian_raw"]["n_points"] > 20
    # recalibration fits one spread factor per stream on validation data; a tiny fit is still
    # far from degenerate (neither collapsed nor everything inside)
    assert s["validation_spread_factor"] > 0
    assert 0.5 < m["bayesian_twin_test_coverage_90"] <= 1.0
    assert s["bayesian_calibrated"]["crps"] > 0 and s["point_map_calibrated"]["crps"] > 0
    assert set(m["learned_prior_sd"]) == {"mean/w", "mean/b", "scale/w", "scale/b"}  # head
    assert "90% interval coverage" in (run / "report.md").read_text()
    for png in ("forecast_bands.png", "coverage_levels.png", "pit_bayesian.png"):
        assert (run / png).stat().st_size > 1000
    # the SVI posterior as InferenceData: the forecasts' 3 draws as one chain, the random head
    # parameters by subject, each observed training point's one-step log-likelihood
    import arviz as az

    idata = az.from_netcdf(run / "posterior.nc")
    assert "sample_stats" not in idata.groups() and idata.attrs["inference"] == "svi"
    assert set(idata.posterior) == {"mean_w", "mean_b", "scale_w", "scale_b"}
    assert idata.posterior["mean_w"].dims[:3] == ("chain", "draw", "subject")
    assert idata.posterior["mean_w"].shape[:3] == (1, 3, 4)
    y = idata.observed_data["y"]
    shape = (1, 3, y.size)
    assert idata.log_likelihood["y"].shape == idata.posterior_predictive["y"].shape == shape
    assert set(y.coords["stream"].values) == set(m["streams"])
    assert len(set(y.coords["subject"].values)) == 4 and np.isfinite(y.values).all()
    assert y.size > 4 * 3 * 20 and np.isfinite(idata.log_likelihood["y"].values).all()
    assert idata.constant_data["time"].size == y.size  # each point's time on the grid
    with warnings.catch_warnings():  # 3 draws: Pareto k over ArviZ's threshold
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata)
    assert loo.elpd_loo == pytest.approx(m["posterior"]["loo"]["elpd_loo"])
    assert "`posterior.nc`" in (run / "report.md").read_text()


def _bayes_synthetic(m: dict, run: Path) -> None:
    assert m["n_individuals"] == 6 and len(m["gp_fit_seconds_per_stream"]) == 3
    assert m["gp_interpolation_n_points"] > 50 and m["gp_test_period_n_points"] > 20
    # even a tiny fit is far from degenerate: coverage neither collapsed nor trivially 1
    assert 0.6 < m["gp_held_out_coverage_90"] <= 1.0
    assert m["gp_interpolation_crps"] > 0
    assert "Pooled held-out 90% coverage" in (run / "report.md").read_text()
    assert (run / "gp_individual_fits.png").stat().st_size > 1000


def _pk_theophylline(m: dict, run: Path) -> None:
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
    report = (run / "report.md").read_text()
    assert "nlme fm3" in report and "| 12 |" in report
    for png in ("individual_fits", "dosing_steady_state", "pit_histogram", "population_vs_fm3"):
        assert (run / f"{png}.png").stat().st_size > 1000


def _fedprox_synthetic(m: dict, run: Path) -> None:
    for name in ("fedavg", "fedprox_mu0", "fedprox_mu1"):
        acc = m[f"test_accuracy_stragglers50_{name}_mean"]
        assert 0.0 <= acc <= 1.0
        assert m[f"train_loss_stragglers50_{name}_mean"] < 2.31  # below log(10) at init
    assert 0 <= m["test_accuracy_last10_stragglers50_fedavg_mean"] <= 1
    gain = m["fedprox_mu1_minus_fedavg_points_at_stragglers50"]
    want = 100 * (m["test_accuracy_stragglers50_fedprox_mu1_mean"]
                  - m["test_accuracy_stragglers50_fedavg_mean"])  # fmt: skip
    assert gain == pytest.approx(want)
    # NaN updates from the Byzantine clients (ids 0-3 of 8) are rejected, never aggregated
    assert m["byzantine_nan_rejected_updates"] >= 1
    assert m["byzantine_nan_mean_test_accuracy"] > 0.0
    # drops are reported against clean FedAvg and against the same aggregator run clean
    flip = m["byzantine_sign_flip_median_test_accuracy"]
    for ref, clean in (("fedavg", "mean"), ("same_aggregator", "median")):
        drop = m[f"byzantine_sign_flip_median_drop_points_vs_clean_{ref}"]
        assert drop == pytest.approx(100 * (m[f"byzantine_clean_{clean}_test_accuracy"] - flip))
    # the reported epsilon is dp_accounting's for the same z, sampling rate and rounds
    q = m["dp_sampling_rate"]
    assert q == pytest.approx(3 / 8)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(1.3)), 3
    )
    for name, acc in (("rdp", dp_accounting.rdp.RdpAccountant()),
                      ("pld", dp_accounting.pld.PLDAccountant())):  # fmt: skip
        want = acc.compose(event).get_epsilon(1e-5)
        assert m[f"dp_epsilon_{name}"] == pytest.approx(want, rel=1e-9)
    report = (run / "report.md").read_text()
    assert "figure1.png" in report and "DP-FedAvg" in report and "| 50% | fedavg |" in report
    assert "| clean | median |" in report and "| sign_flip | median |" in report
    assert m["byzantine_num_clients"] == 8 and "byzantine.png" in report
    for fig in ("figure1.png", "byzantine.png"):
        assert (run / fig).stat().st_size > 10_000


def _federated_twins(m: dict, run: Path) -> None:
    assert m["num_clients"] == 6
    for k in ("centralized", "federated_global", "federated_fine_tuned",
              "federated_personal_heads"):  # fmt: skip
        assert m[f"test_nll_{k}"] < m["test_nll_initial"]  # every variant learned something
    report = (run / "report.md").read_text()
    assert "personal output heads" in report and "test_nll.png" in report
    assert (run / "test_nll.png").stat().st_size > 10_000


def _dp_population(m: dict, run: Path) -> None:
    from twinjax import federated as fl

    q, rounds, delta = m["sampling_rate"], m["rounds"], m["delta"]
    assert q == pytest.approx(8 / 40) and rounds == 4
    z, z_update, sigma_b = m["noise_multiplier"], m["update_noise_multiplier"], 4.0
    # the noise on the updates and on the clip count together make the accounted multiplier
    assert z_update**-2 + (2 * sigma_b) ** -2 == pytest.approx(z**-2, rel=1e-9)
    # an independent dp-accounting call for the mechanism as applied (both Gaussian queries of
    # every Poisson-sampled round, composed over the rounds) gives the reported epsilon
    round_event = dp_accounting.PoissonSampledDpEvent(
        q, dp_accounting.ComposedDpEvent([dp_accounting.GaussianDpEvent(z_update),
                                          dp_accounting.GaussianDpEvent(2 * sigma_b)]),
    )  # fmt: skip
    run_event = dp_accounting.SelfComposedDpEvent(round_event, rounds)
    want = dp_accounting.rdp.RdpAccountant().compose(run_event).get_epsilon(delta)
    assert m["epsilon_rdp"] == pytest.approx(want, rel=1e-6)
    assert m["epsilon_rdp"] <= 3.0 + 1e-6  # calibrated to the target (RDP), and no more noise
    assert fl.epsilon(0.97 * z, q, rounds, delta=delta) > 3.0
    pld = dp_accounting.pld.PLDAccountant().compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds
        )
    )
    assert m["epsilon_pld"] == pytest.approx(pld.get_epsilon(delta), rel=1e-9)


def _abm_epidemic(m: dict, run: Path) -> None:
    sc, report = m["scenarios"], (run / "report.md").read_text()
    assert set(sc) == {"baseline", "vaccination", "distancing", "test_isolate"}
    for name in ("vaccination", "distancing", "test_isolate"):
        assert sc[name]["attack_rate_mean"] < sc["baseline"]["attack_rate_mean"]
    b = sc["baseline"]
    assert b["attack_rate_q05"] <= b["attack_rate_mean"] <= b["attack_rate_q95"]
    assert "0-17" in report and "| vaccination |" in report
    tw = m["twin_driven"]
    assert tw["rel_sus_sd_step0"] > 0 and 0 < tw["attack_rate_coupled_mean"] <= 1
    assert "Twin-driven agents" in report


def _abm_commuting(m: dict, run: Path) -> None:
    sc = m["scenarios"]
    assert set(sc) == {"baseline", "transit_x2", "congestion_price", "both"}
    assert "| baseline |" in (run / "report.md").read_text()
    # more frequent transit raises its share; a car price lowers car's
    assert sc["transit_x2"]["share_transit_mean"] > sc["baseline"]["share_transit_mean"]
    assert sc["congestion_price"]["share_car_mean"] < sc["baseline"]["share_car_mean"]


def _abm_finance(m: dict, run: Path) -> None:
    sc = m["scenarios"]
    assert set(sc) == {"baseline", "auto_save", "commitment", "both"}
    assert "| baseline |" in (run / "report.md").read_text()
    for g in ("low", "middle", "high"):  # automatic saving leaves more net worth in every group
        key = f"net_worth_months_{g}_median"
        assert sc["auto_save"][key] > sc["baseline"][key]


def _twin_lifecycle(m: dict, run: Path) -> None:
    assert m["round_trip_max_abs_diff_one_step"] < 1e-6  # data units of order 1-100
    assert m["round_trip_max_abs_diff_sampled"] < 1e-6
    assert len(m["stream_curve"]) == 3 and np.isfinite(m["stream_over_batch_rmse"])
    assert (run / "streaming.png").stat().st_size > 5_000 and (run / "report.md").exists()


def _forecast(m: dict, run: Path) -> None:
    assert (m["n_known"], m["n_new"], m["new_personalized"]) == (4, 1, True)
    table = pd.read_csv(run / "forecasts.csv")
    assert len(table) == 5 * 6 * 3 and set(table.horizon) == set(range(1, 7))
    assert (table.q05 <= table.q50).all() and (table.q50 <= table.q95).all()
    assert (run / "forecasts.png").stat().st_size > 5_000


def _hierarchical(m: dict, run: Path) -> None:
    """Theoph read back from the files through data=files with the fm3 structure and
    pk_theophylline's priors gives that experiment's population posterior (same model, same
    data, same NUTS key and settings: the same draws)."""
    import arviz as az

    from twinjax.bayes import hierarchical_model, population_draws, run_nuts
    from twinjax.bayes.theoph import theoph_data, theoph_spec

    k_nuts = jax.random.split(jax.random.key(0), 4)[0]
    spec = theoph_spec()
    ref = run_nuts(hierarchical_model, k_nuts, spec, theoph_data(), num_warmup=100,
                   num_samples=60, num_chains=2, target_accept=0.9)  # fmt: skip
    pop = population_draws(spec, ref.samples)
    for name, draws in pop.items():
        assert abs(m[f"posterior_mean_{name}"] - float(draws.mean())) < 0.02, name
    summary = pd.read_csv(run / "posterior_summary.csv").set_index("parameter")
    assert {"V", "t_half", "lKe", "omega_lKa"} <= set(summary.index)
    assert summary.loc["V", "mean"] == pytest.approx(
        np.exp(pop["lCl"] - pop["lKe"]).mean(), rel=1e-4
    )
    idata = az.from_netcdf(run / "posterior.nc")
    assert idata.posterior["lKa"].shape == (2, 60)
    assert idata.posterior["theta_lCl"].shape == (2, 60, 12)
    assert float(idata.posterior["lKa"].mean()) == pytest.approx(float(pop["lKa"].mean()), abs=0.02)
    assert idata.observed_data["y"].shape == (132,)  # the observed points of 12 x 11
    subjects = pd.read_csv(run / "subjects.csv")
    assert subjects.subject.nunique() == 12 and {"t_half", "V"} <= set(subjects.parameter)
    curves = pd.read_csv(run / "fitted_curves.csv")
    assert len(curves) == 12 * 25 and (curves.q5 <= curves["median"]).all()
    assert (curves["median"] <= curves.q95).all()
    assert (run / "individual_fits.png").stat().st_size > 1000
    assert m["prior_check_problems"] == [] and m["time_centre"] == 0.0


def _pbc_twins(m: dict, run: Path) -> None:
    from pbc_reference import pbcseq_by_pandas

    from twinjax_experiments.config import PbcTwins

    assert m["data"]["patients"] == 10 and m["data"]["labs"] == ["bili"]
    models = {"locf", "twin_population", "twin_personalized", "gp", "growth"}
    assert all(set(by) == models for by in m["labs"].values())
    fc = pd.read_csv(run / "forecasts.csv")
    scored = fc[fc["target"]]
    assert len(scored) == 5 * sum(m["data"]["targets_per_lab"].values())
    # every interval contains its own point forecast
    assert ((scored["lo90"] <= scored["mean"]) & (scored["mean"] <= scored["hi90"])).all()
    # the run's LOCF is the last observed value before the last visit (pandas)
    d = pbcseq_by_pandas(PbcTwins(n_patients=10, log_labs=["bili"]))
    before = d[~d["last"]].dropna(subset=["bili"]).groupby("id")["bili"].last()
    locf = scored[(scored["model"] == "locf") & (scored["lab"] == "bili")].set_index("subject_id")
    np.testing.assert_allclose(locf["mean"], before.loc[locf.index], rtol=1e-5, atol=1e-5)
    text = (run / "report.md").read_text()
    assert "trial's 95% CI" in text and (run / "calibration.png").exists()
    # the growth fit's InferenceData (SVI here: one chain of the guide's draws) for ArviZ
    import arviz as az

    idata = az.from_netcdf(run / "posterior_bili.nc")
    assert {"posterior", "log_likelihood", "posterior_predictive", "observed_data"} <= set(
        idata.groups()
    )
    assert idata.attrs["lab"] == "bili" and idata.attrs["sd"] > 0
    n_obs = idata.observed_data["y"].size
    assert idata.log_likelihood["y"].shape[-1] == n_obs  # one value per observed visit
    assert np.isfinite(az.loo(idata).elpd_loo)


def _wages_panel(m: dict, run: Path) -> None:
    from twinjax_experiments import wages_panel as wp

    assert m["n_workers"] == 24 and m["forecast_year"] == 1982
    assert m["forecast_year_observed_in_training"] is False
    # the run's subset and mixed-model forecasts, recomputed here
    k_pick = jax.random.split(jax.random.key(0), 3)[0]
    idx = np.sort(np.asarray(jax.random.permutation(k_pick, 595))[:24])
    p = wp.take(wp.panel(wp.load_wages()), idx)
    _, lme = wp.lme_forecast(wp.design(p, 6), p.lwage, 6, (0.9,), "reml")
    rmse = float(np.sqrt(np.mean((lme.point - p.lwage[:, 6]) ** 2)))
    assert m["methods"]["lme"]["rmse"] == pytest.approx(rmse, rel=1e-9)
    levels = ("0.5", "0.7", "0.8", "0.9", "0.95")
    for name in wp.METHODS:
        s = m["methods"][name]
        assert set(s["calibration"]) == set(levels)
        cal = [s["calibration"][k] for k in levels]
        assert cal == sorted(cal)  # nested intervals cover more
        assert s["width90"] > 0 and s["sex=male"]["n"] + s.get("sex=female", {"n": 0})["n"] == 24
    report = (run / "report.md").read_text()
    verdicts = [v for v in report.splitlines() if v.startswith("- The ")]
    assert len(verdicts) == 6
    assert all(" beats the " in v or " does NOT beat the " in v or " matches the " in v
               for v in verdicts)  # fmt: skip
    assert (run / "trajectories.png").exists() and (run / "calibration.png").exists()


def _pk_remifentanil(m: dict, run: Path) -> None:
    assert m["n_subjects"] == 3 and m["loo_best"] in ("pk_iv", "pk2_iv")
    # one compartment cannot follow remifentanil's fast redistribution then slow decline: on the
    # 4-subject pilot its elpd_loo was ~120 below two compartments (SE ~14)
    assert m["pk2_iv_elpd_loo"] > m["pk_iv_elpd_loo"]
    for k in ("pk_iv_coverage_90", "pk2_iv_coverage_90"):
        assert 0.0 <= m[k] <= 1.0
    minto = pd.read_csv(run / "minto_pk2_iv.csv").set_index("parameter")
    assert minto.loc["lQ", "minto"] == "Cl2 (L/min)" and minto.loc["lCl", "minto_typical"] == 2.6
    assert "PSIS-LOO prefers" in (run / "report.md").read_text()


def _glucose_twins(m: dict, run: Path) -> None:
    twins = m["forecasts"]
    assert set(twins) == {
        "last value", "(a) recurrent population", "(a) recurrent personalized",
        "(b) Bayesian mechanistic", "(c) hybrid", "(d) federated personalized",
    }  # fmt: skip
    for by in twins.values():
        assert set(by) == {"adolescent", "adult", "child", "all"}
        for v in by.values():
            assert 0 < v["rmse_30min"] < 200 and 0 <= v["coverage90_60min"] <= 1
    # the records went through the data layer as long-format Parquet (data=files reads them)
    obs = pd.read_parquet(run / "cohort" / "observations.parquet")
    assert set(obs["subject_id"]) == set(m["patients"]) and len(m["patients"]) == 3
    report = (run / "report.md").read_text()
    assert (run / "forecast_bands.png").exists() and "RMSE 30 min" in report
    # recovery: one row per patient and estimated parameter, scored against the table
    rec = pd.read_csv(run / "parameter_recovery.csv")
    assert set(m["mechanistic"]["estimated"]) <= set(rec["parameter"])
    assert len(rec) == 3 * rec["parameter"].nunique() and (rec["lo"] <= rec["hi"]).all()
    assert "closed_loop" not in m and "Closed loop" not in report
    # (b)'s SVI fit as InferenceData: one chain of 4 draws, no sample_stats, by patient and minute
    import arviz as az

    idata = az.from_netcdf(run / "posterior.nc")
    assert "sample_stats" not in idata.groups() and idata.attrs["inference"] == "svi"
    assert list(idata.posterior["theta"].coords["subject"].values) == m["patients"]
    assert list(idata.posterior["mu"].coords["parameter"].values) == m["mechanistic"]["estimated"]
    assert idata.posterior["theta"].dims == ("chain", "draw", "subject", "parameter")
    cells = 1 + 1440 // 3  # fit_days=1 of 3-minute readings, the last included
    assert idata.log_likelihood["y"].shape == (1, 4, 3, cells)
    assert idata.posterior_predictive["y"].shape == (1, 4, 3, cells)
    assert float(idata.observed_data["y"].coords["time"][-1]) == 1440.0
    np.testing.assert_allclose(
        idata.observed_data["y"].values,
        obs.pivot(index="subject_id", columns="time", values="value")
        .loc[m["patients"]]
        .values[:, :cells],
        rtol=1e-6,
    )
    assert np.isfinite(idata.log_likelihood["y"].values).all()
    with warnings.catch_warnings():  # 4 draws: every Pareto k is over ArviZ's threshold
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    assert loo.elpd_loo == pytest.approx(m["mechanistic"]["posterior"]["loo"]["elpd_loo"])
    assert "`posterior.nc`" in report and "Pareto k >" in report  # 4 draws: LOO unreliable


CHECKS = {
    "twins_synthetic": _twins_synthetic, "bayes_twins": _bayes_twins,
    "bayes_synthetic": _bayes_synthetic, "pk_theophylline": _pk_theophylline,
    "fedprox_synthetic": _fedprox_synthetic, "federated_twins": _federated_twins,
    "dp_population": _dp_population, "abm_epidemic": _abm_epidemic,
    "abm_commuting": _abm_commuting, "abm_finance": _abm_finance,
    "twin_lifecycle": _twin_lifecycle, "forecast": _forecast, "hierarchical": _hierarchical,
    "pbc_twins": _pbc_twins, "wages_panel": _wages_panel, "pk_remifentanil": _pk_remifentanil,
    "glucose_twins": _glucose_twins,
}  # fmt: skip
