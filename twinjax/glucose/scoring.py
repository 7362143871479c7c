"""The forecast protocol every glucose twin is scored by, so their tables compare.

The records are a :class:`twinjax.data.Cohort` from :func:`twinjax.physiology.simulate_cohort`
(CGM every ``step`` minutes; interventions per period). The first ``train_days`` days are the
twins' to learn from; forecasts are scored on the days after. A forecast is made at each origin
``o`` (a CGM cell, every ``every`` minutes of the held-out days) from the records up to and
including cell ``o`` plus the carbohydrates and insulin of the following periods (announced meals
and the insulin given: the twin is asked "what will the CGM read if this is what happens"), for
each horizon in ``HORIZONS`` minutes. It is scored against the CGM reading at ``o + h / step``:
RMSE, and whether the reading fell inside the central 90% interval (:func:`score`, through
:func:`twinjax.eval.score.score`).
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import Float

from twinjax.eval.score import Forecast
from twinjax.eval.score import score as score_forecast

HORIZONS = (30, 60)  # minutes ahead
LEVEL = 0.9  # the central interval scored


class Forecasts(NamedTuple):
    """One twin's forecasts: ``[patients, origins, len(HORIZONS)]`` each (mg/dL)."""

    mean: Float[np.ndarray, "patients origins horizons"]
    lo: Float[np.ndarray, "patients origins horizons"]  # 5% quantile
    hi: Float[np.ndarray, "patients origins horizons"]  # 95% quantile


def day_origins(n_cells: int, *, step: float, start_days: float, end_days: float,
                every: float = 30.0) -> np.ndarray:  # fmt: skip
    """Origins every ``every`` minutes from ``start_days`` up to ``end_days``, leaving room for
    the longest horizon before ``end_days`` (so no target lies past it)."""
    first = int(round(start_days * 1440 / step))
    end = min(end_days * 1440 / step, n_cells - 1)  # end_days may be inf: to the end
    last = int(round(end)) - int(round(max(HORIZONS) / step))
    at = np.arange(first, last + 1, max(int(round(every / step)), 1))
    if at.size == 0:
        raise ValueError(f"no origins between day {start_days} and day {end_days}")
    return at


def origins(n_cells: int, *, step: float, train_days: float, every: float = 30.0) -> np.ndarray:
    """The CGM cells forecasts are made from: every ``every`` minutes after the training days,
    leaving room for the longest horizon (:func:`day_origins` to the end of the records)."""
    try:
        return day_origins(n_cells, step=step, start_days=train_days, end_days=np.inf, every=every)
    except ValueError:
        raise ValueError(
            f"no held-out origins: {n_cells} cells of {step} min leave nothing after "
            f"train_days={train_days} with a {max(HORIZONS)}-minute horizon"
        ) from None


def targets(cgm: Float[np.ndarray, "patients cells"], at: np.ndarray, *, step: float) -> np.ndarray:
    """The readings each forecast is scored against: ``[patients, origins, horizons]``."""
    ahead = np.array([int(round(h / step)) for h in HORIZONS])
    return np.asarray(cgm)[:, at[:, None] + ahead[None, :]]


def last_value(cgm: Float[np.ndarray, "patients cells"], at: np.ndarray, *, step: float,
               train_days: float) -> Forecasts:  # fmt: skip
    """The baseline: the reading at the origin, with intervals from the empirical quantiles of
    the ``h``-minute changes over each patient's training days."""
    cgm = np.asarray(cgm)
    first = int(round(train_days * 1440 / step))
    mean, lo, hi = [], [], []
    for h in HORIZONS:
        k = int(round(h / step))
        change = cgm[:, k:first] - cgm[:, : first - k]
        q_lo, q_hi = np.quantile(change, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)
        now = cgm[:, at]
        mean.append(now), lo.append(now + q_lo[:, None]), hi.append(now + q_hi[:, None])
    return Forecasts(*(np.stack(a, -1) for a in (mean, lo, hi)))


def as_forecast(fc: Forecasts, y: np.ndarray, k: int) -> Forecast:
    """Horizon ``HORIZONS[k]``'s forecasts as a :class:`twinjax.eval.score.Forecast`: patients
    as individuals, origins as its columns, the 5% and 95% quantiles."""
    level = lambda a: np.asarray(a, np.float64)[..., k]
    lo, hi = (1 - LEVEL) / 2, (1 + LEVEL) / 2
    return Forecast(mean=level(fc.mean), quantiles=np.stack([level(fc.lo), level(fc.hi)]),
                    levels=(lo, hi), y=level(y), mask=np.ones(level(y).shape, bool))  # fmt: skip


def score(fc: Forecasts, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per patient and horizon: ``rmse`` and ``coverage90`` (``[patients, horizons]`` each),
    from :func:`twinjax.eval.score.score` of each horizon's forecasts."""
    per = [score_forecast(as_forecast(fc, y, k))["per_individual"] for k in range(len(HORIZONS))]
    return {
        "rmse": np.stack([p["rmse"].to_numpy(float) for p in per], -1),
        "coverage90": np.stack([p["coverage_90"].to_numpy(float) for p in per], -1),
    }


def by_group(per_patient: dict[str, np.ndarray], groups: list[str]) -> dict[str, dict]:
    """Means over the patients of each age group (and ``all``), per metric and horizon:
    ``{group: {f"{metric}_{h}min": value}}``."""
    groups = np.asarray(groups)
    out = {}
    for g in [*sorted(set(groups)), "all"]:
        rows = np.ones(len(groups), bool) if g == "all" else groups == g
        out[g] = {
            f"{m}_{h}min": float(np.mean(v[rows, j]))
            for m, v in per_patient.items()
            for j, h in enumerate(HORIZONS)
        }
    return out
