"""Evaluation: per-individual forecast metrics, forecasts in data units, report figures; linear
mixed models (a frequentist baseline)."""

from twinjax.eval.forecasts import Forecasts, segment_forecasts
from twinjax.eval.metrics import gaussian_metrics, summarize
from twinjax.eval.mixed import MixedFit, blup, fit_lme, gls, predict_lme

__all__ = [
    "Forecasts",
    "MixedFit",
    "blup",
    "fit_lme",
    "gaussian_metrics",
    "gls",
    "predict_lme",
    "segment_forecasts",
    "summarize",
]
