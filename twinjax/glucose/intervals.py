"""Split-conformal interval widths for glucose forecasts, calibrated on training days.

A twin's 90% intervals are only as honest as its error model; a mechanistic twin fitted on a few
days understates the error of days it has not seen. :func:`interval_scale` finds, per patient and
horizon, the factor ``c`` by which the interval's half-widths (about the mean, each side its own)
must be stretched so that it covers :data:`~.scoring.LEVEL` of forecasts made on days the twin
was not fitted on; :func:`widen` applies it to new forecasts.
"""

import numpy as np
from jaxtyping import Float

from twinjax.glucose.scoring import LEVEL, Forecasts, day_origins


def interval_scale(
    fc: Forecasts, y: Float[np.ndarray, "patients origins horizons"], *, pooled: bool = False
) -> np.ndarray:
    """``[patients, horizons]``: the smallest stretch of each side's half-width that puts
    ``LEVEL`` of the readings ``y`` inside (the ``LEVEL`` quantile of each reading's distance
    from the mean in units of the half-width on its side), per patient or ``pooled`` over them
    (the same factor for all, for few calibration points per patient)."""
    mean, lo, hi = (np.asarray(a, np.float64) for a in fc)
    y = np.asarray(y, np.float64)
    half = np.where(y >= mean, hi - mean, mean - lo)
    ratio = np.abs(y - mean) / np.maximum(half, 1e-6)
    if pooled:
        whole = np.quantile(ratio.reshape(-1, ratio.shape[-1]), LEVEL, axis=0)
        return np.broadcast_to(whole, (ratio.shape[0], ratio.shape[-1])).copy()
    return np.quantile(ratio, LEVEL, axis=1)


def widen(fc: Forecasts, scale: Float[np.ndarray, "patients horizons"]) -> Forecasts:
    """``fc`` with each side's half-width multiplied by ``scale`` (per patient and horizon)."""
    c = np.asarray(scale)[:, None, :]
    mean = np.asarray(fc.mean)
    return Forecasts(mean, mean - c * (mean - fc.lo), mean + c * (fc.hi - mean))


__all__ = ["day_origins", "interval_scale", "widen"]  # day_origins: from scoring
