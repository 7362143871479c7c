"""Evaluation: cohort predictions, per-individual metrics, plots."""

from twinjax.eval.metrics import gaussian_metrics, summarize
from twinjax.eval.predict import cohort_predictions

__all__ = ["cohort_predictions", "gaussian_metrics", "summarize"]
