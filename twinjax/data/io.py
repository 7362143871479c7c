"""Long-format cohort tables (CSV, Parquet or DataFrames) to an aligned :class:`Cohort`, and back.

Three tables describe a cohort:

* observations: ``subject_id, time, variable, value`` (one measurement per row);
* interventions (optional): ``subject_id, time, kind, amount``;
* static covariates (optional): ``subject_id`` plus one column per covariate (numeric, or
  categorical text, one-hot encoded).

Column names are configurable. Times are numbers (>= 0; the grid ``step`` is a number in the same
unit) or dates/times (ISO-8601 text or timestamps; the step is a duration such as ``"1h"``): see
:mod:`twinjax.data.times`. File formats, compression, encodings and delimiters:
:mod:`twinjax.data.read`.
"""

import logging
import os
from typing import Literal

import numpy as np
import pandas as pd

from twinjax.data import validate as V
from twinjax.data.chunks import Part, join, split_subjects
from twinjax.data.cohort import Cohort
from twinjax.data.dataset import FrameSource, ParquetSource, is_parquet
from twinjax.data.errors import CohortError
from twinjax.data.grid import check_grid, median_gap
from twinjax.data.read import read_table
from twinjax.data.share import HASH, Share
from twinjax.data.times import Step, parse_step, to_datetimes

log = logging.getLogger(__name__)

TableLike = str | os.PathLike | pd.DataFrame

_CELL_TOL = 1e-4  # a time this many steps below a cell boundary counts as on the boundary
_MAX_CELLS = 2**31  # dense grid size guard (individuals x steps x features)


