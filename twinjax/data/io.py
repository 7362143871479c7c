"""Long-format cohort tables (CSV, Parquet or DataFrames) to an aligned :class:`Cohort`, and back.

Three tables describe a cohort:

* observations: ``subject_id, time, variable, value`` (one measurement per row);
* interventions (optional): ``subject_id, time, kind, amount``;
* static covariates (optional): ``subject_id`` plus one numeric column per covariate.

Column names are configurable. Times are numbers (the grid ``step`` is in the same unit) and >= 0.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from twinjax.data import validate as V
from twinjax.data.cohort import Cohort
from twinjax.data.errors import CohortError

log = logging.getLogger(__name__)

TableLike = str | os.PathLike | pd.DataFrame

_CELL_TOL = 1e-4  # a time this many steps below a cell boundary counts as on the boundary
_MAX_CELLS = 2**31  # dense grid size guard (individuals x steps x features)


def read_cohort(
    observations: TableLike,
    interventions: TableLike | None = None,
    static: TableLike | None = None,
    *,
    step: float = 1.0,
    subject_col: str = "subject_id",
    time_col: str = "time",
    variable_col: str = "variable",
    value_col: str = "value",
    kind_col: str = "kind",
    amount_col: str = "amount",
    intervention_kinds=None,
    drop_bad_rows: bool = False,
) -> Cohort:
    """Reads, validates and aligns a long-format cohort to a regular time grid.

    Each table is a path to a ``.csv`` or ``.parquet`` file, or a pandas DataFrame. Malformed input
    raises :class:`CohortError` naming the file, the row(s), the column and the fix. Rows are numbered
    as the user sees them: in a CSV file, the 1-based line number as shown in an editor (the header is
    line 1, so the first record is line 2; lines with every field empty are skipped as blank lines,
    and a quoted field spanning several lines shifts later numbers); in a Parquet file, the 1-based
    record number; in a DataFrame, the index label.

    Row checks: missing (NaN/empty), non-numeric or infinite times, values, amounts and covariates;
    negative times; duplicate or unsorted times for one subject and variable (in file order); repeated
    subjects in the static table; intervention kinds outside ``intervention_kinds`` (when given);
    subjects in the static or intervention table without observations, and intervention subjects
    found in no other table. Every static column but the subject is a numeric covariate (encode
    categories as numbers). Observed subjects missing from a given static table are an error. Column
    checks (missing required or unknown columns) always raise. With ``drop_bad_rows=True`` the bad rows
    are dropped instead (observations of a subject without static covariates too), a warning is logged
    and ``cohort.meta["dropped_rows"]`` lists them: ``{"count": n, "entries": [{"table", "source",
    "column", "reason", "count", "rows"}, ...]}``.

    Alignment: subject ``i``'s grid starts at ``t0[i]``, its earliest observation or intervention time;
    a time ``t`` falls in cell ``floor((t - t0[i]) / step)``. Observations of one subject and variable
    in the same cell are averaged (``meta["merged_observations"]`` counts the merged rows); intervention
    amounts in one cell are summed. ``lengths[i]`` is the last occupied cell + 1; shorter subjects are
    padded. Axis orders: a categorical column's category order (all categories for variables and
    kinds, present ones for subjects); otherwise sorted; ``intervention_kinds``, when given, fixes the
    kinds axis. Interventions are not checked for order or duplicates (they are summed).

    Args:
        observations: the observations table (``subject_id, time, variable, value``).
        interventions: the interventions table (``subject_id, time, kind, amount``), or None.
        static: the static covariates table (``subject_id`` and numeric columns), or None.
        step: the grid step, in the unit of the time column.
        subject_col, time_col, variable_col, value_col, kind_col, amount_col: column names.
        intervention_kinds: the kinds axis, in order (default: the kinds found).
        drop_bad_rows: drop malformed rows (and report them) instead of raising.

    Returns:
        The aligned :class:`Cohort` (host-side numpy arrays).

    Raises:
        CohortError: malformed input (the message names file, rows, column and the fix).

    Example:
        >>> import pandas as pd
        >>> obs = pd.DataFrame({"subject_id": ["a", "a", "b"], "time": [0.0, 2.0, 5.0],
        ...                     "variable": "hr", "value": [60.0, 62.0, 70.0]})
        >>> cohort = read_cohort(obs, step=1.0)
        >>> cohort.values.shape, cohort.lengths.tolist(), cohort.t0.tolist()
        ((2, 3, 1), [3, 1], [0.0, 5.0])
        >>> cohort.values[0, :, 0].tolist(), cohort.mask[0, :, 0].tolist()
        ([60.0, 0.0, 62.0], [True, False, True])
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    c = V.Columns(subject_col, time_col, variable_col, value_col, kind_col, amount_col)
    load = lambda src, name, ids: None if src is None else _load(src, name, ids, drop_bad_rows)
    obs = load(observations, "observations", [c.subject, c.variable])
    itv = load(interventions, "interventions", [c.subject, c.kind])
    sta = load(static, "static", [c.subject])
    checked = V.validate_tables(obs, itv, sta, c, intervention_kinds)
    return _assemble(obs, itv, sta, checked, c, intervention_kinds, step)


