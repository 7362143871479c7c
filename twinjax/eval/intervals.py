"""Central intervals ``{level: (lo, hi)}`` of a Gaussian predictive or of predictive draws, for
:meth:`twinjax.eval.score.Forecast.from_intervals` (which scores them with every other
forecast)."""

import numpy as np
from jaxtyping import ArrayLike, Float
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