def read_cohort(
    observations: TableLike,
    interventions: TableLike | None = None,
    static: TableLike | None = None,
    *,
    step: float | str | pd.Timedelta = 1.0,
    origin: Literal["subject", "absolute"] = "subject",
    subject_col: str = "subject_id",
    time_col: str = "time",
    variable_col: str = "variable",
    value_col: str = "value",
    kind_col: str = "kind",
    amount_col: str = "amount",
    intervention_kinds=None,
    static_levels: dict | None = None,
    drop_bad_rows: bool = False,
    sep: str | None = None,
    encoding: str | None = None,
    chunk_subjects: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
    sparse: bool = False,
) -> Cohort:
    """Reads, validates and aligns a long-format cohort to a regular time grid.

    Each table is a path (``.csv``, compressed ``.csv.gz/.bz2/.xz/.zip/.zst``, ``.parquet``, or a
    directory of Parquet files read as one dataset) or a pandas DataFrame. Malformed input raises
    :class:`CohortError` naming the file, the row(s), the column and the fix. Rows are numbered as
    the user sees them: in a CSV file, the 1-based line number as shown in an editor (the header is
    line 1, so the first record is line 2; lines with every field empty or NA are skipped as blank
    lines and noted, and a quoted field spanning several lines shifts later numbers); in a Parquet
    file, the 1-based record number (in a directory of Parquet files, ``file:record``, or the
    record with the file named as the source); in a DataFrame, the index label.

    Row checks: missing (NaN/empty), non-numeric or infinite times, values, amounts and covariates;
    values, amounts and covariates beyond the float32-safe range (|x| <= 1.8e19); negative numeric
    times; repeated (subject, variable, time) observations with different values (exact repeats
    are removed and counted); repeated subjects in the static table; intervention kinds outside
    ``intervention_kinds`` (when given); categorical levels outside ``static_levels`` (when
    given); subjects in the static or intervention table without observations, and intervention
    subjects found in no other table. Observed subjects missing from a given static table are an
    error. Table checks (no data rows, missing required or unknown columns) always raise. With
    ``drop_bad_rows=True`` the bad rows are dropped instead (observations of a subject without
    static covariates too), a warning is logged and ``cohort.meta["dropped_rows"]`` lists them:
    ``{"count": n, "entries": [{"table", "source", "column", "reason", "count", "rows"}, ...]}``.
    Rows may come in any order. Booleans are read as 0/1; negative amounts are kept; both are
    noted in ``meta["notes"]``.

    Static covariates: a column of text none of whose values is a number (or a pandas
    categorical) is categorical and one-hot encoded, one column ``name=level`` per level (sorted,
    or the categorical's order, or ``static_levels[name]``); ``meta["static_levels"]`` records the
    levels, so that a later cohort can be encoded the same way.

    Alignment: with ``origin="subject"``, subject ``i``'s grid starts at ``t0[i]``, its earliest
    observation or intervention time; with ``origin="absolute"``, every subject's grid starts at
    the cohort's earliest time rounded down to a multiple of ``step`` (cell ``k`` is the same
    clock time for everyone). A time ``t`` falls in cell ``floor((t - t0[i]) / step)``.
    Observations of one subject and variable in the same cell are averaged (irregular times are
    binned: the mean within the bin, the standard reduction of irregular samples to a grid that
    keeps every row's information and the model's regular time step; ``meta["merged_observations"]``
    counts the rows merged into a shared cell); intervention amounts in one cell are summed.
    ``lengths[i]`` is the last cell holding an observation + 1 (shorter subjects are padded);
    interventions after a subject's last observation are left out of the grid and counted in
    ``meta["interventions_after_last_observation"]`` (they have no outcome to learn from, and
    would only stretch the subject's span and empty its test period). ``meta["rows"]`` counts each
    table's data rows as read, ``meta["rows_in_grid"]`` those in the cohort (observation and
    intervention rows on the grid, static rows of its subjects): with the rows dropped, the exact
    repeats removed and the late interventions they account for every row. Axis orders: a categorical
    column's category order (all categories for variables and kinds, present ones for subjects);
    otherwise sorted; ``intervention_kinds``, when given, fixes the kinds axis.

    Args:
        observations: the observations table (``subject_id, time, variable, value``).
        interventions: the interventions table (``subject_id, time, kind, amount``), or None.
        static: the static covariates table (``subject_id`` and covariate columns), or None.
        step: the grid step: a number in the unit of numeric times, or a duration (``"15min"``,
            ``"1h"``, ``"1D"``) for dates/times.
        origin: where each subject's grid starts (``"subject"`` or ``"absolute"``, see above).
        subject_col: the subject column's name (in every table).
        time_col: the time column's name (observations and interventions).
        variable_col: the stream column's name (observations).
        value_col: the value column's name (observations).
        kind_col: the intervention kind column's name.
        amount_col: the intervention amount column's name.
        intervention_kinds: the kinds axis, in order (default: the kinds found).
        static_levels: categorical covariate name -> its levels (e.g. those saved with twins).
        drop_bad_rows: drop malformed rows (and report them) instead of raising.
        sep: the delimiter of text files (default: found in the header line).
        encoding: the text encoding (default: UTF-8, else Latin-1).
        chunk_subjects: validate and align this many subjects at a time (default: all at once).
            The result is the same; only one chunk's rows are ever pandas objects, and a Parquet
            table is held once, as Arrow columns. Needs ``origin="subject"`` when there are
            several chunks (an absolute grid needs the whole cohort's earliest time).
        sparse: accept a grid that is mostly empty (the refusal of one under 0.5% observed is
            skipped; the memory check stays), for a caller that reads the visits back out of
            it at their own times, as the auto twin does (:func:`twinjax.pipeline.auto_panel`).
        process_index: this process's number, ``0 .. process_count - 1``.
        process_count: the number of processes that share the cohort: this one reads only the
            subjects :func:`twinjax.data.share.subject_share` gives it (a stable hash of the
            subject id), as rows are read; ``meta["share"]`` records the split.

    Returns:
        The aligned :class:`Cohort` (host-side numpy arrays). For dates/times, ``t0`` and ``step``
        are in seconds (``t0`` since 1970-01-01, UTC for zoned times).

    Raises:
        CohortError: malformed input (the message names file, rows, column and the fix).
        ValueError: a bad ``step`` or ``origin``.

    Example:
        >>> import pandas as pd
        >>> obs = pd.DataFrame({"subject_id": ["a", "a", "b"], "time": [2.0, 0.0, 5.0],
        ...                     "variable": "hr", "value": [62.0, 60.0, 70.0]})
        >>> cohort = read_cohort(obs, step=1.0)
        >>> cohort.values.shape, cohort.lengths.tolist(), cohort.t0.tolist()
        ((2, 3, 1), [3, 1], [0.0, 5.0])
        >>> cohort.values[0, :, 0].tolist(), cohort.mask[0, :, 0].tolist()
        ([60.0, 0.0, 62.0], [True, False, True])
        >>> days = pd.DataFrame({"subject_id": "a", "time": ["2024-03-01", "2024-03-03"],
        ...                      "variable": "weight", "value": [70.0, 71.0]})
        >>> read_cohort(days, step="1D").lengths.tolist()
        [3]
    """
    grid_step = parse_step(step)
    if origin not in ("subject", "absolute"):
        raise ValueError(f"origin must be 'subject' or 'absolute', got {origin!r}")
    share = Share(process_index, process_count).check()
    c = V.Columns(subject_col, time_col, variable_col, value_col, kind_col, amount_col)
    ids = {"observations": [c.subject, c.variable], "interventions": [c.subject, c.kind]}

    def load(src, name):
        if src is None:
            return None
        if is_parquet(src):
            return ParquetSource(src, name, ids.get(name, [c.subject]), share, drop_bad_rows)
        t = read_table(src, name, ids.get(name, [c.subject]), drop_bad_rows=drop_bad_rows,
                       sep=sep, encoding=encoding)  # fmt: skip
        return FrameSource(t, c.subject, share)

    sources = [load(observations, "observations"), load(interventions, "interventions"),
               load(static, "static")]  # fmt: skip
    sources = _check_sources(sources, c, share)
    count, chunks = split_subjects(sources, c.subject, chunk_subjects)
    if origin == "absolute" and (count > 1 or share.count > 1):
        raise ValueError(
            "origin='absolute' needs the whole cohort's earliest time: read it in one chunk by "
            "one process (chunk_subjects=None, process_count=1), or use origin='subject'"
        )
    if count == 1 and share.count == 1:
        obs, itv, sta = next(chunks)
        checked = V.validate_tables(obs, itv, sta, c, intervention_kinds, static_levels)
        _check_step(checked.time_kind, grid_step, obs.source, c.time)
        cohort = _assemble(obs, itv, sta, checked, c, intervention_kinds, grid_step, origin,
                           sparse=sparse)  # fmt: skip
    else:
        axes = _axes(sources, c, intervention_kinds, static_levels)
        parts = [_part(t, c, axes, grid_step, origin, sparse) for t in chunks]
        cohort = join(parts, axes["variables"], axes["kinds"], axes["prune"], sources[0].source)
    live = [s for s in sources if s is not None]
    cohort.meta["rows"] = {s.name: s.rows_read for s in live}
    cohort.meta["sources"] = {s.name: s.source for s in live}
    in_grid = cohort.meta["rows_in_grid"]
    in_grid["static"] = cohort.n_individuals
    cohort.meta["rows_in_grid"] = {s.name: in_grid.get(s.name, 0) for s in live}
    cohort.meta["share"] = {"process_index": share.index, "process_count": share.count,
                            "subjects": cohort.n_individuals, "hash": HASH}  # fmt: skip
    cohort.meta["chunks"] = {"count": count, "subjects": chunk_subjects}
    _report(cohort.meta)
    return cohort


