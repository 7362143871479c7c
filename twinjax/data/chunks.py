"""Subjects in chunks: each table's rows split by subject, and the chunks' cohorts joined.

Every check of :func:`twinjax.data.io.read_cohort` concerns one subject's rows (repeats, missing
static covariates, subjects without observations), so a cohort read chunk by chunk of subjects,
with the axes (variables, kinds, categorical levels) fixed for the whole cohort, is the cohort read
at once. Chunks are ranges of the subjects sorted by their ids as text; the joined cohort is put
back in :func:`read_cohort`'s subject order (sorted ids, or a categorical's order).
"""

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twinjax.data.cohort import Cohort
from twinjax.data.errors import CohortError


class Part(NamedTuple):
    """One chunk's result: its cohort (None if none of its rows survived) and its tables."""

    cohort: Cohort | None
    dropped: list  # the drop report's entries of the chunk's tables
    notes: list  # the chunk's tables' notes
    used: dict  # "variables" and "kinds" found in the chunk's kept rows
    categories: list | None  # the subject column's categories, if it is categorical


def _text(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return pc.cast(values, pa.large_string())


def text_axis(columns: list) -> pa.Array:
    """The distinct ids of the columns, as text, sorted (nulls left out)."""
    found = [_text(pc.unique(c)) for c in columns]
    ids = (
        pc.unique(pa.concat_arrays(found)).drop_null() if found else pa.array([], pa.large_string())
    )
    return ids.take(pc.sort_indices(ids))


def codes(column, axis: pa.Array) -> np.ndarray:
    """Each row's position in ``axis`` (-1 for a missing id), chunk by chunk of the column.

    Chunks that share a dictionary (all of them, once a table's dictionaries are unified) look
    it up once.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out, seen = [np.zeros(0, np.int32)], {}
    for ch in chunks:
        if pa.types.is_dictionary(ch.type):
            d = ch.dictionary
            key = (tuple(b.address if b else 0 for b in d.buffers()), d.offset, len(d))
            if key not in seen:
                where = pc.fill_null(pc.index_in(_text(d), value_set=axis), -1)
                seen = {key: np.append(where.to_numpy(zero_copy_only=False), -1).astype(np.int32)}
            ix = pc.fill_null(ch.indices, -1).to_numpy(zero_copy_only=False)
            out.append(seen[key][ix])
        else:
            where = pc.index_in(_text(ch), value_set=axis)
            out.append(pc.fill_null(where, -1).to_numpy(zero_copy_only=False).astype(np.int32))
    return np.concatenate(out)


def split_subjects(sources: list, subject: str, size: int | None) -> tuple[int, Iterator]:
    """The number of chunks of ``size`` subjects (all at once if None), and the chunks.

    Each chunk is a list with each source's rows of its subjects as a Table (None stays None).
    Rows keep their order in the file; rows with a missing subject go with the first chunk (where
    they are reported).
    """
    live = [s for s in sources if s is not None]
    axis = text_axis([s.column(subject) for s in live])
    n = len(axis)
    size = max(1, size or n)
    return max(1, -(-n // size)), _chunks(sources, subject, axis, size)


def _chunks(sources: list, subject: str, axis: pa.Array, size: int) -> Iterator[list]:
    n, plans = len(axis), []
    for s in sources:
        if s is None:
            plans.append(None)
            continue
        c = codes(s.column(subject), axis)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(c + 1, minlength=n + 1))])
        order = np.argsort(c, kind="stable").astype(np.int32 if len(c) < 2**31 else np.int64)
        del c
        plans.append((order, bounds))
    for lo in range(0, max(n, 1), size):
        hi = min(lo + size, n)
        tables = []
        for s, plan in zip(sources, plans, strict=True):
            if s is None:
                tables.append(None)
                continue
            order, bounds = plan
            rows = np.sort(order[(0 if lo == 0 else bounds[lo + 1]) : bounds[hi + 1]])
            tables.append(s.take(rows))
        yield tables


def join(parts: list[Part], variables: list, kinds: list, prune: tuple, source: str) -> Cohort:
    """One cohort from the chunks' (axes as given, less those no kept row used if ``prune``)."""
    cohorts = [p.cohort for p in parts if p.cohort is not None]
    if not cohorts:
        raise CohortError("no valid observations", source=source)
    clocks = {(c.meta["time"]["kind"], c.meta["time"]["zoned"]) for c in cohorts}
    if len(clocks) > 1:
        raise CohortError(
            f"times are read in different ways in different subjects' rows ({sorted(clocks)}): "
            "give every time the same way (numbers in one unit, or dates/times with or without a "
            "zone)",
            source=source,
        )
    used = lambda key: set().union(*(p.used[key] for p in parts))
    fv = [j for j, v in enumerate(variables) if not prune[0] or v in used("variables")]
    fu = [j for j, u in enumerate(kinds) if not prune[1] or u in used("kinds")]
    n, T = sum(c.n_individuals for c in cohorts), max(c.n_steps for c in cohorts)
    first = cohorts[0]
    values = np.zeros((n, T, len(fv)), first.values.dtype)
    mask = np.zeros((n, T, len(fv)), bool)
    amounts = np.zeros((n, T, len(fu)), first.interventions.dtype)
    at = 0
    for c in cohorts:
        rows, t = slice(at, at + c.n_individuals), c.n_steps
        values[rows, :t], mask[rows, :t] = c.values[:, :, fv], c.mask[:, :, fv]
        amounts[rows, :t] = c.interventions[:, :, fu]
        at += c.n_individuals
    cat = lambda key: np.concatenate([getattr(c, key) for c in cohorts])
    ids = tuple(i for c in cohorts for i in c.subject_ids)
    joined = Cohort(
        values=values,
        mask=mask,
        interventions=amounts,
        static=cat("static"),
        lengths=cat("lengths"),
        subject_ids=ids,
        variables=tuple(variables[j] for j in fv),
        intervention_kinds=tuple(kinds[j] for j in fu),
        static_names=first.static_names,
        t0=cat("t0"),
        step=first.step,
        meta=_meta(parts, cohorts),
    )
    order = _subject_order(ids, parts[0].categories)
    return joined if order is None else joined.take(order)


def _meta(parts: list[Part], cohorts: list[Cohort]) -> dict:
    total = lambda key: sum(c.meta[key] for c in cohorts)
    entries = [e for p in parts for e in p.dropped]
    in_grid: dict = {}
    for c in cohorts:
        for k, v in c.meta["rows_in_grid"].items():
            in_grid[k] = in_grid.get(k, 0) + v
    notes = [n for p in parts for n in p.notes]
    return {
        "dropped_rows": {"count": sum(e["count"] for e in entries), "entries": entries},
        "merged_observations": total("merged_observations"),
        "duplicate_rows_removed": total("duplicate_rows_removed"),
        "interventions_after_last_observation": total("interventions_after_last_observation"),
        "rows_in_grid": in_grid,
        "static_levels": cohorts[0].meta["static_levels"],
        "time": cohorts[0].meta["time"],
        "notes": list(dict.fromkeys(notes)),
    }


def _subject_order(ids: tuple, categories: list | None) -> np.ndarray | None:
    """Positions that put ``ids`` in read_cohort's order; None if they are in it already."""
    if categories is not None:
        rank = {c: k for k, c in enumerate(categories)}
        order = np.argsort([rank[i] for i in ids], kind="stable")
    else:
        try:
            order = np.array(sorted(range(len(ids)), key=ids.__getitem__))
        except TypeError:  # unsortable ids: as found
            return None
    return None if np.all(order == np.arange(len(ids))) else order
