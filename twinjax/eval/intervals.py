"""Point and interval scores of forecasts given as a mean and central intervals at several levels.

Every forecaster (Gaussian twins, posterior draws, the LOCF baseline) is scored the same way:
``mean`` and ``intervals = {level: (lo, hi)}``, arrays of one shape, with a ``mask`` of the
targets that count. :func:`interval_summary` gives RMSE, MAE, coverage and mean width of one
level; :func:`coverage_curve` the coverage at every level (a reliability curve: nominal vs
empirical); a subgroup is a narrower ``mask``.
"""

import numpy as np
from jaxtyping import ArrayLike, Bool, Float
from scipy.special import ndtri

Intervals = dict[float, tuple[np.ndarray, np.ndarray]]


def gaussian_intervals(
    mean: Float[ArrayLike, "..."], sd: Float[ArrayLike, "..."], levels: tuple[float, ...]
) -> Intervals:
    """Central intervals ``mean -/+ z sd`` of a Gaussian predictive, per level.

    Example:
        >>> lo, hi = gaussian_intervals(np.zeros(1), np.ones(1), (0.9,))[0.9]
        >>> round(float(hi[0]), 4), bool(lo[0] == -hi[0])
        (1.6449, True)
    """
    mean, sd = np.asarray(mean, np.float64), np.asarray(sd, np.float64)
    return {lv: (mean - ndtri(0.5 + lv / 2) * sd, mean + ndtri(0.5 + lv / 2) * sd) for lv in levels}


def sample_intervals(draws: Float[ArrayLike, "draws ..."], levels: tuple[float, ...]) -> Intervals:
    """Central intervals from the empirical quantiles of predictive draws (axis 0), per level."""
    draws = np.asarray(draws, np.float64)
    return {lv: tuple(np.quantile(draws, [0.5 - lv / 2, 0.5 + lv / 2], axis=0)) for lv in levels}


def interval_summary(
    y: Float[ArrayLike, "..."],
    mean: Float[ArrayLike, "..."],
    lo: Float[ArrayLike, "..."],
    hi: Float[ArrayLike, "..."],
    mask: Bool[ArrayLike, "..."],
) -> dict[str, float]:
    """RMSE and MAE of ``mean``, coverage and mean width of ``[lo, hi]`` over the ``mask``ed
    targets (NaN scores and ``n`` 0 when none is).

    Example:
        >>> s = interval_summary(np.array([1.0, 3.0]), np.zeros(2), -np.ones(2) * 2,
        ...                      np.ones(2) * 2, np.ones(2, bool))
        >>> s["rmse"] ** 2, s["mae"], s["coverage"], s["width"], s["n"]
        (5.0, 2.0, 0.5, 4.0, 2)
    """
    y, mean, lo, hi = (np.asarray(a, np.float64) for a in (y, mean, lo, hi))
    m = np.asarray(mask, bool)
    n = int(m.sum())
    if n == 0:
        return {"rmse": np.nan, "mae": np.nan, "coverage": np.nan, "width": np.nan, "n": 0}
    err = (y - mean)[m]
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "coverage": float(np.mean((y[m] >= lo[m]) & (y[m] <= hi[m]))),
        "width": float(np.mean((hi - lo)[m])),
        "n": n,
    }


def coverage_curve(
    y: Float[ArrayLike, "..."], intervals: Intervals, mask: Bool[ArrayLike, "..."]
) -> dict[float, float]:
    """Empirical coverage of each level's interval over the masked targets (nominal -> actual)."""
    y, m = np.asarray(y, np.float64), np.asarray(mask, bool)
    return {
        lv: float(np.mean((y[m] >= np.asarray(lo)[m]) & (y[m] <= np.asarray(hi)[m])))
        for lv, (lo, hi) in intervals.items()
    }
