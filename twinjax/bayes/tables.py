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

from twinjax.bayes.data import TwinData, check_positive, check_times, pad_groups
from twinjax.bayes.doses import BOLUS, INFUSION, ORAL, Doses
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
    ss_col: str = "ss",
    ii_col: str = "ii",
    covariate_cols: tuple[str, ...] = (),
    scale_covariates: bool = False,
    time_centre: float = 0.0,
    error_model: ErrorModel = "additive",
    drop_nonpositive: bool = False,
) -> TwinData:
    """:class:`TwinData` with a :class:`~twinjax.bayes.pk_routes.Doses` regimen from long tables.

    ``doses`` None and an ``amount_col`` column in ``observations``: an event table (split by
    :func:`split_events`). No doses at all: a regimen of one zero-amount dose per subject.
    Doses all oral: ``route`` and ``duration`` None (see :class:`~twinjax.bayes.pk_routes.Doses`).
    A dose with a nonzero ``ss_col`` is a steady-state dose repeated every ``ii_col`` (NONMEM's
    SS=1 and II). Covariates (:func:`covariate_design`): numeric ones centred on the mean over
    subjects (and divided by their SD with ``scale_covariates``), others treatment-coded.

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
    check_times(obs, time_col, "observations", "observations")
    obs = obs.sort_values([subject_col, time_col], kind="stable")
    obs = check_positive(obs, value_col, error_model, drop_nonpositive)
    if doses is None or not len(doses):
        doses = pd.DataFrame(
            {subject_col: pd.Series([], dtype=object), time_col: [], amount_col: []}
        )
    doses = doses.assign(**{time_col: _numeric(doses, time_col, "doses"),
                            amount_col: _numeric(doses, amount_col, "doses")})  # fmt: skip
    check_times(doses, time_col, "doses", "doses")
    route = _routes(doses, route_col, default_route)
    duration = _durations(doses, route, doses[amount_col].to_numpy(), duration_col, rate_col)
    ss, ii = _steady_state(doses, route, duration, ss_col, ii_col)
    doses = doses.assign(_route=route, _duration=duration, _ss=ss, _ii=ii)
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
        times=pad_groups([g[time_col].to_numpy() - time_centre for g in dose_groups], 0.0),
        amounts=pad_groups([g[amount_col].to_numpy() for g in dose_groups], 0.0),
        route=None if all_oral else pad_groups([g["_route"].to_numpy() for g in dose_groups], 0.0),
        duration=None if all_oral else pad_groups([g["_duration"].to_numpy() for g in dose_groups], 0.0),
        ss=None if not ss.any() else pad_groups([g["_ss"].to_numpy() for g in dose_groups], 0.0),
        ii=None if not ss.any() else pad_groups([g["_ii"].to_numpy() for g in dose_groups], 0.0),
    )
    cov, names, info = covariate_design(
        _static(static, subject_col), covariate_cols, ids, scale=scale_covariates
    )
    lengths = np.array([len(v) for v in y])
    return TwinData(
        times=pad_groups(t, 0.0),
        values=pad_groups(y, 1.0),  # padding 1.0 keeps log-scale likelihoods finite; it is masked
        mask=np.arange(max(lengths))[None, :] < lengths[:, None],
        regimen=regimen,
        covariates=cov,
        subject_ids=ids,
        covariate_names=names,
        covariate_info=info,
        time_centre=float(time_centre),
    )


def _static(static: pd.DataFrame | None, subject_col: str) -> pd.DataFrame:
    if static is None:
        return pd.DataFrame()
    return static.set_index(subject_col)


def _steady_state(doses, route, duration, ss_col, ii_col) -> tuple[np.ndarray, np.ndarray]:
    """(ss flags, intervals) of the dose rows; checked: an interval > 0 for each steady-state dose,
    and an infusion no longer than its interval."""
    if ss_col not in doses.columns:
        return np.zeros(len(doses)), np.zeros(len(doses))
    ss = np.nan_to_num(_numeric(doses, ss_col, "doses"))
    if not np.isin(ss, (0.0, 1.0)).all():
        raise CohortError("ss is 0 or 1 (NONMEM's SS=1)", source="doses",
                          rows=doses.index[~np.isin(ss, (0.0, 1.0))], column=ss_col)  # fmt: skip
    if ii_col not in doses.columns:
        if ss.any():
            raise CohortError(f"steady-state doses need an interval column {ii_col!r}",
                              source="doses", rows=doses.index[ss > 0])  # fmt: skip
        return ss, np.zeros(len(doses))
    ii = np.nan_to_num(_numeric(doses, ii_col, "doses"))
    bad = doses.index[(ss > 0) & ~(ii > 0)]
    if len(bad):
        raise CohortError(f"steady-state doses need {ii_col!r} > 0", source="doses", rows=bad)
    long = doses.index[(ss > 0) & (route == INFUSION) & (duration > ii)]
    if len(long):
        raise CohortError(
            f"a steady-state infusion longer than its interval {ii_col!r}",
            source="doses",
            rows=long,
        )
    return ss, np.where(ss > 0, ii, 0.0)


def covariate_design(
    static: pd.DataFrame, columns, ids, *, scale: bool = False
) -> tuple[np.ndarray, tuple[str, ...], tuple[tuple, ...]]:
    """The covariate matrix ``[subjects, columns]`` of the static table (indexed by subject).

    Numeric columns are centred on their mean over ``ids`` (and divided by their SD with
    ``scale``); other columns are treatment-coded against their first level in sorted order, one
    0/1 column ``name[level]`` per other level.

    Returns:
        ``(matrix, column names, info)`` with one info entry per covariate:
        ``(name, "continuous", centre, scale)`` or ``(name, "categorical", reference, levels)``.

    Example:
        >>> st = pd.DataFrame({"Age": [30.0, 50.0], "Sex": ["M", "F"]}, index=["a", "b"])
        >>> x, names, info = covariate_design(st, ["Age", "Sex"], ["a", "b"])
        >>> x.tolist(), names, info[1]
        ([[-10.0, 1.0], [10.0, 0.0]], ('Age', 'Sex[M]'), ('Sex', 'categorical', 'F', ('F', 'M')))
    """
    columns = list(columns)
    if not columns:
        return np.zeros((len(ids), 0)), (), ()
    missing_cols = [c for c in columns if c not in static.columns]
    if missing_cols:
        raise CohortError(f"no covariate columns {missing_cols}; found {list(static.columns)}",
                          source="static")  # fmt: skip
    table = static.reindex(list(ids))[columns]
    absent = [s for s, row in zip(ids, table.isna().any(axis=1), strict=True) if row]
    if absent:
        raise CohortError(f"covariates missing for subjects {absent}", source="static")
    blocks, names, info = [], [], []
    for c in columns:
        col = table[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.to_numpy(dtype=np.float64)
            centre, sd = float(x.mean()), float(x.std()) if scale else 1.0
            blocks.append(((x - centre) / (sd or 1.0))[:, None])
            names.append(c)
            info.append((c, "continuous", centre, sd or 1.0))
            continue
        text = col.astype(str)
        levels = tuple(sorted(text.unique()))
        blocks.append(np.stack([(text == lv).to_numpy(float) for lv in levels[1:]], -1)
                      if len(levels) > 1 else np.zeros((len(ids), 0)))  # fmt: skip
        names += [f"{c}[{lv}]" for lv in levels[1:]]
        info.append((c, "categorical", levels[0], levels))
    return np.concatenate(blocks, axis=1), tuple(names), tuple(info)


def covariate_columns(data: TwinData, covariate: str) -> tuple[str, ...]:
    """The design columns of ``covariate``: itself (continuous) or its ``name[level]`` columns."""
    cols = tuple(n for n in data.covariate_names if n == covariate or n.startswith(f"{covariate}["))
    if not cols:
        raise ValueError(f"no covariate {covariate!r}; the data have {list(data.covariate_names)}")
    return cols
