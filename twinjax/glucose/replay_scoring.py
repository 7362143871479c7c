"""Scores of counterfactual replays against the truth (:mod:`.replay`).

The input is one long table, a row per patient, therapy, model and outcome: ``subject_id``,
``group``, ``therapy``, ``model`` (``truth`` and the twins), ``outcome``, ``value`` and, for
models with draws, the central 90% interval ``lo``/``hi`` over the draws. Fractions are scored in
percentage points, the mean glucose in mg/dL.
"""

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

# the targets: median absolute error (points) per therapy and age group, and Spearman
TARGETS = {"tir": 3.0, "below70": 1.0}
RANK_TARGET = 0.9


def _points(table: pd.DataFrame) -> pd.DataFrame:
    """Fractions as percentage points (the mean glucose stays in mg/dL)."""
    scale = np.where(table["outcome"] == "mean", 1.0, 100.0)
    out = table.copy()
    for c in ("value", "lo", "hi"):
        if c in out:
            out[c] = out[c] * scale
    return out


def errors(table: pd.DataFrame) -> pd.DataFrame:
    """Per model, therapy, group and outcome: the median over patients of ``|model - truth|``
    (points; mg/dL for the mean), with a row ``group="all"`` over every patient."""
    t = _points(table)
    keys = ["subject_id", "group", "therapy", "outcome"]
    truth = t[t["model"] == "truth"].set_index(keys)["value"]
    models = t[t["model"] != "truth"].set_index(keys)
    err = models.assign(abs_error=(models["value"] - truth.reindex(models.index)).abs())
    err = err.reset_index()
    by = err.groupby(["model", "therapy", "group", "outcome"], sort=False)["abs_error"].median()
    every = err.groupby(["model", "therapy", "outcome"], sort=False)["abs_error"].median()
    every = every.reset_index().assign(group="all")
    return pd.concat([by.reset_index(), every], ignore_index=True)


def rank_agreement(table: pd.DataFrame, outcome: str = "tir") -> pd.DataFrame:
    """Per patient and model: Spearman's correlation between the model's and the truth's
    ``outcome`` over the therapies (NaN where either does not vary)."""
    t = table[table["outcome"] == outcome]
    wide = t.pivot_table(index=["subject_id", "group", "therapy"], columns="model", values="value")
    rows = []
    for (sid, group), d in wide.groupby(level=[0, 1], sort=False):
        for model in [m for m in d.columns if m != "truth"]:
            x, y = d[model].to_numpy(), d["truth"].to_numpy()
            rho = np.nan if np.ptp(x) == 0 or np.ptp(y) == 0 else spearmanr(x, y).statistic
            rows.append({"subject_id": sid, "group": group, "model": model, "spearman": rho})
    return pd.DataFrame(rows)


def coverage(table: pd.DataFrame) -> pd.DataFrame:
    """Per model with intervals and outcome: the fraction of patient-therapies whose truth lies
    in the model's 90% interval over draws."""
    keys = ["subject_id", "therapy", "outcome"]
    truth = table[table["model"] == "truth"].set_index(keys)["value"]
    t = table[(table["model"] != "truth") & table["lo"].notna()].set_index(keys)
    y = truth.reindex(t.index)
    inside = (y >= t["lo"]) & (y <= t["hi"])
    return t.assign(inside=inside).groupby(["model", "outcome"], sort=False)["inside"].mean()


def targets_met(err: pd.DataFrame) -> pd.DataFrame:
    """Per model, therapy and group (not ``all``): whether each :data:`TARGETS` outcome's
    median absolute error is within its target."""
    e = err[err["outcome"].isin(list(TARGETS)) & (err["group"] != "all")]
    return e.assign(
        target=e["outcome"].map(TARGETS), met=e["abs_error"] <= e["outcome"].map(TARGETS)
    )


def crashed(table: pd.DataFrame, floor: float = 1.0) -> list[str]:
    """Patients whose true mean glucose on the replayed days under the recorded therapy is below
    ``floor`` mg/dL: their simulated glucose fell to 0 (the UVa/Padova model in simglucose has no
    floor), so every outcome is 100% below 54 whatever the therapy and nothing can be ranked."""
    t = table[(table["model"] == "truth") & (table["therapy"] == "recorded")]
    t = t[t["outcome"] == "mean"]
    return sorted(t.loc[t["value"] < floor, "subject_id"])