def _check_sources(sources: list, c: V.Columns, share: Share) -> list:
    """Whole-table checks (columns, data rows); a share without rows of a table drops it."""
    obs, itv, sta = sources
    if share.count > 1 and obs.rows_read == 0:
        raise CohortError(
            f"process {share.index} of {share.count} holds no subject of this table (subjects "
            "are split by a hash of their id): use fewer processes for so small a cohort",
            source=obs.source,
        )
    if share.count > 1 and itv is not None and itv.rows_read == 0:
        itv = None
    required = {
        "observations": [c.subject, c.time, c.variable, c.value],
        "interventions": [c.subject, c.time, c.kind, c.amount],
        "static": [c.subject],
    }
    for s in (obs, itv, sta):
        if s is None:
            continue
        table, cols = s.header(), required[s.name]
        V.check_columns(table, cols, exclusive=s.name != "static", options=c.options())
        if s.rows_read == 0:
            V.check_rows(table, cols if s.name != "static" else s.columns)
    return [obs, itv, sta]


def _axes(sources: list, c: V.Columns, kinds, levels) -> dict:
    """The cohort's variables, kinds and static encodings, fixed before the chunks are read."""
    obs, itv, sta = sources
    distinct = lambda s, col: s.distinct(col).dropna()
    variables = _order(distinct(obs, c.variable))
    given = kinds is not None
    if given:
        kinds = list(kinds)
    else:
        kinds = [] if itv is None else _order(distinct(itv, c.kind))
    prune = (c.variable not in obs.categorical,  # a categorical's axis is all its categories
             not given and itv is not None and c.kind not in itv.categorical)  # fmt: skip
    levels, numeric = dict(levels or {}), set()
    for name in [] if sta is None else [n for n in sta.columns if n != c.subject]:
        col = sta.distinct(name)
        if name in levels:
            continue
        if V.is_categorical(col):
            cats = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else None
            levels[name] = (
                [str(v) for v in cats]
                if cats is not None
                else sorted(col.dropna().astype(str).unique().tolist())
            )
        else:
            numeric.add(name)
    return {"variables": variables, "kinds": kinds, "prune": prune, "levels": levels,
            "numeric": frozenset(numeric), "allowed": kinds if given else None}  # fmt: skip


