"""Time columns and grid steps: numbers, ISO-8601 strings or timestamps; a step or a duration.

A time column is read in one of two kinds:

* ``number``: any numeric column (or text that parses as numbers); the grid ``step`` is a number
  in the same unit;
* ``datetime``: pandas/Arrow timestamps (with or without a time zone), Python datetimes, or ISO-8601
  text (``2024-03-01``, ``2024-03-01T08:30``, ``2024-03-01 08:30:00+01:00``). They are read as
  seconds since 1970-01-01 (zoned times in UTC; naive times as given), and the step must be a
  duration (``"15min"``, ``"1h"``, ``"1D"``), turned into seconds.

A text column is a datetime column when more of its values parse as ISO-8601 times than as
numbers; the rest are then its bad rows.
"""

import re
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

TimeKind = Literal["number", "datetime"]

_ZONE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


class Step(NamedTuple):
    """A grid step: ``size`` in the time unit (seconds for datetimes); ``duration`` if one."""

    size: float
    duration: pd.Timedelta | None = None

    def describe(self) -> str:
        """``"0.5"``, or a duration in its largest whole unit (``"15min"``, ``"1h"``, ``"2D"``)."""
        if self.duration is None:
            return f"{self.size:g}"
        for unit, seconds in (("D", 86400), ("h", 3600), ("min", 60)):
            if self.size % seconds == 0:
                return f"{int(self.size // seconds)}{unit}"
        return f"{self.size:g}s"


def parse_step(step) -> Step:
    """A number (or numeric text) is a plain step; text like ``15min``/``1h``/``1D`` a duration.

    Raises:
        ValueError: a step that is neither, or not > 0.

    >>> parse_step(0.5), parse_step("1h").size, parse_step("15min").size
    (Step(size=0.5, duration=None), 3600.0, 900.0)
    """
    if isinstance(step, pd.Timedelta | np.timedelta64):
        duration = pd.Timedelta(step)
        out = Step(duration.total_seconds(), duration)
    elif isinstance(step, int | float | np.number) and not isinstance(step, bool):
        out = Step(float(step))
    elif isinstance(step, str):
        try:
            out = Step(float(step))
        except ValueError:
            try:
                duration = pd.Timedelta(step.strip())
            except ValueError:
                raise ValueError(
                    f"step {step!r} is neither a number nor a duration such as '15min', '1h', '1D'"
                ) from None
            out = Step(duration.total_seconds(), duration)
    else:
        raise ValueError(f"step must be a number or a duration string, got {step!r}")
    if not (np.isfinite(out.size) and out.size > 0):
        raise ValueError(f"step must be > 0, got {step!r}")
    return out


class ParsedTimes(NamedTuple):
    """A time column as float64 (NaN where missing or unparsable) and its kind."""

    values: np.ndarray
    kind: TimeKind
    missing: np.ndarray  # True where the cell was empty (vs present but unparsable)
    zoned: bool = False  # datetimes that carried a time zone (converted to UTC)


def parse_times(col: pd.Series) -> ParsedTimes:
    """Reads a time column (see the module docstring); never raises on bad cells.

    >>> parse_times(pd.Series(["2024-01-01T00:00", "2024-01-01T01:00"])).values.tolist()
    [1704067200.0, 1704070800.0]
    >>> parse_times(pd.Series([3, 1.5])).kind
    'number'
    """
    if isinstance(col.dtype, pd.CategoricalDtype):  # e.g. a dictionary-encoded Parquet column
        col = col.astype(col.cat.categories.dtype)
    missing = col.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(col):
        return ParsedTimes(_seconds(col), "datetime", missing, _is_zoned(col))
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return ParsedTimes(col.to_numpy(np.float64, na_value=np.nan), "number", missing)
    as_number = pd.to_numeric(col, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    as_date, zoned = _to_datetime(col)
    n_date = int(as_date.notna().sum())
    if n_date > int(np.sum(~np.isnan(as_number))):
        return ParsedTimes(_seconds(as_date), "datetime", missing, zoned)
    return ParsedTimes(as_number, "number", missing)


def _to_datetime(col: pd.Series) -> tuple[pd.Series, bool]:
    if col.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64)).any():
        zoned = bool(col.map(lambda v: getattr(v, "tzinfo", None) is not None).any())
        return pd.to_datetime(col, errors="coerce", utc=zoned), zoned
    text = col.astype("string").str.strip()
    zoned = bool(text.str.contains(_ZONE, na=False).any())
    return pd.to_datetime(text, errors="coerce", format="ISO8601", utc=zoned), zoned


def _is_zoned(col: pd.Series) -> bool:
    return getattr(col.dt, "tz", None) is not None


def _seconds(col: pd.Series) -> np.ndarray:
    """Seconds since 1970-01-01 (UTC for zoned times), NaN for NaT.

    Through microseconds, whose int64 range spans years 1-9999 (nanoseconds overflow outside
    1677-2262, and pandas 3 reads ISO text in coarser units that hold such dates).
    """
    if _is_zoned(col):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = col.to_numpy(dtype="datetime64[us]")
    out = stamps.view(np.int64).astype(np.float64) / 1e6
    out[np.isnat(stamps)] = np.nan
    return out


def to_datetimes(seconds: np.ndarray, *, zoned: bool) -> pd.Series:
    """Inverse of the datetime reading: seconds since 1970 to timestamps (UTC if ``zoned``)."""
    out = pd.to_datetime(np.round(np.asarray(seconds) * 1e6).astype(np.int64), unit="us")
    return pd.Series(out.tz_localize("UTC") if zoned else out)
