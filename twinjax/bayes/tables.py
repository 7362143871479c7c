"""Long-format files to :class:`~twinjax.bayes.data.TwinData`: series with or without doses.

Observations: one row per measurement (``subject_id, time, value``, and a ``variable`` column when
the file holds several outcomes). Doses (optional): one row per dose (``subject_id, time,
amount``, a route column ``kind`` with ``bolus``/``iv``, ``oral``/``po`` or ``infusion``, and for
infusions a ``duration`` or a ``rate``). An event table holds both in one file: rows with an
amount are doses, rows with a value are observations, NA in the column that does not apply.
Static covariates (optional): one row per subject; numeric columns, centred on the cohort mean.

Times may be centred (``time_centre``: subtracted from every observation and dose time); the
centre travels in ``TwinData.time_centre`` so outputs can report it. Subjects are ordered
numerically when every id is a number, else as text.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from twinjax.bayes.data import TwinData, _check_positive, _check_times, _covariates, _pad
from twinjax.bayes.pk_routes import BOLUS, INFUSION, ORAL, Doses
from twinjax.bayes.residual import ErrorModel, check_error_model
from twinjax.data.errors import CohortError

ROUTE_NAMES = {
    "bolus": BOLUS, "iv": BOLUS, "iv_bolus": BOLUS, "dose": BOLUS,
    "oral": ORAL, "po": ORAL, "infusion": INFUSION, "iv_infusion": INFUSION,
}  # fmt: skip


def read_long(path: str | Path, subject_col: str = "subject_id") -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet table; subject ids are read as text."""
    path = Path(path)
    if not path.is_file():
        raise CohortError("no such file", source=str(path))
    if path.suffix.lower() == ".parquet":
        df = pd.read_parquet(path)
        return df.astype({subject_col: str}) if subject_col in df.columns else df
    return pd.read_csv(path, dtype={subject_col: str})


