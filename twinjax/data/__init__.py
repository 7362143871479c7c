"""Cohort data layer: long-format tables to aligned arrays with masks, preprocessing, splits."""

from twinjax.data.cohort import Cohort
from twinjax.data.errors import CohortError
from twinjax.data.io import read_cohort, to_long
from twinjax.data.normalize import (
    Normalizer,
    NormStats,
    denormalize,
    denormalize_scale,
    fit_normalizer,
    identity_stats,
    make_normalizer,
    normalize,
    stats_from_dict,
    stats_to_dict,
)
from twinjax.data.options import DataConfig
from twinjax.data.pca import PCAState, pca_fit, pca_inverse, pca_transform
from twinjax.data.prepare import CohortArrays, Scalers, prepare
from twinjax.data.series import Series
from twinjax.data.share import subject_share
from twinjax.data.split import TimeSplit, segment_mask, take_windows, time_split, window_starts
from twinjax.data.summary import data_summary, exclude_unsplittable
from twinjax.data.synthetic import synthetic_cohort

__all__ = [
    "Cohort",
    "CohortArrays",
    "CohortError",
    "DataConfig",
    "NormStats",
    "Normalizer",
    "PCAState",
    "Scalers",
    "Series",
    "TimeSplit",
    "data_summary",
    "denormalize",
    "denormalize_scale",
    "exclude_unsplittable",
    "fit_normalizer",
    "identity_stats",
    "make_normalizer",
    "normalize",
    "pca_fit",
    "pca_inverse",
    "pca_transform",
    "prepare",
    "read_cohort",
    "segment_mask",
    "stats_from_dict",
    "stats_to_dict",
    "subject_share",
    "synthetic_cohort",
    "take_windows",
    "time_split",
    "to_long",
    "window_starts",
]
