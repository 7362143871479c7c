"""Hypothesis strategies for malformed long-format cohorts, and how to write them as real files.

A drawn :class:`Case` is a cohort of a few subjects as up to three tables (observations,
interventions, static covariates), each a header and rows of logical cells (``None`` for an
empty cell, text, numbers, booleans, timestamps), written as CSV (any of ``, ; TAB |``, UTF-8
with or without a byte-order mark, Latin-1 or UTF-16, LF or CRLF, plain or gzip) or Parquet,
with the defects a real export has: missing, renamed, extra or padded columns, a column name
repeated once its spaces are stripped, repeated and conflicting rows, rows in any order, blank
lines, a delimiter at the end of every line or an extra field on one, ids that are numbers,
padded or non-ASCII text, times as numbers, epoch seconds, ISO-8601 text (naive local times
across a DST change, UTC offsets, far-off years) or Parquet timestamps, and missing, non-numeric,
infinite or extreme values. ``write_case`` writes a case and returns, for each table, its path
and the user-facing label (CSV line number, Parquet record number) of every data row.
"""

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis.strategies as st
import pandas as pd

OBS, ITV, STA = "observations", "interventions", "static"
COLUMNS = {
    OBS: ("subject_id", "time", "variable", "value"),
    ITV: ("subject_id", "time", "kind", "amount"),
}
# ids: numbers are numeric columns in Parquet (matched with the text ids of CSV tables as text)
IDS = ("a", "b", "c", "007", 7, 2.5, "José", "李雷", "x y", "x,y", 'q"t', " pad ", "NA")
VARIABLES = ("hr", "bp", "Glucose")
KINDS = ("dose", "meal")
# pandas reads these cells of a text file as missing; a line of them only is a blank line
NA_TEXT = {"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None",
           "<NA>", "#N/A", "#N/A N/A", "#NA", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN"}  # fmt: skip
# times: numbers on a grid of `step`, epoch seconds, or instants around a DST change in Paris
SPRING, AUTUMN = pd.Timestamp("2024-03-31T00:00Z"), pd.Timestamp("2024-10-27T00:00Z")
FAR = pd.Timestamp("2500-01-01T00:00Z")  # beyond pandas' nanosecond range (1677-2262)
TIME_STYLES = ("number", "epoch", "iso_local", "iso_offset", "iso_utc", "stamp", "far")


@dataclass(frozen=True)
class Table:
    """One table as written: ``rows`` hold logical cells, one tuple per data row."""

    name: str
    header: tuple
    rows: tuple
    fmt: str = "csv"  # csv, csv.gz, tsv or parquet
    sep: str = ","
    encoding: str = "utf-8"
    newline: str = "\n"
    trailing_sep: str = ""  # "data": every data line ends with a delimiter; "all": the header too
    extra_field: int | None = None  # this data row gets one more field than the header
    blank_after: int | None = None  # a blank line after this data row
    categorical: bool = False  # Parquet: text columns as categoricals (dictionary-encoded)


@dataclass(frozen=True)
class Case:
    tables: tuple
    step: float | str = 1.0
    origin: str = "subject"
    drop_bad_rows: bool = False
    sep: str | None = None
    normalization: str = "population"

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


@dataclass
class Written:
    """A written table: its path, each data row's label (None: a row of empty or NA fields, read
    as a blank line) and line (CSV) or record number, and the header's line."""

    path: Path
    labels: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    header_row: int | None = None


# --- cells -----------------------------------------------------------------------------------


def _chance(draw, percent: int) -> bool:
    """True in about ``percent`` % of draws (False for the simplest draw, so that a shrunk
    failing case keeps only the defects it needs)."""
    return draw(st.integers(0, 99)) >= 100 - percent


def _often(draw, normal, rare, percent: int):
    """``rare`` in about ``percent`` % of draws, else ``normal``."""
    return draw(rare) if _chance(draw, percent) else draw(normal)


BAD_NUMBERS = st.sampled_from(
    [None, "", "NA", "high", "1,5", " 3 ", "1e400", "-inf", float("nan"), float("inf"), True,
     1.8e19, -1.8e19, 3e19, 1e300, 5e-324, -0.0, 0]
)  # fmt: skip
GOOD_NUMBERS = st.floats(-1e4, 1e4, allow_nan=False, width=64) | st.integers(-5, 200)
# values the reader accepts (|x| <= 1.8e19) whose squares and sums overflow float32
HUGE_NUMBERS = st.sampled_from([1.8e19, -1.8e19, 1.7e19, -1.2e19, 0.0])
ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _number(draw, bad: int, good=GOOD_NUMBERS):
    return _often(draw, good, BAD_NUMBERS | ANY_FINITE, bad)


def _instant(style: str, cell: float, step_seconds: float):
    base = {"iso_local": AUTUMN, "far": FAR}.get(style, SPRING)
    return base + pd.Timedelta(seconds=cell * step_seconds)


def _time(draw, style: str, cell: float, step_seconds: float, bad: int):
    """The time of grid position ``cell`` in ``style``, or (rarely) a defect."""
    defect = st.sampled_from(
        [None, "", "noon", "2024-13-45", -1.0, float("inf"), float("nan"), 1e300, 1e12, 7,
         "2024-03-31T02:30:00"]
    )  # fmt: skip
    if _chance(draw, bad):
        return draw(defect)
    if style == "number":
        return cell
    if style == "epoch":
        return 1.7e9 + cell * 3600.0
    when = _instant(style, cell, step_seconds)
    if style == "iso_local":  # naive Paris time: the autumn hour repeats
        return when.tz_convert("Europe/Paris").tz_localize(None).isoformat()
    if style == "iso_offset":
        return when.tz_convert("Europe/Paris").isoformat()
    if style == "iso_utc":
        return when.isoformat().replace("+00:00", "Z")
    if style == "far":
        return when.tz_localize(None).isoformat()
    return when.tz_convert("Europe/Paris")  # "stamp": a timestamp (ISO text in a CSV)


def _cells(draw, jitter: bool) -> list:
    """Grid positions of one series: 3-6 distinct steps of 0-9 (rarely a single one), some a
    fraction into their cell."""
    if _chance(draw, 8):
        cells = [draw(st.integers(0, 9))]
    else:
        cells = draw(st.lists(st.integers(0, 9), min_size=3, max_size=6, unique=True))
    out = []
    for cell in cells:
        if jitter and _chance(draw, 30):
            cell += draw(st.sampled_from([0.25, 0.5, 0.9999]))
        out.append(float(cell))
    return out


# --- tables ----------------------------------------------------------------------------------


@st.composite
def layouts(draw, name: str) -> dict:
    """How a table is written: format, delimiter, encoding, line ends and their defects."""
    fmt = draw(st.sampled_from(["csv", "csv", "csv", "csv.gz", "tsv", "parquet"]))
    if fmt == "parquet":
        return {"fmt": fmt, "categorical": draw(st.booleans())}
    sep = "\t" if fmt == "tsv" else draw(st.sampled_from([",", ",", ";", "|", "\t"]))
    return {
        "fmt": fmt,
        "sep": sep,
        "encoding": _often(
            draw, st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]), st.just("utf-16"), 3
        ),
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
        "trailing_sep": _often(draw, st.just(""), st.sampled_from(["data", "all"]), 5),
    }