def _assemble(obs, itv, sta, checked: V.Checked, c: V.Columns, kinds, step: float) -> Cohort:
    """Axis orders, integer codes, the grid, static covariates and the report."""
    subjects = _order(obs.kept()[c.subject], present_only=True)
    variables = _order(obs.kept()[c.variable])
    if kinds is not None:
        kinds = list(kinds)
    else:
        kinds = [] if itv is None else _order(itv.kept()[c.kind])
    code = lambda t, col, cats: _codes(t.kept()[col], cats)
    obs_ix = (code(obs, c.subject, subjects), code(obs, c.variable, variables))
    if itv is not None:
        itv_ix = (code(itv, c.subject, subjects), code(itv, c.kind, kinds))
    else:
        itv_ix = (np.zeros(0, np.int64),) * 2
    grid = _align(
        obs_ix,
        checked.obs,
        itv_ix,
        checked.interventions,
        len(subjects),
        len(variables),
        len(kinds),
        step,
    )
    static_names = [] if sta is None else [n for n in sta.df.columns if n != c.subject]
    static_x = np.zeros((len(subjects), len(static_names)), np.float32)
    if sta is not None:
        at = pd.Index(sta.kept()[c.subject]).get_indexer(subjects)
        static_x = checked.static[at].astype(np.float32)
    tables = [t for t in (obs, itv, sta) if t is not None]
    meta = {"dropped_rows": _drop_report(tables), "merged_observations": grid.pop("merged")}
    meta["sources"] = {t.name: t.source for t in tables}
    return Cohort(
        **grid,
        static=static_x,
        subject_ids=tuple(subjects),
        variables=tuple(variables),
        intervention_kinds=tuple(kinds),
        static_names=tuple(static_names),
        step=float(step),
        meta=meta,
    )


