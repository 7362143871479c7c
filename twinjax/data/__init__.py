"""Cohort data layer: long-format tables to aligned arrays with masks, preprocessing, splits."""

from twinjax.data.cohort import Cohort
from twinjax.data.errors import CohortError
from twinjax.data.split import TimeSplit, segment_mask, take_windows, time_split, window_starts
from twinjax.data.synthetic import synthetic_cohort

__all__ = [
    "Cohort",
    "CohortError",
    "TimeSplit",
    "segment_mask",
    "synthetic_cohort",
    "take_windows",
    "time_split",
    "window_starts",
]
