"""A table read once, restricted to a process's share, from which subject chunks are taken.

A Parquet file or a directory of Parquet files (a dataset) is read with ``pyarrow.dataset``, file by
file and row group by row group, keeping only the rows of this process's subjects
(:mod:`twinjax.data.share`): the share is held once, as Arrow columns (text columns of ids
dictionary-encoded, so an id costs 4 bytes a row). A chunk of subjects becomes a pandas
:class:`~twinjax.data.validate.Table` only while it is validated and aligned. A text or DataFrame
table (small: interventions, static covariates) is read as before and restricted the same way.

Rows keep the labels the user sees: in one Parquet file the 1-based record number; in a directory
``file:record`` (the file relative to the directory), or the record number with the file as the
source when all of a chunk's rows come from one file.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from twinjax.data.errors import CohortError
from twinjax.data.read import PARQUET, column_names
from twinjax.data.share import Share
from twinjax.data.validate import RowLabels, Table

_INDEX = re.compile(r"^__index_level_\d+__$")  # a pandas index stored as a column


def is_parquet(src) -> bool:
    """A Parquet file, or a directory holding Parquet files (read as one dataset)."""
    if isinstance(src, pd.DataFrame) or src is None:
        return False
    path = Path(src)
    if path.is_dir():
        return any(p.suffix.lower() in PARQUET for p in path.rglob("*"))
    return path.suffix.lower() in PARQUET


class ParquetSource:
    """A Parquet file or dataset directory: this share's rows, as Arrow columns."""

    def __init__(self, path, name: str, ids: list[str], share: Share, drop_bad_rows: bool):
        self.name, self.source, self.drop_bad_rows = name, str(path), drop_bad_rows
        root = Path(path)
        if not root.exists():
            raise CohortError(f"no such {name} file or directory", source=self.source)
        try:
            dataset = ds.dataset(str(root), format="parquet")
            schema = dataset.schema
        except (pa.ArrowException, OSError) as e:
            raise CohortError(
                f"cannot read the {name} table as Parquet: {e}", source=self.source
            ) from e
        fields = [f for f in schema if not _INDEX.match(f.name)]
        self.columns = column_names([f.name for f in fields], self.source, header_row=None)
        subject_field = dict(zip(self.columns, fields, strict=True)).get(ids[0])
        self.categorical = {c for c, f in zip(self.columns, fields, strict=True)
                            if pa.types.is_dictionary(f.type)}  # fmt: skip
        # text ids as dictionaries: 4 bytes a row instead of the text
        coded = [
            f.name
            for c, f in zip(self.columns, fields, strict=True)
            if c in ids and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        ]
        fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": coded})
        as_read = [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in coded else f
                   for f in schema]  # fmt: skip
        dataset = ds.dataset(str(root), format=fmt, schema=pa.schema(as_read, schema.metadata))
        self.coded = {c for c, f in zip(self.columns, fields, strict=True) if f.name in coded}
        base = root if root.is_dir() else root.parent
        self.files = [str(Path(p).relative_to(base)) for p in dataset.files]
        self.directory = root.is_dir()
        self.table, self.file, self.record = _scan(
            dataset, [f.name for f in fields], subject_field, share, self.source
        )
        self.table = self.table.rename_columns(self.columns)
        self.rows_read = int(self.table.num_rows)

    def column(self, name: str):
        return self.table.column(name)

    def header(self) -> Table:
        """The columns, without rows (for the table checks)."""
        return Table(self.name, self.source, pd.DataFrame(columns=self.columns), np.zeros(0, int))

    def distinct(self, name: str) -> pd.Series:
        """The column's distinct values (a categorical column keeps its categories)."""
        values = pc.unique(self.table.column(name))
        if name in self.coded - self.categorical:
            values = values.dictionary_decode()
        return values.to_pandas()

    def take(self, rows: np.ndarray) -> Table:
        """The rows (positions in this share) as a Table for validation."""
        part = self.table.take(pa.array(rows, pa.int64()))
        for c in self.coded - self.categorical:  # ids read as dictionaries: back to text
            i = part.schema.get_field_index(c)
            part = part.set_column(i, c, part.column(c).cast(part.schema.field(c).type.value_type))
        df = part.to_pandas()
        df.columns = self.columns
        file, record = self.file[rows], self.record[rows]
        source, labels = self.source, record
        if self.directory and len(rows) and np.all(file == file[0]):
            source = str(Path(self.source) / self.files[file[0]])
        elif self.directory:
            labels = RowLabels(self.files, file, record)
        return Table(self.name, source, df, labels, self.drop_bad_rows)


def _scan(dataset, columns, subject_field, share: Share, source: str):
    """The share's rows of every file, row group by row group; their file and record number."""
    batches, files, records = [], [], []
    for k, fragment in enumerate(dataset.get_fragments()):
        seen = 0
        try:
            for batch in fragment.to_batches(
                columns=columns, schema=dataset.schema, batch_size=1 << 20
            ):
                rows = np.arange(seen + 1, seen + batch.num_rows + 1, dtype=np.int64)  # 1-based
                seen += batch.num_rows
                if share.count > 1 and subject_field is not None:
                    keep = share.mask(batch.column(subject_field.name))
                    batch, rows = batch.filter(pa.array(keep)), rows[keep]
                batches.append(batch)
                records.append(rows.astype(np.int32) if seen < 2**31 else rows)
                files.append(np.full(len(rows), k, np.int32))
        except (pa.ArrowException, OSError) as e:
            raise CohortError(
                f"cannot read this Parquet file: {e}", source=str(Path(fragment.path))
            ) from e
    table = pa.Table.from_batches(
        batches, schema=pa.schema([dataset.schema.field(c) for c in columns])
    )
    if any(pa.types.is_dictionary(t) for t in table.schema.types):
        table = table.unify_dictionaries()
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)
    return table, cat(files, np.int32), cat(records, np.int32)


class FrameSource:
    """A table read with :func:`twinjax.data.read.read_table`, restricted to the share."""

    def __init__(self, table: Table, subject: str, share: Share):
        if share.count > 1 and subject in table.df.columns:
            keep = share.mask(_as_arrow(table.df[subject]))
            table = Table(
                table.name,
                table.source,
                table.df[keep].reset_index(drop=True),
                table.labels[keep],
                table.drop_bad_rows,
                header_row=table.header_row,
                notes=table.notes,
            )
        self.table, self.name, self.source = table, table.name, table.source
        self.columns = list(table.df.columns)
        self.rows_read = len(table.df)
        self.categorical = {c for c in self.columns
                            if isinstance(table.df[c].dtype, pd.CategoricalDtype)}  # fmt: skip

    def column(self, name: str):
        return _as_arrow(self.table.df[name])

    def header(self) -> Table:
        return self.table

    def distinct(self, name: str) -> pd.Series:
        return self.table.df[name].drop_duplicates()

    def take(self, rows: np.ndarray) -> Table:
        t = self.table
        df = t.df.iloc[rows].reset_index(drop=True)
        return Table(t.name, t.source, df, t.labels[rows], t.drop_bad_rows,
                     header_row=t.header_row, notes=list(t.notes))  # fmt: skip


def _as_arrow(col: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A pandas column as Arrow (mixed Python types as text, so that the ids hash as text)."""
    try:
        return pa.array(col, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if pd.isna(v) else str(v) for v in col], pa.string())