def _header(draw, columns: tuple) -> list:
    """``(name, source column or None)`` per written column: the table's columns, rarely with one
    missing, renamed, added, padded, repeated once stripped, or in title case."""
    header = [(c, k) for k, c in enumerate(columns)]
    change = _often(draw, st.just("none"), st.sampled_from(
        ["drop", "rename", "extra", "pad", "repeat_padded", "case"]), 5)  # fmt: skip
    k = draw(st.integers(0, len(header) - 1))
    if change == "drop":
        del header[k]
    elif change == "rename":
        header[k] = ("pid", k)
    elif change == "extra":
        header.append(("unit", None))
    elif change == "pad":
        header[k] = (f" {columns[k]} ", k)
    elif change == "repeat_padded":
        header.append((f"{columns[k]} ", k))
    elif change == "case":
        header[k] = (columns[k].title(), k)
    return header


def _layout(rows: list, header: list) -> tuple[tuple, tuple]:
    """The header's names and the rows laid out under it (an added column holds "mmHg")."""
    names = tuple(name for name, _ in header)
    return names, tuple(tuple("mmHg" if k is None else r[k] for _, k in header) for r in rows)


def _emptied(draw, header: tuple, rows: tuple) -> tuple[tuple, tuple]:
    """Rarely a table with a header only, or an empty file (no header either)."""
    if not _chance(draw, 3):
        return header, rows
    return (() if draw(st.booleans()) else header), ()