def _part(
    tables: list, c: V.Columns, axes: dict, step: Step, origin: str, sparse: bool = False
) -> Part:
    """One chunk of subjects validated and aligned on the cohort's axes."""
    obs, itv, sta = tables
    subject = obs.df[c.subject]
    cats = (
        subject.cat.categories.tolist() if isinstance(subject.dtype, pd.CategoricalDtype) else None
    )
    itv = None if itv is not None and len(itv.df) == 0 else itv
    checked = V.validate_tables(obs, itv, sta, c, axes["allowed"], axes["levels"], chunk=True,
                                numeric=axes["numeric"])  # fmt: skip
    live = [t for t in (obs, itv, sta) if t is not None]
    dropped = [e for t in live for e in t.dropped]
    notes = [n for t in live for n in t.notes]
    if not obs.keep.any():
        return Part(None, dropped, notes, {"variables": set(), "kinds": set()}, cats)
    _check_step(checked.time_kind, step, obs.source, c.time)
    cohort = _assemble(obs, itv, sta, checked, c, axes["kinds"], step, origin, axes["variables"],
                       sparse=sparse)  # fmt: skip
    used = {"variables": set(obs.kept()[c.variable].unique()),
            "kinds": set() if itv is None else set(itv.kept()[c.kind].unique())}  # fmt: skip
    return Part(cohort, dropped, notes, used, cats)  # not the tables: only a chunk is held


def _check_step(kind: str, step: Step, source: str, column: str) -> None:
    if kind == "datetime" and step.duration is None:
        raise CohortError(
            f"the times are dates/times, so the grid step must be a duration, not {step.size:g}: "
            "pass e.g. step='1h' (data.step=1h; also 15min, 1D)",
            source=source,
            column=column,
        )
    if kind == "number" and step.duration is not None:
        raise CohortError(
            f"the times are numbers, so the grid step must be a number in their unit, not "
            f"{step.describe()!r}: pass e.g. step=1.0 (or give the times as dates)",
            source=source,
            column=column,
        )


