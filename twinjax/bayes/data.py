"""Padded per-individual arrays for hierarchical twins, built from long tables and checked.

Bad input and how it is handled (each case is tested in ``tests/bayes/test_bayes_data.py``):

- observations or doses at negative times: a ``CohortError`` naming the rows;
- non-positive observations under a log-scale error model: error naming the rows, unless
  ``drop_nonpositive=True``, which masks them out with a warning;
- a subject with a single observation: kept. Partial pooling makes its parameters identifiable
  (they shrink to the population); its credible intervals are correspondingly wide. A subject with
  no observation at all is an error;
- covariates missing (NaN) for some subjects: error naming the subjects, unless
  ``impute_covariates=True``, which fills each missing value with the mean of the observed subjects
  (0 for centred covariates) with a warning and records the subjects in ``imputed``.
"""

import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from jaxtyping import Bool, Float

from twinjax.bayes.residual import LOG_SCALE, ErrorModel, check_error_model
from twinjax.data.errors import CohortError


class TwinData(NamedTuple):
    """A cohort for hierarchical twins; row ``i`` of every array is individual ``i``.

    ``regimen`` is any pytree whose leaves have a leading individuals axis (for PK models,
    ``(dose_times [N, D], dose_amounts [N, D])`` with zero-amount padding).
    """

    times: Float[np.ndarray, "individuals obs"]
    values: Float[np.ndarray, "individuals obs"]
    mask: Bool[np.ndarray, "individuals obs"]
    regimen: Any
    covariates: Float[np.ndarray, "individuals covariates"]
    subject_ids: tuple = ()
    covariate_names: tuple = ()
    imputed: tuple = ()  # subjects whose covariates were imputed
    time_centre: float = 0.0  # subtracted from every time (observations and doses)
    # per covariate: (name, "continuous", centre, scale) or (name, "categorical", reference, levels)
    covariate_info: tuple = ()


def pad_groups(groups: list[np.ndarray], fill: float) -> np.ndarray:
    width = max(1, max(len(g) for g in groups))
    out = np.full((len(groups), width), fill, dtype=np.float64)
    for i, g in enumerate(groups):
        out[i, : len(g)] = g
    return out


def check_times(frame: pd.DataFrame, col: str, what: str, source: str) -> None:
    bad = frame.index[frame[col].to_numpy() < 0]
    if len(bad):
        raise CohortError(
            f"{what} at negative times; times are measured from the start of follow-up (>= 0)",
            source=source,
            rows=bad,
            column=col,
        )


def check_positive(obs, value_col, error_model, drop_nonpositive) -> pd.DataFrame:
    if error_model not in LOG_SCALE:
        return obs
    bad = obs.index[obs[value_col].to_numpy() <= 0]
    if not len(bad):
        return obs
    if not drop_nonpositive:
        raise CohortError(
            f"non-positive values under the log-scale error model {error_model!r}; use an "
            "additive/combined model, or pass drop_nonpositive=True to leave them out",
            source="observations",
            rows=bad,
            column=value_col,
        )
    warnings.warn(
        f"dropping {len(bad)} non-positive observations (rows {list(bad)[:10]})", stacklevel=3
    )
    return obs.drop(index=bad)


def _covariates(per_subject, cols, ids, impute) -> tuple[np.ndarray, tuple]:
    if not cols:
        return np.zeros((len(ids), 0)), ()
    cov = per_subject.reindex(ids)[list(cols)].to_numpy(dtype=np.float64)
    missing = np.isnan(cov)
    if not missing.any():
        return cov, ()
    who = tuple(ids[i] for i in np.flatnonzero(missing.any(axis=1)))
    if not impute:
        raise CohortError(
            f"covariates missing for subjects {list(who)}; pass impute_covariates=True to fill "
            "them with the cohort mean, or drop those subjects",
            source="covariates",
        )
    warnings.warn(
        f"imputing missing covariates with the cohort mean for subjects {list(who)}", stacklevel=3
    )
    means = np.nanmean(cov, axis=0)
    return np.where(missing, means[None, :], cov), who


def pk_data_from_frames(
    obs: pd.DataFrame,
    doses: pd.DataFrame | None = None,
    *,
    subject_col: str = "subject",
    time_col: str = "time",
    value_col: str = "conc",
    amount_col: str = "amount",
    covariates: pd.DataFrame | None = None,
    covariate_cols: tuple[str, ...] = (),
    error_model: ErrorModel = "additive",
    drop_nonpositive: bool = False,
    impute_covariates: bool = False,
) -> TwinData:
    """Builds :class:`TwinData` for a PK twin from long tables of observations and doses.

    ``obs`` has one row per measurement (subject, time, value); ``doses`` one row per dose
    (subject, time, amount), or None for a cohort without doses; ``covariates`` one row per
    subject (indexed by ``subject_col`` column).
    """
    check_error_model(error_model)
    if doses is None:
        doses = pd.DataFrame({subject_col: [], time_col: [], amount_col: []})
    obs = obs.dropna(subset=[value_col])
    check_times(obs, time_col, "observations", "observations")
    check_times(doses, time_col, "doses", "doses")
    obs = check_positive(obs, value_col, error_model, drop_nonpositive)
    ids = tuple(sorted(set(obs[subject_col]) | set(doses[subject_col])))
    by_obs, by_dose = obs.groupby(subject_col), doses.groupby(subject_col)
    empty = [s for s in ids if s not in by_obs.groups]
    if empty:
        raise CohortError(f"subjects {empty} have doses but no observations", source="observations")
    t = [by_obs.get_group(s)[time_col].to_numpy() for s in ids]
    y = [by_obs.get_group(s)[value_col].to_numpy() for s in ids]
    dose_t, dose_a = [], []
    for s in ids:
        g = by_dose.get_group(s) if s in by_dose.groups else doses.iloc[:0]
        dose_t.append(g[time_col].to_numpy())
        dose_a.append(g[amount_col].to_numpy())
    table = covariates if covariates is not None else obs.groupby(subject_col).first()
    if covariates is not None and subject_col in table.columns:
        table = table.set_index(subject_col)
    cov, imputed = _covariates(table, covariate_cols, list(ids), impute_covariates)
    lengths = np.array([len(v) for v in y])
    mask = np.arange(max(lengths))[None, :] < lengths[:, None]
    return TwinData(
        times=pad_groups(t, 0.0),
        values=pad_groups(y, 1.0),  # padding 1.0 keeps log-scale likelihoods finite; it is masked
        mask=mask,
        regimen=(pad_groups(dose_t, 0.0), pad_groups(dose_a, 0.0)),
        covariates=cov,
        subject_ids=ids,
        covariate_names=tuple(covariate_cols),
        imputed=imputed,
    )