def _shuffle_and_repeat(draw, rows: list, value_col: int | None) -> list:
    """Exact repeats and (with ``value_col``) conflicting repeats of rows, in any order."""
    for _ in range(_often(draw, st.just(0), st.integers(1, 2), 15) if rows else 0):
        r = list(draw(st.sampled_from(rows)))
        if value_col is not None and draw(st.booleans()):
            r[value_col] = draw(GOOD_NUMBERS)
        rows.append(tuple(r))
    return draw(st.permutations(rows))


def _row_defects(draw, layout: dict, n_rows: int) -> dict:
    if layout["fmt"] == "parquet" or n_rows == 0:
        return {}
    row = st.integers(0, n_rows - 1)
    return {
        "extra_field": _often(draw, st.none(), row, 3),
        "blank_after": _often(draw, st.none(), row, 10),
    }


@st.composite
def observations(draw, subjects, style: str, step_seconds: float, bad: int, good) -> Table:
    layout = draw(layouts(OBS))
    columns = COLUMNS[OBS]
    rows = []
    for s in subjects:
        variables = draw(st.lists(st.sampled_from(VARIABLES), min_size=1, max_size=2, unique=True))
        for v in variables:
            for cell in _cells(draw, jitter=style != "stamp"):
                subject = _often(draw, st.just(s), st.sampled_from([None, "", "  "]), bad // 2)
                variable = _often(draw, st.just(v), st.sampled_from([None, "", "NA"]), bad // 2)
                rows.append((subject, _time(draw, style, cell, step_seconds, bad), variable,
                             _number(draw, bad, good)))  # fmt: skip
    if _chance(draw, 3):
        rows.append((None, None, None, None))  # a line of empty fields
    rows = _shuffle_and_repeat(draw, rows, value_col=3)
    header, rows = _layout(rows, _header(draw, columns))
    header, rows = _emptied(draw, header, rows)
    return Table(OBS, header, rows, **layout, **_row_defects(draw, layout, len(rows)))


@st.composite
def interventions(draw, subjects, style: str, step_seconds: float, bad: int, good) -> Table:
    layout = draw(layouts(ITV))
    columns = COLUMNS[ITV]
    other = draw(st.sampled_from(TIME_STYLES)) if _chance(draw, 5) else style
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        s = _often(draw, st.sampled_from(subjects), st.sampled_from([*IDS, None]), 4)
        cell = draw(st.sampled_from([0.0, 1.0, 2.5, 6.0, 40.0]))  # 40: after the last record
        kind = _often(draw, st.sampled_from(KINDS), st.sampled_from([None, "", "snack"]), bad)
        amount = _number(draw, bad, good)
        rows.append((s, _time(draw, other, cell, step_seconds, bad), kind, amount))
    header, rows = _layout(_shuffle_and_repeat(draw, rows, None), _header(draw, columns))
    header, rows = _emptied(draw, header, rows)
    return Table(ITV, header, rows, **layout, **_row_defects(draw, layout, len(rows)))


@st.composite
def static(draw, subjects: list, bad: int, good) -> Table:
    layout = draw(layouts(STA))
    covariates = draw(st.lists(st.sampled_from(["age", "sex", "flag"]), max_size=3, unique=True))
    ids = list(subjects)
    if _chance(draw, 6) and ids:
        ids.remove(draw(st.sampled_from(ids)))  # an observed subject without covariates
    if _chance(draw, 6):
        ids.append(draw(st.sampled_from(IDS)))  # a repeat or a subject never observed
    rows = []
    for s in ids:
        cells = {
            "age": _number(draw, bad, good),
            "sex": _often(draw, st.sampled_from(["F", "M"]), st.sampled_from([None, "X", 3]), bad),
            "flag": draw(st.booleans()),
        }
        rows.append((s, *(cells[c] for c in covariates)))
    columns = ("subject_id", *covariates)
    header, rows = _layout(draw(st.permutations(rows)), _header(draw, columns))
    header, rows = _emptied(draw, header, rows)
    return Table(STA, header, rows, **layout, **_row_defects(draw, layout, len(rows)))


@st.composite
def cases(draw) -> Case:
    """A cohort of 1-3 subjects (sometimes none valid), with the tables' defects drawn."""
    subjects = draw(st.lists(st.sampled_from(IDS[:-1]), min_size=1, max_size=3, unique=True))
    style = draw(st.sampled_from(TIME_STYLES))
    numeric = style in ("number", "epoch")
    step = draw(st.sampled_from([1.0, 0.5, 2.0] if style == "number" else
                                [3600.0] if style == "epoch" else ["1h", "1h", "30min", "1D"]))  # fmt: skip
    if _chance(draw, 5):  # a step of the other kind, or one far too fine
        step = draw(st.sampled_from(["1h", 1.0, 1e-300] if numeric else [1.0, "1s"]))
    step_seconds = 3600.0 if isinstance(step, str) or style == "epoch" else 1.0
    bad = draw(st.sampled_from([0, 0, 0, 2, 8]))  # percent of defective cells
    good = HUGE_NUMBERS if _chance(draw, 5) else GOOD_NUMBERS  # values, amounts, ages
    tables = [draw(observations(subjects, style, step_seconds, bad, good))]
    if draw(st.booleans()):
        tables.append(draw(interventions(subjects, style, step_seconds, bad, good)))
    if draw(st.booleans()):
        tables.append(draw(static(subjects, bad, good)))
    return Case(
        tuple(tables),
        step=step,
        origin=draw(st.sampled_from(["subject", "absolute"])),
        drop_bad_rows=draw(st.booleans()),
        sep=_often(draw, st.none(), st.sampled_from([",", ";"]), 3),
        normalization=draw(st.sampled_from(["population", "individual", "none"])),
    )


# --- writing ---------------------------------------------------------------------------------


def _text(cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, pd.Timestamp):
        return cell.isoformat()
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def _csv(table: Table) -> tuple[bytes, list, list]:
    """The file's bytes, each data row's label (None: read as blank) and line number."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=table.sep, lineterminator=table.newline)
    end = [""] if table.trailing_sep else []
    writer.writerow([*table.header, *(end if table.trailing_sep == "all" else [])])
    labels, lines, line = [], [], 1
    for k, row in enumerate(table.rows):
        texts = [_text(c) for c in row]
        writer.writerow([*texts, *(["9"] if k == table.extra_field else []), *end])
        line += 1
        blank = all(t.strip() in NA_TEXT for t in texts) and k != table.extra_field
        labels.append(None if blank else line)
        lines.append(line)
        if k == table.blank_after:
            buf.write(table.newline)
            line += 1
    text = buf.getvalue()
    try:
        raw = text.encode(table.encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    return (gzip.compress(raw, mtime=0) if table.fmt == "csv.gz" else raw), labels, lines


def _kind(v) -> str:
    return "number" if type(v) in (int, float) else type(v).__name__


def _frame(table: Table) -> pd.DataFrame:
    """Parquet needs one type a column: numbers as floats, mixed types as text."""
    if not table.header:
        return pd.DataFrame(index=range(len(table.rows)))
    columns = []
    for k in range(len(table.header)):
        cells = [row[k] for row in table.rows]
        kinds = {_kind(v) for v in cells if v is not None}
        if len(kinds) > 1:
            cells = [None if v is None else _text(v) for v in cells]
        elif kinds == {"number"}:
            cells = [None if v is None else float(v) for v in cells]
        column = pd.Series(cells, dtype=None if kinds else object)
        if table.categorical and kinds == {"str"}:
            column = column.astype("category")
        columns.append(column)
    return pd.concat(columns, axis=1, keys=range(len(columns))).set_axis(list(table.header), axis=1)


def write_case(case: Case, directory: Path) -> dict[str, Written]:
    """Writes each table of ``case`` into ``directory``; table name -> :class:`Written`."""
    out = {}
    for table in case.tables:
        suffix = {"csv": ".csv", "csv.gz": ".csv.gz", "tsv": ".tsv", "parquet": ".parquet"}
        path = directory / f"{table.name}{suffix[table.fmt]}"
        if table.fmt == "parquet":
            _frame(table).to_parquet(path, index=False)
            records = list(range(1, len(table.rows) + 1))
            out[table.name] = Written(path, records, records)
        else:
            raw, labels, lines = _csv(table)
            path.write_bytes(raw)
            out[table.name] = Written(path, labels, lines, header_row=1)
    return out