def split_events(
    table: pd.DataFrame, *, value_col: str = "value", amount_col: str = "amount", source="events"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observations, doses) of an event table: rows with a value, rows with an amount."""
    has_value, has_amount = table[value_col].notna(), table[amount_col].notna()
    both, neither = table.index[has_value & has_amount], table.index[~has_value & ~has_amount]
    for rows, what in ((both, "both a value and an amount"), (neither, "neither")):
        if len(rows):
            raise CohortError(
                f"event rows with {what}: each row is an observation (value) or a dose (amount)",
                source=source,
                rows=rows,
            )
    return table[has_value], table[has_amount]


def _one_variable(obs: pd.DataFrame, variable_col: str, variable: str | None) -> pd.DataFrame:
    if variable_col not in obs.columns:
        return obs
    names = sorted(obs[variable_col].dropna().astype(str).unique())
    if variable is None:
        if len(names) > 1:
            raise CohortError(
                f"the observations hold several variables {names}; choose one (variable=...)",
                source="observations",
                column=variable_col,
            )
        return obs
    if variable not in names:
        raise CohortError(f"no variable {variable!r}; found {names}", source="observations")
    return obs[obs[variable_col].astype(str) == variable]


def _numeric(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    if col not in frame.columns:
        raise CohortError(f"missing column {col!r}; found {list(frame.columns)}", source=source)
    x = pd.to_numeric(frame[col], errors="coerce")
    bad = frame.index[x.isna() & frame[col].notna()]
    if len(bad):
        raise CohortError("not a number", source=source, rows=bad, column=col)
    return x.to_numpy(dtype=np.float64)


def _routes(doses: pd.DataFrame, route_col: str, default: str) -> np.ndarray:
    if route_col not in doses.columns:
        return np.full(len(doses), ROUTE_NAMES[default], dtype=np.float64)
    names = doses[route_col].fillna(default).astype(str).str.strip().str.lower()
    bad = doses.index[~names.isin(list(ROUTE_NAMES))]
    if len(bad):
        raise CohortError(
            f"unknown dose route; use one of {sorted(ROUTE_NAMES)}",
            source="doses",
            rows=bad,
            column=route_col,
        )
    return names.map(ROUTE_NAMES).to_numpy(dtype=np.float64)


def _durations(doses, route, amount, duration_col, rate_col) -> np.ndarray:
    duration = np.zeros(len(doses))
    if duration_col in doses.columns:
        duration = np.nan_to_num(_numeric(doses, duration_col, "doses"))
    elif rate_col in doses.columns:
        rate = _numeric(doses, rate_col, "doses")
        with np.errstate(divide="ignore", invalid="ignore"):
            duration = np.where(rate > 0, amount / rate, 0.0)
    bad = doses.index[(route == INFUSION) & ~(duration > 0)]
    if len(bad):
        raise CohortError(
            f"infusions need a positive {duration_col!r} (or {rate_col!r})",
            source="doses",
            rows=bad,
        )
    return np.where(route == INFUSION, duration, 0.0)


def _order(ids) -> tuple:
    try:
        return tuple(sorted(ids, key=float))
    except (TypeError, ValueError):
        return tuple(sorted(ids, key=str))


def longitudinal_data(
    observations: pd.DataFrame,
    doses: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    *,
    subject_col: str = "subject_id",
    time_col: str = "time",
    value_col: str = "value",
    variable_col: str = "variable",
    variable: str | None = None,
    amount_col: str = "amount",
    route_col: str = "kind",
    duration_col: str = "duration",
    rate_col: str = "rate",
    default_route: str = "bolus",
    covariate_cols: tuple[str, ...] = (),
    time_centre: float = 0.0,
    error_model: ErrorModel = "additive",
    drop_nonpositive: bool = False,
) -> TwinData:
    """:class:`TwinData` with a :class:`~twinjax.bayes.pk_routes.Doses` regimen from long tables.

    ``doses`` None and an ``amount_col`` column in ``observations``: an event table (split by
    :func:`split_events`). No doses at all: a regimen of one zero-amount dose per subject.
    Doses all oral: ``route`` and ``duration`` None (see :class:`~twinjax.bayes.pk_routes.Doses`).
    Covariates are centred on the mean over subjects.

    Example:
        >>> obs = pd.DataFrame({"subject_id": ["b", "a", "a"], "time": [1.0, 0.0, 2.0],
        ...                     "value": [3.0, 1.0, 2.0]})
        >>> d = longitudinal_data(obs, time_centre=1.0)
        >>> d.subject_ids, d.times.tolist(), d.mask.tolist()
        (('a', 'b'), [[-1.0, 1.0], [0.0, 0.0]], [[True, True], [True, False]])
    """
    check_error_model(error_model)
    if doses is None and amount_col in observations.columns:
        observations, doses = split_events(observations, value_col=value_col, amount_col=amount_col)
    obs = _one_variable(observations, variable_col, variable)
    obs = obs[obs[value_col].notna()] if value_col in obs.columns else obs
    obs = obs.assign(**{time_col: _numeric(obs, time_col, "observations"),
                        value_col: _numeric(obs, value_col, "observations")})  # fmt: skip
    _check_times(obs, time_col, "observations", "observations")
    obs = obs.sort_values([subject_col, time_col], kind="stable")
    obs = _check_positive(obs, value_col, error_model, drop_nonpositive)
    if doses is None or not len(doses):
        doses = pd.DataFrame(
            {subject_col: pd.Series([], dtype=object), time_col: [], amount_col: []}
        )
    doses = doses.assign(**{time_col: _numeric(doses, time_col, "doses"),
                            amount_col: _numeric(doses, amount_col, "doses")})  # fmt: skip
    _check_times(doses, time_col, "doses", "doses")
    route = _routes(doses, route_col, default_route)
    duration = _durations(doses, route, doses[amount_col].to_numpy(), duration_col, rate_col)
    doses = doses.assign(_route=route, _duration=duration)
    ids = _order(set(obs[subject_col]))
    strays = sorted(set(doses[subject_col]) - set(ids), key=str)
    if strays:
        raise CohortError(f"subjects {strays} have doses but no observations", source="doses")
    by_obs, by_dose = obs.groupby(subject_col), doses.groupby(subject_col)
    dose_groups = [by_dose.get_group(s) if s in by_dose.groups else doses.iloc[:0] for s in ids]
    t = [by_obs.get_group(s)[time_col].to_numpy() - time_centre for s in ids]
    y = [by_obs.get_group(s)[value_col].to_numpy() for s in ids]
    all_oral = len(doses) > 0 and bool(np.all(route == ORAL))
    regimen = Doses(
        times=_pad([g[time_col].to_numpy() - time_centre for g in dose_groups], 0.0),
        amounts=_pad([g[amount_col].to_numpy() for g in dose_groups], 0.0),
        route=None if all_oral else _pad([g["_route"].to_numpy() for g in dose_groups], 0.0),
        duration=None if all_oral else _pad([g["_duration"].to_numpy() for g in dose_groups], 0.0),
    )
    cov, _ = _covariates(_static(static, subject_col), covariate_cols, list(ids), False)
    lengths = np.array([len(v) for v in y])
    return TwinData(
        times=_pad(t, 0.0),
        values=_pad(y, 1.0),  # padding 1.0 keeps log-scale likelihoods finite; it is masked
        mask=np.arange(max(lengths))[None, :] < lengths[:, None],
        regimen=regimen,
        covariates=cov - cov.mean(axis=0, keepdims=True),
        subject_ids=ids,
        covariate_names=tuple(covariate_cols),
        time_centre=float(time_centre),
    )


def _static(static: pd.DataFrame | None, subject_col: str) -> pd.DataFrame:
    if static is None:
        return pd.DataFrame()
    return static.set_index(subject_col)