def _assemble(
    obs,
    itv,
    sta,
    checked: V.Checked,
    c: V.Columns,
    kinds,
    step: Step,
    origin,
    variables=None,
    *,
    sparse: bool = False,
) -> Cohort:
    """Axis orders, integer codes, the grid, static covariates and the report."""
    subjects = _order(obs.kept()[c.subject], present_only=True)
    if variables is None:
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
    check_grid(
        obs_ix[0], checked.obs[0], itv_ix[0], checked.interventions[0],
        (len(subjects), len(variables), len(kinds)), step.size, kind=checked.time_kind,
        step_text=step.describe(), origin=origin, source=obs.source, column=c.time,
        sparse=sparse,
    )  # fmt: skip
    grid = _align(
        obs_ix,
        checked.obs,
        itv_ix,
        checked.interventions,
        (len(subjects), len(variables), len(kinds)),
        step.size,
        origin,
        (obs.source, c.time, obs.labels[obs.keep]),
    )
    static_x = np.zeros((len(subjects), len(checked.static_names)), np.float32)
    if sta is not None:
        at = pd.Index(sta.kept()[c.subject]).get_indexer(subjects)
        static_x = checked.static[at].astype(np.float32)
    tables = [t for t in (obs, itv, sta) if t is not None]
    late = grid.pop("late")
    in_grid = {"observations": grid.pop("obs_rows"), "interventions": grid.pop("itv_rows")}
    in_grid["static"] = len(subjects)
    meta = {
        "dropped_rows": _drop_report(tables),
        "merged_observations": grid.pop("merged"),
        "duplicate_rows_removed": checked.repeats,
        "interventions_after_last_observation": late,
        "rows": {t.name: int(len(t.df)) for t in tables},
        "rows_in_grid": {t.name: in_grid[t.name] for t in tables},
        "sources": {t.name: t.source for t in tables},
        "static_levels": checked.static_levels,
        "time": {
            "kind": checked.time_kind,
            "zoned": checked.zoned,
            "step": step.describe(),
            "origin": origin,
        },
        "notes": [n for t in tables for n in t.notes],
    }
    return Cohort(
        **grid,
        static=static_x,
        subject_ids=tuple(subjects),
        variables=tuple(variables),
        intervention_kinds=tuple(kinds),
        static_names=tuple(checked.static_names),
        step=float(step.size),
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
    per non-zero cell amount (times as dates if the cohort was read from dates, see
    ``meta["time"]``). Subject, variable and kind columns are categoricals whose categories keep
    the cohort's axis order, so ``read_cohort(*to_long(c), step=c.step)`` returns the same arrays
    (through CSV, which loses categories, the axes come back sorted; a variable never observed is lost
    unless the table is categorical; a subject's span runs from its first occupied cell to its last
    observed one, so interventions after the last observation are not kept).

    Args:
        cohort: the aligned cohort.
        subject_col: the subject column's name (in every table).
        time_col: the time column's name.
        variable_col: the stream column's name.
        value_col: the value column's name.
        kind_col: the intervention kind column's name.
        amount_col: the intervention amount column's name.

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
    clock = cohort.meta.get("time", {})
    if clock.get("kind") == "datetime":
        when = lambda seconds: to_datetimes(seconds, zoned=clock.get("zoned", False))
    else:
        when = lambda t: t

    i, t, j = np.nonzero(cohort.mask)
    obs = pd.DataFrame(
        {
            subject_col: cat(i, subjects),
            time_col: when(t0[i] + t * cohort.step),
            variable_col: cat(j, variables),
            value_col: cohort.values[i, t, j],
        }
    )
    i, t, u = np.nonzero(cohort.interventions)
    itv = pd.DataFrame(
        {
            subject_col: cat(i, subjects),
            time_col: when(t0[i] + t * cohort.step),
            kind_col: cat(u, kinds),
            amount_col: cohort.interventions[i, t, u],
        }
    )
    static = pd.DataFrame({subject_col: cat(np.arange(n), subjects)})
    levels = cohort.meta.get("static_levels", {})
    one_hot = {f"{name}={level}" for name, lv in levels.items() for level in lv}
    for k, name in enumerate(static_names):
        if name not in one_hot:
            static[name] = cohort.static[:, k]
    for name, lv in levels.items():
        at = [static_names.index(f"{name}={level}") for level in lv]
        static[name] = pd.Categorical.from_codes(cohort.static[:, at].argmax(1), categories=lv)
    return obs, itv, static


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


def _align(obs_ix, obs_tv, itv_ix, itv_tv, sizes, step: float, origin: str, where) -> dict:
    """Scatters observations (averaged per cell) and interventions (summed) onto the grid.

    ``where`` is ``(source, time column, row labels)`` of the observations, for the error on a
    grid too large (cell numbers are checked as floats, before they become integers).
    """
    (n, f, u), (os_, of), (ot, ov) = sizes, obs_ix, obs_tv
    (is_, iu), (it, ia) = itv_ix, itv_tv
    t0 = np.full(n, np.inf)
    np.minimum.at(t0, os_, ot)
    np.minimum.at(t0, is_, it)
    if origin == "absolute":
        t0[:] = np.floor(t0.min() / step) * step
    cell = lambda s, t: np.floor((t - t0[s]) / step + _CELL_TOL)
    oc, ic = cell(os_, ot), cell(is_, it)
    _check_grid_size(oc, n, max(f, u, 1), step, os_, ot, where)
    oc = oc.astype(np.int64)
    lengths = np.zeros(n, np.int64)
    np.maximum.at(lengths, os_, oc + 1)
    inside = ic < lengths[is_]
    is_, iu, ic, ia = is_[inside], iu[inside], ic[inside].astype(np.int64), ia[inside]
    T = int(lengths.max())
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
        "late": int((~inside).sum()),
        "obs_rows": int(len(flat)),
        "itv_rows": int(inside.sum()),
    }


