"""Row-level validation of the long-format cohort tables.

Each table is wrapped in a :class:`Table` that keeps the user-facing row labels (line numbers for CSV,
record numbers for Parquet, index labels for DataFrames) next to a ``keep`` mask. A check computes a
boolean "bad" mask over all rows with vectorized pandas/numpy code and hands it to :meth:`Table.flag`,
which either raises a :class:`CohortError` naming the file, the rows, the column and the fix, or (with
``drop_bad_rows=True``) clears those rows from ``keep`` and records them in the drop report. A row is
reported once, under the first check it fails.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from twinjax.data.errors import CohortError

_DROP_HINT = "fix or remove these rows, or pass drop_bad_rows=True to drop them"


@dataclass
class Table:
    """One input table under validation (rows are positional; ``labels`` are what the user sees)."""

    name: str  # "observations", "interventions" or "static"
    source: str  # the file path, or "<name> DataFrame"
    df: pd.DataFrame  # RangeIndex 0..n-1
    labels: np.ndarray  # user-facing row label of each row
    drop_bad_rows: bool = False
    header_row: int | None = None  # the header's line number (CSV), named by column errors
    keep: np.ndarray = field(init=False)
    dropped: list = field(default_factory=list)

    def __post_init__(self):
        self.keep = np.ones(len(self.df), dtype=bool)

    def flag(self, bad, *, column: str, reason: str, fix: str = _DROP_HINT) -> None:
        """Raises for (or, with ``drop_bad_rows``, drops) the kept rows where ``bad`` is True."""
        bad = np.asarray(bad, dtype=bool) & self.keep
        if not bad.any():
            return
        rows = self.labels[bad].tolist()
        if not self.drop_bad_rows:
            raise CohortError(f"{reason}; {fix}", source=self.source, rows=rows, column=column)
        self.keep &= ~bad
        self.dropped.append(
            {
                "table": self.name,
                "source": self.source,
                "column": column,
                "reason": reason,
                "count": len(rows),
                "rows": rows,
            }
        )

    def kept(self) -> pd.DataFrame:
        return self.df[self.keep]


def check_columns(table: Table, required: list[str], *, exclusive: bool, options: dict) -> None:
    """Missing required columns, and (if ``exclusive``) unknown ones, always raise."""
    found = list(table.df.columns)
    for col in required:
        if col not in found:
            opt = options.get(col)
            how = f" or pass {opt}=<its name>" if opt else ""
            raise CohortError(
                f"missing required column; found columns {found}: rename the column{how}",
                source=table.source,
                rows=_header(table),
                column=col,
            )
    if exclusive:
        for col in found:
            if col not in required:
                raise CohortError(
                    f"unknown column; this table must have exactly the columns {required}: "
                    "remove it (or, if it is one of them under another name, pass its name via "
                    f"{sorted(v for v in options.values() if v)})",
                    source=table.source,
                    rows=_header(table),
                    column=col,
                )


def _header(table: Table):
    return None if table.header_row is None else [table.header_row]


def check_present(table: Table, column: str) -> None:
    """NaN or empty identifiers (subject, variable, kind)."""
    col = table.df[column]
    bad = col.isna().to_numpy()
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        bad = bad | (col.astype(str).str.strip() == "").to_numpy()
    table.flag(bad, column=column, reason="missing value")


def check_numeric(table: Table, column: str, *, nonnegative: bool = False) -> np.ndarray:
    """Missing, non-numeric, infinite (and optionally negative) values; returns the column as float64."""
    col = table.df[column]
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        raise CohortError(
            "dates/durations are not supported: convert them to numbers in the unit of `step` "
            "(e.g. hours since each subject's start)",
            source=table.source,
            column=column,
        )
    num = pd.to_numeric(col, errors="coerce") if not _is_real(col) else col
    x = num.to_numpy(dtype=np.float64, na_value=np.nan)
    table.flag(col.isna().to_numpy(), column=column, reason="missing value (NaN or empty)")
    table.flag(np.isnan(x), column=column, reason="non-numeric value; values must be numbers")
    table.flag(np.isinf(x), column=column, reason="infinite value")
    if nonnegative:
        table.flag(x < 0, column=column, reason="negative time; times must be >= 0")
    return x


def _is_real(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def check_time_order(
    table: Table, subject: str, variable: str, time_col: str, time: np.ndarray
) -> None:
    """Duplicate and unsorted timestamps for one subject and variable, in file order.

    Walking each (subject, variable) sequence in file order, a row whose time equals the latest time
    seen so far is a duplicate (the earlier row is kept); a row earlier than it is unsorted. Dropping
    both leaves every sequence strictly increasing.
    """
    rows = np.flatnonzero(table.keep)
    s_code = pd.factorize(table.df[subject].iloc[rows])[0].astype(np.int64)
    v_code, v_uniq = pd.factorize(table.df[variable].iloc[rows])
    key = s_code * max(len(v_uniq), 1) + v_code
    t = pd.Series(time[rows])
    prev = t.groupby(key, sort=False).cummax().groupby(key, sort=False).shift().to_numpy()
    dup = t.to_numpy() == prev
    if dup.any():
        earlier = []
        for r in np.flatnonzero(dup)[:10]:  # at most 10 look-ups, for the message
            same = (key[:r] == key[r]) & (time[rows[:r]] == time[rows[r]])
            earlier.append(table.labels[rows[np.argmax(same)]].item())
        table.flag(
            _scatter(len(table.df), rows[dup]),
            column=time_col,
            reason=f"duplicate timestamp: same subject, variable and time as row(s) {earlier}",
            fix="remove the repeats (keep one value per time), or pass drop_bad_rows=True "
            "to keep the first",
        )
    table.flag(
        _scatter(len(table.df), rows[t.to_numpy() < prev]),
        column=time_col,
        reason="unsorted timestamps: earlier than a previous row of the same subject and variable",
        fix="sort the rows by time within each subject and variable, or pass drop_bad_rows=True "
        "to drop the out-of-order rows",
    )


def _scatter(n: int, idx: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


def check_unique(table: Table, column: str) -> None:
    """One row per subject (static covariates); later repeats are the bad rows."""
    col = table.df[column][table.keep]
    dup = _scatter(
        len(table.df), np.flatnonzero(table.keep)[col.duplicated(keep="first").to_numpy()]
    )
    table.flag(
        dup,
        column=column,
        reason="duplicate subject: an earlier row has the same subject",
        fix="keep one row per subject, or pass drop_bad_rows=True to keep the first",
    )


def check_allowed(
    table: Table, column: str, allowed, *, reason: str, fix: str = _DROP_HINT
) -> None:
    """Rows whose ``column`` value is not among ``allowed``."""
    table.flag(
        ~table.df[column].isin(list(allowed)).to_numpy(), column=column, reason=reason, fix=fix
    )


class Columns(NamedTuple):
    """Column names of the long tables (``read_cohort``'s ``*_col`` options)."""

    subject: str = "subject_id"
    time: str = "time"
    variable: str = "variable"
    value: str = "value"
    kind: str = "kind"
    amount: str = "amount"

    def options(self) -> dict:
        return {name: f"{field}_col" for field, name in self._asdict().items()}


class Checked(NamedTuple):
    """The numeric columns of the rows that passed (or survived) validation."""

    obs: tuple  # (time, value) float64 arrays
    interventions: tuple  # (time, amount); empty arrays without an intervention table
    static: np.ndarray  # [kept static rows, covariates]


def validate_tables(obs: Table, itv: Table | None, sta: Table | None, c: Columns, kinds) -> Checked:
    """All checks of :func:`twinjax.data.io.read_cohort`, in a fixed order (first failure raises)."""
    check_columns(
        obs, [c.subject, c.time, c.variable, c.value], exclusive=True, options=c.options()
    )
    if itv is not None:
        itv_cols = [c.subject, c.time, c.kind, c.amount]
        check_columns(itv, itv_cols, exclusive=True, options=c.options())
    if sta is not None:
        check_columns(sta, [c.subject], exclusive=False, options=c.options())
    tables = [t for t in (obs, itv, sta) if t is not None]
    for t in tables:
        check_present(t, c.subject)
    harmonize_ids(tables, c.subject)

    check_present(obs, c.variable)
    obs_t = check_numeric(obs, c.time, nonnegative=True)
    obs_v = check_numeric(obs, c.value)
    check_time_order(obs, c.subject, c.variable, c.time, obs_t)
    covariates = np.zeros((0, 0)) if sta is None else _check_static(sta, c.subject)
    itv_t = itv_a = np.zeros(0)
    if itv is not None:
        itv_t, itv_a = _check_interventions(itv, c, kinds)
    check_subjects(obs, itv, sta, c.subject)
    if not obs.keep.any():
        raise CohortError("no valid observations", source=obs.source)
    kept = lambda t, x: x if t is None else x[t.keep]
    return Checked(
        (obs_t[obs.keep], obs_v[obs.keep]),
        (kept(itv, itv_t), kept(itv, itv_a)),
        kept(sta, covariates),
    )


def _check_static(sta: Table, subject: str) -> np.ndarray:
    cols = [check_numeric(sta, name) for name in sta.df.columns if name != subject]
    check_unique(sta, subject)
    return np.stack(cols, axis=1) if cols else np.zeros((len(sta.df), 0))


def _check_interventions(itv: Table, c: Columns, allowed) -> tuple[np.ndarray, np.ndarray]:
    check_present(itv, c.kind)
    if allowed is not None:
        check_allowed(
            itv,
            c.kind,
            allowed,
            reason=f"unknown intervention kind; allowed kinds are {list(allowed)}",
            fix="fix the kind, add it to intervention_kinds, or pass drop_bad_rows=True",
        )
    return check_numeric(itv, c.time, nonnegative=True), check_numeric(itv, c.amount)


def harmonize_ids(tables: list[Table], col: str) -> None:
    """If the subject columns mix numbers and strings across tables, compares them as strings."""
    kinds = {pd.api.types.is_numeric_dtype(_base_dtype(t.df[col])) for t in tables}
    if len(kinds) < 2:
        return
    for t in tables:
        s = t.df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(s.cat.categories.dtype)
        if pd.api.types.is_float_dtype(s) and np.all(np.mod(s.dropna(), 1) == 0):
            s = s.astype("Int64")
        t.df[col] = s.astype(str).where(s.notna(), None)


def _base_dtype(s: pd.Series):
    return s.cat.categories.dtype if isinstance(s.dtype, pd.CategoricalDtype) else s.dtype


def check_subjects(obs: Table, itv: Table | None, sta: Table | None, col: str) -> None:
    """Cross-table subject checks (see :func:`twinjax.data.io.read_cohort`)."""
    if sta is not None:
        has_static = obs.df[col].isin(sta.kept()[col]).to_numpy()
        lacking = obs.keep & ~has_static
        missing = pd.unique(obs.df[col][lacking])
        if len(missing) and not obs.drop_bad_rows:
            seen = obs.labels[lacking][:5].tolist()
            raise CohortError(
                f"no static covariates for observed subject(s) {list(missing[:10])} (observed in "
                f"{obs.source} row(s) {seen}...): add one row of covariates per subject, or pass "
                "drop_bad_rows=True to drop their observations",
                source=sta.source,
                column=col,
            )
        obs.flag(
            ~has_static, column=col, reason=f"subject has no static covariates in {sta.source}"
        )
    observed = obs.kept()[col].unique()
    no_obs = f"subject without observations (no valid row in {obs.source})"
    fix = "remove these rows or add the subject's observations, or pass drop_bad_rows=True"
    if itv is not None:
        known = sta.df[col] if sta is not None else []
        in_static = itv.df[col].isin(known).to_numpy() & ~itv.df[col].isin(observed).to_numpy()
        itv.flag(in_static, column=col, reason=no_obs, fix=fix)
        where = obs.source + ("" if sta is None else f" nor {sta.source}")
        check_allowed(itv, col, observed, reason=f"unknown subject: not in {where}", fix=fix)
    if sta is not None:
        check_allowed(sta, col, observed, reason=no_obs, fix=fix)
