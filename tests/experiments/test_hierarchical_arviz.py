"""experiment=hierarchical's output read by ArviZ as its users would: posterior.nc through
``az.loo``, ``az.compare``, ``az.plot_ppc`` and ``az.plot_energy``; its tables' diagnostics equal
``az.summary`` of the file; report.md lists failed checks (a forced bad R-hat); and the run's
non-TTY log (progress on) has no carriage-return bar. One tiny NUTS run (R's Theoph table,
tests/experiments/tiny_runs.py's shapes) serves every test."""

import ast
import contextlib
import io
import logging
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
from tiny_runs import TINY, theoph_files

pytestmark = pytest.mark.integration

matplotlib.use("Agg")

az = pytest.importorskip("arviz")
N_OBS = 132  # Theoph: 12 subjects, 11 concentrations each


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_app):
    """(run directory, metrics, log text, the fit's raw output): progress on, stderr and the
    log captured as a log file would (not a terminal)."""
    import twinjax_experiments.hierarchical as driver

    tmp = tmp_path_factory.mktemp("hierarchical_arviz")
    overrides = [o for o in TINY["hierarchical"] if o != "experiment.progress=false"]
    fits, real_fit = [], driver.fit
    text, handler, root = io.StringIO(), None, logging.getLogger()
    handler, level = logging.StreamHandler(text), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with (
            pytest.MonkeyPatch.context() as mp,
            contextlib.redirect_stderr(text),
            contextlib.redirect_stdout(text),
        ):
            mp.setattr(driver, "fit", lambda *a: fits.append(real_fit(*a)) or fits[-1])
            m = run_app(tmp / "run", "experiment=hierarchical", *overrides, *theoph_files(tmp))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return tmp / "run", m, text.getvalue(), fits[0]


def test_posterior_nc_holds_every_group_named_by_parameter_and_subject(run):
    idata = az.from_netcdf(run[0] / "posterior.nc")
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive",
            "observed_data", "constant_data"} <= set(idata.groups())  # fmt: skip
    assert idata.posterior["lKa"].dims == ("chain", "draw")
    assert idata.posterior["theta_lCl"].dims == ("chain", "draw", "subject")
    assert idata.posterior["theta_lCl"].shape == (2, 60, 12)
    stats = idata.sample_stats
    assert {"energy", "tree_depth", "step_size", "diverging", "acceptance_rate", "lp"} <= set(
        stats.data_vars
    )
    assert stats["energy"].shape == (2, 60) and (stats["tree_depth"] >= 1).all()
    y = idata.observed_data["y"]
    assert y.dims == ("observation",) and y.shape == (N_OBS,) and np.isfinite(y).all()
    assert idata.log_likelihood["y"].shape == idata.posterior_predictive["y"].shape == (
        2, 60, N_OBS
    )  # fmt: skip
    assert list(np.unique(y["subject"].values)) == sorted({str(s) for s in range(1, 13)})
    assert idata.constant_data["time"].shape == (N_OBS,)


def test_loo_compare_ppc_and_energy_plot_on_the_file(run):
    import matplotlib.pyplot as plt

    idata = az.from_netcdf(run[0] / "posterior.nc")
    loo = az.loo(idata, pointwise=True)
    assert loo.n_data_points == N_OBS and loo.n_samples == 120
    assert np.isfinite(loo.elpd_loo) and 0 < loo.p_loo < 40
    assert len(loo.pareto_k) == N_OBS
    table = az.compare({"a": idata, "b": idata})
    assert list(table.columns[:3]) == ["rank", "elpd_loo", "p_loo"] and len(table) == 2
    ax = az.plot_ppc(idata, num_pp_samples=20, random_seed=0)
    assert len(np.ravel(ax)[0].get_lines()) >= 20  # the draws, the observed and mean curves
    plt.close("all")
    ax = az.plot_energy(idata)
    assert "BFMI" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    plt.close("all")


def test_tables_report_arviz_diagnostics_of_the_file(run):
    """The hand-written ESS of before differed from az.summary's (12.35 vs 12.51)."""
    idata = az.from_netcdf(run[0] / "posterior.nc")
    table = pd.read_csv(run[0] / "posterior_summary.csv").set_index("parameter")
    ref = az.summary(idata, var_names=["lKa", "lCl", "omega_lKa"], round_to="none")
    for p in ref.index:
        assert table.loc[p, "ess_bulk"] == pytest.approx(ref.loc[p, "ess_bulk"], rel=1e-9)
        assert table.loc[p, "ess_tail"] == pytest.approx(ref.loc[p, "ess_tail"], rel=1e-9)
        # R-hat's folded draws are computed in float32 by az.summary of the file's float32
        # draws, in float64 by the table: equal to 1e-3
        assert table.loc[p, "r_hat"] == pytest.approx(ref.loc[p, "r_hat"], abs=1e-3)
        assert table.loc[p, "mcse_mean"] == pytest.approx(ref.loc[p, "mcse_mean"], rel=1e-6)


def test_report_lists_the_runs_diagnostic_problems(run):
    """60 draws of 2 chains: bulk ESS is under the 200 asked for, and the report says so."""
    report = (run[0] / "report.md").read_text()
    problems = run[1]["diagnostic_problems"]
    assert any(p.startswith("bulk ESS < 200") for p in problems)
    assert "MCMC diagnostics: problems" in report
    assert all(f"- {p}" in report for p in problems)


def test_report_lists_a_forced_bad_r_hat(run, tmp_path, run_app):
    """The same fit with its second chain of lKa moved by two posterior SDs: the whole run
    after the fit (tables, report) is the driver's, and report.md names lKa's R-hat."""
    import twinjax_experiments.hierarchical as driver

    samples, by_chain, divergences, stats = run[3]
    mu = samples["mu"].copy()
    j = 1  # lKa: pk_oral_ke's parameters are (lKe, lKa, lCl)
    mu[1, :, j] += 2.0 * mu[..., j].std()
    bad = (samples | {"mu": mu}, by_chain, divergences, stats)
    overrides = TINY["hierarchical"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver, "fit", lambda *a: bad)
        m = run_app(
            tmp_path / "bad", "experiment=hierarchical", *overrides, *theoph_files(tmp_path)
        )
    assert m["posterior_r_hat_lKa"] > 1.1
    report = (tmp_path / "bad" / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("- R-hat > 1.01: "))
    assert ast.literal_eval(line.removeprefix("- R-hat > 1.01: "))["lKa"] > 1.1


def test_non_tty_log_has_no_carriage_returns(run):
    log = run[2]
    assert not sys.stderr.isatty()
    assert "NUTS: 2 chains, 100 warmup + 60 draws each" in log and "NUTS: done in" in log
    assert "\r" not in log