def _check_grid_size(cells: np.ndarray, n: int, width: int, step: float, subject, time, where):
    """Raises if the grid (individuals x steps x streams) would exceed ``_MAX_CELLS`` cells."""
    steps = float(cells.max()) + 1  # float: a span of 1e300 steps is no integer
    if n * steps * width <= _MAX_CELLS:
        return
    source, column, labels = where
    raise CohortError(
        f"the aligned grid would have {n} x {steps:.3g} x {width} cells (the subject's span "
        f"ends at this row); use a larger step (now {step:g}; the median gap between a "
        f"subject's observations is {median_gap(subject, time):g}) or check the time unit",
        source=source,
        rows=[V.plain_label(labels[int(np.argmax(cells))])],
        column=column,
    )


def _drop_report(tables: list[V.Table]) -> dict:
    entries = [e for t in tables for e in t.dropped]
    return {"count": sum(e["count"] for e in entries), "entries": entries}


def _report(meta: dict) -> None:
    """Logs the dropped rows and the notes (the late interventions noted last)."""
    entries = meta["dropped_rows"]["entries"]
    if entries:
        summary = "; ".join(f"{e['count']} in {e['source']} ({e['reason']})" for e in entries)
        log.warning("dropped %d bad row(s): %s", meta["dropped_rows"]["count"], summary)
    late = meta["interventions_after_last_observation"]
    if late:
        meta["notes"].append(
            f"{late} intervention(s) after their subject's last observation left out of the grid"
        )
    for note in meta["notes"]:
        log.info("%s", note)
