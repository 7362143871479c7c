"""Evaluation: per-individual forecast metrics, forecasts in data units, report figures;
interval scores, the last-value-carried-forward baseline and linear mixed models."""

from twinjax.eval.baselines import Carried, carry_forward, locf_intervals, observed_changes
from twinjax.eval.forecasts import Forecasts, segment_forecasts
from twinjax.eval.intervals import gaussian_intervals, sample_intervals
from twinjax.eval.metrics import gaussian_metrics, summarize
from twinjax.eval.mixed import MixedFit, blup, fit_lme, gls, predict_lme
from twinjax.eval.score import FORECAST_COLUMNS

__all__ = [
    "FORECAST_COLUMNS",
    "Carried",
    "Forecasts",
    "MixedFit",
    "blup",
    "carry_forward",
    "fit_lme",
    "gaussian_intervals",
    "gaussian_metrics",
    "gls",
    "locf_intervals",
    "observed_changes",
    "predict_lme",
    "sample_intervals",
    "segment_forecasts",
    "summarize",
]
