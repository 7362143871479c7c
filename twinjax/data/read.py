"""One input table from a file or a DataFrame: formats, compression, encodings and delimiters.

Files: Parquet (``.parquet``, ``.pq``) and delimited text (``.csv``, ``.tsv``, ``.txt``), the text
optionally compressed (``.gz``, ``.bz2``, ``.xz``, ``.zip``, ``.zst``; Zstandard is decompressed
by pyarrow, so no extra package is needed). Text is decoded as UTF-8 (a byte-order mark is
skipped) and, if it is not valid UTF-8, as Latin-1 (noted in the table's ``notes``); an explicit
``encoding`` is used as given. The delimiter, unless given, is the one of ``, ; TAB |`` found
most often in the header line. A delimiter ending every data line is read as nothing; fields
beyond the header's otherwise raise, naming the lines, as do two column names that are one once
their surrounding spaces are removed.
"""

import bz2
import csv
import gzip
import io
import lzma
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from twinjax.data.errors import CohortError
from twinjax.data.validate import Table

PARQUET = (".parquet", ".pq")
TEXT = (".csv", ".tsv", ".txt")
_COMPRESSION = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
_DELIMITERS = (",", ";", "\t", "|")


def read_table(
    src,
    name: str,
    id_cols: list[str],
    *,
    drop_bad_rows: bool,
    sep: str | None = None,
    encoding: str | None = None,
) -> Table:
    """Reads one table; ids are read as strings from text files (keeps leading zeros).

    Raises:
        CohortError: a missing path, a directory, an unknown suffix, an undecodable or
            unparsable file, or a file with no header (each naming the file).
    """
    if isinstance(src, pd.DataFrame):
        df = src.reset_index(drop=True)
        return Table(name, f"{name} DataFrame", df, src.index.to_numpy(), drop_bad_rows)
    path, source = Path(src), str(src)
    _check_path(path, source, name)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in PARQUET:
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise CohortError(f"cannot read the {name} table as Parquet: {e}", source=source) from e
        df.columns = column_names(df.columns, source, header_row=None)
        return Table(name, source, df, np.arange(1, len(df) + 1), drop_bad_rows)
    text_suffix = suffixes[-1] if suffixes and suffixes[-1] in TEXT else None
    packed = (*_COMPRESSION, ".zip", ".zst")
    compressed = len(suffixes) == 2 and suffixes[0] in TEXT and suffixes[-1] in packed
    if not (text_suffix or compressed):
        raise CohortError(
            "unsupported file type: use .csv (optionally .gz/.bz2/.xz/.zip/.zst) or .parquet, "
            "or pass a DataFrame",
            source=source,
        )
    notes: list[str] = []
    text = _decode(_bytes(path, suffixes[-1], source), source, encoding, notes)
    sep = sep or _sniff(text, source, notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # index_col=False: a delimiter ending every data line is not an index column (by
            # default pandas would take the first column as the index and shift the others)
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype={c: str for c in id_cols},
                skip_blank_lines=False,
                index_col=False,
            )
    except pd.errors.ParserWarning as e:  # fields beyond the header's, which pandas would cut
        raise CohortError(
            "these lines have more fields than the header: quote values that hold the "
            f"delimiter {sep!r}, or name every column in the header",
            source=source,
            rows=_long_lines(text, sep),
        ) from e
    except pd.errors.EmptyDataError as e:
        raise CohortError(
            f"the {name} file is empty (not even a header line): expected columns such as "
            f"{id_cols}",
            source=source,
        ) from e
    except (pd.errors.ParserError, ValueError) as e:
        raise CohortError(f"cannot read the {name} table: {e}", source=source) from e
    df.columns = column_names(df.columns, source, header_row=1)
    labels = np.arange(2, len(df) + 2)
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        notes.append(
            f"{source}: skipped {int(blank.sum())} line(s) with every field empty (blank, or only "
            f"delimiters or NA): line(s) {labels[blank][:10].tolist()}"
        )
    df, labels = df[~blank].reset_index(drop=True), labels[~blank]
    return Table(name, source, df, labels, drop_bad_rows, header_row=1, notes=notes)


def column_names(columns, source: str, header_row: int | None) -> list[str]:
    """Column names without surrounding spaces; two that become one name raise."""
    names = [str(c).strip() for c in columns]
    for k, n in enumerate(names):
        if n in names[:k]:
            raise CohortError(
                "two columns have this name (once the spaces around names are removed): "
                "rename or remove one",
                source=source,
                rows=None if header_row is None else [header_row],
                column=n,
            )
    return names


def _long_lines(text: str, sep: str) -> list[int] | None:
    """Line numbers of the records with more fields than the header (None if none is found)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    width = len(next(reader, []))
    return [reader.line_num for row in reader if len(row) > width] or None


def _check_path(path: Path, source: str, name: str) -> None:
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (*PARQUET, *TEXT))
        raise CohortError(
            f"the {name} path is a directory, not a file: pass one file"
            + (f" (it holds {found[:5]})" if found else ""),
            source=source,
        )
    if not path.exists():
        where = path.parent if str(path.parent) not in ("", ".") else Path.cwd()
        raise CohortError(
            f"no such {name} file (looked in {where.resolve()}): check the path; a relative "
            "path is relative to the directory the command was started from",
            source=source,
        )


def _bytes(path: Path, suffix: str, source: str) -> bytes:
    try:
        if suffix == ".zst":
            import pyarrow as pa

            with pa.input_stream(str(path), compression="zstd") as f:
                return f.read()
        raw = path.read_bytes()
        if suffix in _COMPRESSION:
            return _COMPRESSION[suffix](raw)
        if suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise CohortError(
                        f"a zip file must hold exactly one table, found {members}", source=source
                    )
                return z.read(members[0])
        return raw
    except CohortError:
        raise
    except Exception as e:  # OSError, gzip.BadGzipFile, lzma.LZMAError, pyarrow errors
        raise CohortError(f"cannot read or decompress the file: {e}", source=source) from e


def _decode(raw: bytes, source: str, encoding: str | None, notes: list[str]) -> str:
    if encoding:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as e:
            raise CohortError(
                f"cannot decode the file as {encoding}: {e}; give the file's encoding "
                "(e.g. encoding='utf-8' or 'latin-1')",
                source=source,
            ) from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        notes.append(
            f"{source} is not valid UTF-8 (byte {e.start}); read as Latin-1 (ISO-8859-1): pass "
            "the encoding if it is another one"
        )
        return raw.decode("latin-1")


def _sniff(text: str, source: str, notes: list[str]) -> str:
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    if counts[best] == 0:
        return ","
    if best != ",":
        notes.append(f"{source}: columns separated by {best!r} (found in the header)")
    return best
