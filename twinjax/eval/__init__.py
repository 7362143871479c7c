"""Evaluation: per-individual forecast metrics, forecasts in data units, report figures."""

from twinjax.eval.forecasts import Forecasts, segment_forecasts
from twinjax.eval.metrics import gaussian_metrics, summarize

__all__ = ["Forecasts", "gaussian_metrics", "segment_forecasts", "summarize"]
