"""The data options (the app's ``data`` group): where the cohort comes from (the synthetic
cohort, or long-format files read by :func:`twinjax.data.read_cohort`) and how
:func:`twinjax.data.prepare` normalizes and splits it into training windows. A plain
dataclass; the app registers it with Hydra (``twinjax.config``) and the pipeline passes its
fields to the readers and to ``prepare``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class DataConfig:
    source: Literal["synthetic", "files"] = "synthetic"  # the synthetic cohort or your files
    # synthetic cohort
    n_individuals: int = 64  # how many individuals
    n_steps: int = 1440  # hourly grid: 60 days per individual
    obs_prob: float = 0.7  # probability that a stream is measured at a grid step
    dropout_prob: float = 0.02  # per-step probability of a missing block starting
    noise: float = 0.1  # observation noise SD of the synthetic cohort
    # files (long format)
    observations: str | None = None  # the observations: subject, time, variable, value
    interventions: str | None = None  # long-format table of interventions (doses, meals...)
    static: str | None = None  # one row per subject: covariates that do not change
    subject_col: str = "subject_id"  # column names of the long-format files
    time_col: str = "time"  # ... the time of each row
    variable_col: str = "variable"  # ... the stream (variable) name
    value_col: str = "value"  # ... the measured value
    kind_col: str = "kind"  # ... an intervention's kind (e.g. a dose route)
    amount_col: str = "amount"  # ... an intervention's amount
    # grid step: a number in the unit of numeric times, or a duration (15min, 1h, 1D) for
    # ISO-8601 / timestamp times (Any: OmegaConf 2.3 has no float | str)
    step: Any = 1.0
    # where each subject's grid starts: "subject" (its first time) or "absolute" (one grid for
    # all, from the cohort's first time rounded down to a multiple of the step)
    origin: Literal["subject", "absolute"] = "subject"
    sep: str | None = None  # delimiter of text files; None: found in the header (, ; TAB |)
    encoding: str | None = None  # text encoding; None: UTF-8, else Latin-1 (noted in the summary)
    drop_bad_rows: bool = False  # drop malformed rows (reported) instead of stopping
    # validate and align this many subjects at a time (a Parquet file or directory is held once,
    # as Arrow columns; the cohort is the same); None: all at once
    chunk_subjects: int | None = None
    target: str | None = None  # variable to forecast; default: the first
    # preprocessing
    normalization: Literal["population", "individual", "none"] = "population"
    context: int = 12  # steps of history a training window starts with
    horizon: int = 6  # steps a training window forecasts after its context
    val_fraction: float = 0.15  # each subject's last fraction before the test period: validation
    test_fraction: float = 0.15  # each subject's last fraction of its timeline: held-out test