def to_long(
    cohort: Cohort,
    *,
    subject_col: str = "subject_id",
    time_col: str = "time",
    variable_col: str = "variable",
    value_col: str = "value",
    kind_col: str = "kind",
    amount_col: str = "amount",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The inverse of :func:`read_cohort`: ``(observations, interventions, static)`` DataFrames.

    One observation row per observed (masked) cell at time ``t0[i] + t * step``; one intervention row
    per non-zero cell amount. Subject, variable and kind columns are categoricals whose categories keep
    the cohort's axis order, so ``read_cohort(*to_long(c), step=c.step)`` returns the same arrays
    (through CSV, which loses categories, the axes come back sorted; a variable never observed is lost
    unless the table is categorical; the span of a subject is fixed by its first and last occupied cells).

    Args:
        cohort: the aligned cohort.
        subject_col, time_col, variable_col, value_col, kind_col, amount_col: column names.

    Returns:
        ``(observations, interventions, static)`` long-format DataFrames.
    """
    n, _, f = cohort.values.shape
    names = lambda given, k, prefix: list(given) if given else [f"{prefix}{j}" for j in range(k)]
    subjects = names(cohort.subject_ids, n, "s")
    variables = names(cohort.variables, f, "x")
    kinds = names(cohort.intervention_kinds, cohort.interventions.shape[2], "u")
    static_names = names(cohort.static_names, cohort.static.shape[1], "c")
    t0 = np.zeros(n) if cohort.t0 is None else np.asarray(cohort.t0, np.float64)
    cat = lambda codes, cats: pd.Categorical.from_codes(codes, categories=cats)

    i, t, j = np.nonzero(cohort.mask)
    obs = pd.DataFrame(
        {
            subject_col: cat(i, subjects),
            time_col: t0[i] + t * cohort.step,
            variable_col: cat(j, variables),
            value_col: cohort.values[i, t, j],
        }
    )
    i, t, u = np.nonzero(cohort.interventions)
    itv = pd.DataFrame(
        {
            subject_col: cat(i, subjects),
            time_col: t0[i] + t * cohort.step,
            kind_col: cat(u, kinds),
            amount_col: cohort.interventions[i, t, u],
        }
    )
    static = pd.DataFrame({subject_col: cat(np.arange(n), subjects)})
    for k, name in enumerate(static_names):
        static[name] = cohort.static[:, k]
    return obs, itv, static


def _load(src: TableLike, name: str, id_cols: list[str], drop_bad_rows: bool) -> V.Table:
    """Reads one table; ids are read as strings from CSV (keeps leading zeros)."""
    if isinstance(src, pd.DataFrame):
        df, labels, source = src.reset_index(drop=True), src.index.to_numpy(), f"{name} DataFrame"
        header = None
    else:
        path, source, header = Path(src), str(src), None
        suffix = "".join(path.suffixes[-2:]).lower()
        try:
            if suffix.endswith(".parquet") or suffix.endswith(".pq"):
                df = pd.read_parquet(path)
                labels = np.arange(1, len(df) + 1)
            elif suffix.endswith((".csv", ".csv.gz")):
                df = pd.read_csv(path, dtype={c: str for c in id_cols}, skip_blank_lines=False)
                labels, header = np.arange(2, len(df) + 2), 1
                blank = df.isna().all(axis=1).to_numpy()
                df, labels = df[~blank].reset_index(drop=True), labels[~blank]
            else:
                raise CohortError(
                    "unsupported file type: use .csv or .parquet, or pass a DataFrame",
                    source=source,
                )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise CohortError(f"cannot read the {name} table: {e}", source=source) from e
    return V.Table(name, source, df, labels, drop_bad_rows=drop_bad_rows, header_row=header)


def _order(col: pd.Series, *, present_only: bool = False) -> list:
    """Axis order: categorical category order, else sorted (first appearance if unsortable)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if present_only:
            cats = cats[cats.isin(col.unique())]
        return cats.tolist()
    uniq = pd.unique(col)
    try:
        return sorted(uniq.tolist())
    except TypeError:
        return uniq.tolist()


def _codes(col: pd.Series, order: list) -> np.ndarray:
    """Positions of ``col``'s values in ``order`` (every value must be in it)."""
    codes, uniques = pd.factorize(col)
    return pd.Index(order).get_indexer(pd.Index(uniques))[codes].astype(np.int64)


def _align(obs_ix, obs_tv, itv_ix, itv_tv, n: int, f: int, u: int, step: float) -> dict:
    """Scatters observations (averaged per cell) and interventions (summed) onto the grid."""
    (os_, of), (ot, ov) = obs_ix, obs_tv
    (is_, iu), (it, ia) = itv_ix, itv_tv
    t0 = np.full(n, np.inf)
    np.minimum.at(t0, os_, ot)
    np.minimum.at(t0, is_, it)
    cell = lambda s, t: np.floor((t - t0[s]) / step + _CELL_TOL).astype(np.int64)
    oc, ic = cell(os_, ot), cell(is_, it)
    lengths = np.zeros(n, np.int64)
    np.maximum.at(lengths, os_, oc + 1)
    np.maximum.at(lengths, is_, ic + 1)
    T = int(lengths.max())
    if n * T * max(f, u, 1) > _MAX_CELLS:
        raise CohortError(
            f"the aligned grid would have {n} x {T} x {max(f, u)} cells; use a larger step "
            f"(now {step}) or check the time unit"
        )
    flat = (os_ * T + oc) * f + of
    counts = np.bincount(flat, minlength=n * T * f)
    sums = np.bincount(flat, weights=ov, minlength=n * T * f)
    mask = counts > 0
    values = np.where(mask, sums / np.maximum(counts, 1), 0.0)
    amounts = np.bincount((is_ * T + ic) * u + iu, weights=ia, minlength=n * T * u)
    return {
        "values": values.reshape(n, T, f).astype(np.float32),
        "mask": mask.reshape(n, T, f),
        "interventions": amounts.reshape(n, T, u).astype(np.float32),
        "lengths": lengths.astype(np.int32),
        "t0": t0,
        "merged": int(len(flat) - mask.sum()),
    }


def _drop_report(tables: list[V.Table]) -> dict:
    entries = [e for t in tables for e in t.dropped]
    count = sum(e["count"] for e in entries)
    if count:
        summary = "; ".join(f"{e['count']} in {e['source']} ({e['reason']})" for e in entries)
        log.warning("dropped %d bad row(s): %s", count, summary)
    return {"count": count, "entries": entries}
