"""Checks before training (pipeline.check_cohort): target name, short or sparse subjects excluded
by name, series too short for a window, and the data summary with its warnings."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twinjax import pipeline
from twinjax.data import CohortError, read_cohort


def data_cfg(**kw):
    base = dict(target=None, val_fraction=0.15, test_fraction=0.15, context=4, horizon=2)
    return SimpleNamespace(**{**base, **kw})


def long_table(lengths: dict, variables=("hr", "bp")) -> pd.DataFrame:
    rows = [(s, float(t), v, float(t + k)) for s, n in lengths.items() for t in range(n)
            for k, v in enumerate(variables)]  # fmt: skip
    return pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"])


def test_short_and_sparse_subjects_are_excluded_by_name():
    obs = long_table({"a": 40, "b": 40, "short": 2})
    sparse = pd.DataFrame({"subject_id": "sparse", "time": [0.0, 39.0], "variable": "hr",
                           "value": [1.0, 2.0]})  # fmt: skip
    c = pipeline.check_cohort(read_cohort(pd.concat([obs, sparse])), data_cfg())
    assert c.subject_ids == ("a", "b")
    excluded = {e["subject"]: e["reason"] for e in c.meta["excluded_subjects"]}
    assert excluded["short"].startswith("too short: 2 grid step(s) leave 1")  # floor(2 * 0.7)
    assert excluded["sparse"].startswith("too sparse: 1 observed step(s)")
    summary = c.meta["data_summary"]
    assert [e["subject"] for e in summary["subjects_excluded"]] == ["short", "sparse"]
    assert summary["subjects"] == 2 and summary["grid_steps"] == 40


def test_series_too_short_for_the_window_name_subjects_and_values_that_fit():
    c = read_cohort(long_table({"a": 10, "b": 10, "c": 9}))
    with pytest.raises(CohortError) as info:
        pipeline.check_cohort(c, data_cfg(context=12, horizon=6))
    msg = str(info.value)
    assert "data.context=12 + data.horizon=6 = 18 grid steps" in msg
    assert "the shortest subjects: 'c' (9 steps), 'a' (10 steps), 'b' (10 steps)" in msg
    assert "data.context=6 data.horizon=1" in msg  # training period: floor(10 * 0.7) = 7 steps
    pipeline.check_cohort(c, data_cfg(context=6, horizon=1))  # the suggestion works


def test_target_typo_is_a_config_error_with_a_suggestion():
    c = read_cohort(long_table({"a": 20}, variables=("glucose", "hr")))
    with pytest.raises(pipeline.ConfigError, match=r"data.target='glucos'.*did you mean 'glucose'"):
        pipeline.check_cohort(c, data_cfg(target="glucos"))


def test_no_subject_long_enough_is_an_error_naming_them():
    c = read_cohort(long_table({"a": 2, "b": 1}))
    with pytest.raises(CohortError, match=r"no subject is long or dense enough.*a \(too short"):
        pipeline.check_cohort(c, data_cfg())


def test_summary_counts_and_warnings():
    obs = long_table({"a": 30, "b": 30})
    extra = obs[obs.subject_id == "a"].assign(time=lambda d: d.time + 0.5)  # merged into cells
    b = obs[(obs.subject_id == "b") & ((obs.variable == "hr") | (obs.time < 20))]
    obs = pd.concat([obs[obs.subject_id == "a"], extra, b])  # b: no "bp" (the target) at the end
    c = pipeline.check_cohort(read_cohort(obs), data_cfg())
    s = c.meta["data_summary"]
    assert s["rows_merged"] == len(extra) and s["rows_dropped"] == 0
    assert s["target"] == "bp" and s["subjects_without_test_targets"] == ["b"]
    assert any("1 subject(s) have no observed target" in w for w in s["warnings"])
    assert s["rows_read"] == {"observations": len(obs)}
    np.testing.assert_allclose(s["fraction_observed"], c.mask.sum() / (c.lengths.sum() * 2))
