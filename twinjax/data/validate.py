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
from twinjax.data.times import TimeKind, parse_times

# The model computes in float32: values, amounts and covariates must have finite squares there.
FLOAT32_SAFE = float(np.sqrt(np.finfo(np.float32).max))  # about 1.8e19
_DROP_HINT = "fix or remove these rows, or pass drop_bad_rows=True to drop them"


class RowLabels:
    """Row labels ``file:record`` of rows from several files, made into text only when shown."""

    def __init__(self, files: list[str], file: np.ndarray, record: np.ndarray):
        self.files, self.file, self.record = files, file, record

    def __len__(self) -> int:
        return len(self.record)

    def __getitem__(self, ix):
        if isinstance(ix, int | np.integer):
            return f"{self.files[self.file[ix]]}:{self.record[ix]}"
        return RowLabels(self.files, self.file[ix], self.record[ix])

    def tolist(self) -> list[str]:
        return [self[i] for i in range(len(self))]


@dataclass
class Table:
    """One input table under validation (rows are positional; ``labels`` are what the user sees)."""

    name: str  # "observations", "interventions" or "static"
    source: str  # the file path, or "<name> DataFrame"
    df: pd.DataFrame  # RangeIndex 0..n-1
    labels: np.ndarray | RowLabels  # user-facing row label of each row
    drop_bad_rows: bool = False
    header_row: int | None = None  # the header's line number (CSV), named by column errors
    notes: list = field(default_factory=list)  # how the table was read or handled (reported)
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
    glued = [d for d in (",", ";", "\t", "|") if len(found) == 1 and d in str(found[0])]
    for col in required:
        if col not in found:
            opt = options.get(col)
            how = f" or pass {opt}=<its name>" if opt else ""
            if glued:
                how = f" (the header looks separated by {glued[0]!r}: pass sep={glued[0]!r})"
            raise CohortError(
                f"missing required column; found columns {found}: rename the column{how}",
                source=table.source,
                rows=_header(table),
                column=col,
            )
    if exclusive:
        for col in found:
            if col not in required:
                unnamed = " (a column without a name: a delimiter at the end of the header?)"
                raise CohortError(
                    f"unknown column{unnamed if col.startswith('Unnamed: ') else ''}; this table "
                    f"must have exactly the columns {required}: remove it (or, if it is one of "
                    "them under another name, pass its name via "
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


def check_numeric(table: Table, column: str) -> np.ndarray:
    """Missing, non-numeric, infinite and float32-unsafe values; returns the column as float64.

    Booleans are read as 0/1 (noted on the table).
    """
    col = table.df[column]
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        raise CohortError(
            f"dates/durations are not supported in this column (dtype {col.dtype}): it must hold "
            "numbers",
            source=table.source,
            column=column,
        )
    if pd.api.types.is_bool_dtype(col):
        table.notes.append(f"{table.source}: column {column!r} is boolean, read as 0/1")
    num = pd.to_numeric(col, errors="coerce") if not _is_real(col) else col
    x = num.to_numpy(dtype=np.float64, na_value=np.nan)
    table.flag(col.isna().to_numpy(), column=column, reason="missing value (NaN or empty)")
    table.flag(np.isnan(x), column=column, reason="non-numeric value; values must be numbers")
    table.flag(np.isinf(x), column=column, reason="infinite value")
    table.flag(
        np.abs(x) > FLOAT32_SAFE,
        column=column,
        reason=f"value beyond the float32-safe range |x| <= {FLOAT32_SAFE:.2g} (the twins compute "
        "in float32, where the square of a larger value overflows)",
        fix="check the column's unit and rescale it (e.g. divide by 1e6), or pass "
        "drop_bad_rows=True to drop these rows",
    )
    return x


def check_time(table: Table, column: str) -> tuple[np.ndarray, TimeKind, bool]:
    """Times as numbers (>= 0) or datetimes (seconds since 1970); returns (times, kind, zoned)."""
    parsed = parse_times(table.df[column])
    x = parsed.values
    table.flag(parsed.missing, column=column, reason="missing value (NaN or empty)")
    if parsed.kind == "datetime":
        table.flag(
            np.isnan(x),
            column=column,
            reason="not a time: this column holds dates/times, and this cell is not an ISO-8601 "
            "time (e.g. 2024-03-01T08:30:00)",
        )
    else:
        table.flag(np.isnan(x), column=column, reason="non-numeric value; values must be numbers")
        table.flag(np.isinf(x), column=column, reason="infinite value")
        table.flag(x < 0, column=column, reason="negative time; times must be >= 0")
    return x, parsed.kind, parsed.zoned


def _is_real(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def check_duplicates(
    table: Table, subject: str, variable: str, time_col: str, time: np.ndarray, value: np.ndarray
) -> int:
    """Repeated (subject, variable, time) rows; returns how many exact repeats were removed.

    Rows may come in any order (alignment sorts them). A repeat of an earlier row with the same
    value is removed and counted (exports often repeat rows); a repeat with a different value is a
    conflict: an error naming both rows (or, with ``drop_bad_rows``, the first value is kept).
    """
    rows = np.flatnonzero(table.keep)
    key = pd.DataFrame(
        {
            "s": pd.factorize(table.df[subject].iloc[rows])[0],
            "v": pd.factorize(table.df[variable].iloc[rows])[0],
            "t": time[rows],
        }
    )
    group = key.groupby(["s", "v", "t"], sort=False).ngroup().to_numpy()
    repeat = key.duplicated(keep="first").to_numpy()
    if not repeat.any():
        return 0
    first = pd.Series(np.arange(len(rows))).groupby(group).transform("first").to_numpy()
    same = repeat & (value[rows] == value[rows[first]])
    table.keep[rows[same]] = False
    conflict = repeat & ~same
    if conflict.any():
        earlier = sorted(
            {plain_label(table.labels[rows[first[r]]]) for r in np.flatnonzero(conflict)[:10]}
        )
        table.flag(
            _scatter(len(table.df), rows[conflict]),
            column=time_col,
            reason="duplicate timestamp with a different value: same subject, variable and time "
            f"as row(s) {earlier}",
            fix="keep one value per subject, variable and time, or pass drop_bad_rows=True to "
            "keep the first",
        )
    if same.any():
        table.notes.append(
            f"{table.source}: removed {int(same.sum())} exact repeat(s) of earlier rows (same "
            "subject, variable, time and value)"
        )
    return int(same.sum())


def plain_label(label):
    """A numpy scalar label as a Python one (text labels as they are)."""
    return label.item() if hasattr(label, "item") else label


def check_rows(table: Table, columns: list[str]) -> None:
    """A table with a header but no data rows."""
    if len(table.df) == 0:
        raise CohortError(
            f"the {table.name} table has no data rows (only a header with {columns}): add rows, "
            f"or leave the {table.name} table out",
            source=table.source,
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
    table: Table, column: str, allowed, *, reason: str, fix: str = _DROP_HINT, values=None
) -> None:
    """Rows whose ``column`` value (or ``values``, if given) is not among ``allowed``."""
    col = table.df[column] if values is None else values
    table.flag(~col.isin(list(allowed)).to_numpy(), column=column, reason=reason, fix=fix)


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
    """The columns of the rows that passed (or survived) validation."""

    obs: tuple  # (time, value) float64 arrays
    interventions: tuple  # (time, amount); empty arrays without an intervention table
    static: np.ndarray  # [kept static rows, covariates] (categoricals one-hot)
    static_names: list  # a numeric covariate's name; "name=level" for a categorical's levels
    static_levels: dict  # categorical covariate -> its levels, in one-hot order
    time_kind: TimeKind  # "number" or "datetime" (seconds since 1970)
    zoned: bool  # datetimes given with a time zone (read in UTC)
    repeats: int  # exact repeats of observation rows removed


def check_tables(obs: Table, itv: Table | None, sta: Table | None, c: Columns) -> None:
    """The table checks (columns, then data rows), observations first."""
    obs_cols = [c.subject, c.time, c.variable, c.value]
    check_columns(obs, obs_cols, exclusive=True, options=c.options())
    check_rows(obs, obs_cols)
    if itv is not None:
        itv_cols = [c.subject, c.time, c.kind, c.amount]
        check_columns(itv, itv_cols, exclusive=True, options=c.options())
        check_rows(itv, itv_cols)
    if sta is not None:
        check_columns(sta, [c.subject], exclusive=False, options=c.options())
        check_rows(sta, list(sta.df.columns))


def validate_tables(
    obs: Table,
    itv: Table | None,
    sta: Table | None,
    c: Columns,
    kinds,
    levels=None,
    *,
    chunk: bool = False,
    numeric: frozenset = frozenset(),
) -> Checked:
    """All checks of :func:`twinjax.data.io.read_cohort`, in a fixed order (first failure raises).

    With ``chunk=True`` the tables hold one chunk of subjects, whose table checks were made on
    the whole tables (a chunk may hold no intervention or static rows, or no valid observation);
    ``numeric`` names the static covariates read as numbers in every chunk.
    """
    if not chunk:
        check_tables(obs, itv, sta, c)
    tables = [t for t in (obs, itv, sta) if t is not None]
    for t in tables:
        check_present(t, c.subject)
    harmonize_ids(tables, c.subject)

    check_present(obs, c.variable)
    obs_t, kind, zoned = check_time(obs, c.time)
    obs_v = check_numeric(obs, c.value)
    repeats = check_duplicates(obs, c.subject, c.variable, c.time, obs_t, obs_v)
    covariates = [] if sta is None else _check_static(sta, c.subject, levels or {}, numeric)
    itv_t = itv_a = np.zeros(0)
    if itv is not None:
        itv_t, itv_a = _check_interventions(itv, c, kinds, kind, obs.source)
    check_subjects(obs, itv, sta, c.subject)
    if not (chunk or obs.keep.any()):
        raise CohortError("no valid observations", source=obs.source)
    static, names, used = _static_matrix(sta, covariates, levels or {})
    kept = lambda t, x: x if t is None else x[t.keep]
    return Checked(
        (obs_t[obs.keep], obs_v[obs.keep]),
        (kept(itv, itv_t), kept(itv, itv_a)),
        static,
        names,
        used,
        kind,
        zoned,
        repeats,
    )


def is_categorical(col: pd.Series) -> bool:
    """A categorical column, or text none of whose values is a number."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    present = col.dropna()
    return len(present) > 0 and bool(pd.to_numeric(present, errors="coerce").isna().all())


def _check_static(sta: Table, subject: str, levels: dict, numeric=frozenset()) -> list:
    """Each covariate as ``(name, float64 array)`` or, if categorical, ``(name, text Series)``."""
    out = []
    for name in sta.df.columns:
        if name == subject:
            continue
        col = sta.df[name]
        if name not in numeric and (name in levels or is_categorical(col)):
            check_present(sta, name)
            if name in levels:
                known = [str(v) for v in levels[name]]
                check_allowed(
                    sta,
                    name,
                    known,
                    reason=f"unseen level of the categorical covariate {name!r}; the known "
                    f"levels are {known}",
                    fix="map it to a known level, or pass drop_bad_rows=True to drop the subject",
                    values=col.astype(str),
                )
            out.append((name, col))
        else:
            out.append((name, check_numeric(sta, name)))
    check_unique(sta, subject)
    return out


def _static_matrix(sta: Table | None, covariates: list, levels: dict) -> tuple:
    """The kept rows' covariates: numeric columns as given, categoricals one-hot."""
    if sta is None:
        return np.zeros((0, 0)), [], {}
    blocks, names, used = [], [], {}
    for name, col in covariates:
        if isinstance(col, np.ndarray):
            blocks.append(col[sta.keep][:, None])
            names.append(name)
            continue
        kept = col[sta.keep]
        if name in levels:
            order = [str(v) for v in levels[name]]
        elif isinstance(col.dtype, pd.CategoricalDtype):
            order = [str(v) for v in col.cat.categories]
        else:
            order = sorted(kept.astype(str).unique().tolist())
        blocks.append((kept.astype(str).to_numpy()[:, None] == np.array(order)[None, :]) * 1.0)
        names += [f"{name}={level}" for level in order]
        used[name] = order
    n = int(sta.keep.sum())
    return (np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))), names, used


def _check_interventions(
    itv: Table, c: Columns, allowed, kind: TimeKind, obs_source: str
) -> tuple[np.ndarray, np.ndarray]:
    check_present(itv, c.kind)
    if allowed is not None:
        check_allowed(
            itv,
            c.kind,
            allowed,
            reason=f"unknown intervention kind; allowed kinds are {list(allowed)}",
            fix="fix the kind, add it to intervention_kinds, or pass drop_bad_rows=True",
        )
    t, itv_kind, _ = check_time(itv, c.time)
    if itv_kind != kind:
        raise CohortError(
            f"times here are {itv_kind}s but {kind}s in {obs_source}: give both tables' times "
            "the same way (numbers in one unit, or dates/times)",
            source=itv.source,
            column=c.time,
        )
    amount = check_numeric(itv, c.amount)
    negative = itv.keep & (amount < 0)
    if negative.any():
        itv.notes.append(
            f"{itv.source}: {int(negative.sum())} negative amount(s) (row(s) "
            f"{itv.labels[negative][:5].tolist()}) kept as given"
        )
    return t, amount


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
