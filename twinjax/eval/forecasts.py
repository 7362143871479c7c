"""One-step forecasts of a segment in data units, with their observed targets."""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Bool

from twinjax.data import Cohort, CohortArrays, NormStats, denormalize, denormalize_scale
from twinjax.twins import TwinSpec, cohort_predictions


class Forecasts(NamedTuple):
    """One-step forecasts of one segment in data units, [N, K, F]; ``t``/``inside`` [N, K]."""

    mean: np.ndarray
    scale: np.ndarray
    y: np.ndarray
    observed: np.ndarray
    t: np.ndarray
    inside: np.ndarray


def segment_forecasts(
    params,
    spec: TwinSpec,
    arrays: CohortArrays,
    stats: NormStats,
    cohort: Cohort,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    shared: bool,
    scale_factor: np.ndarray,
) -> Forecasts:
    """Forecasts of ``segment`` mapped back to data units, with the cohort's values there.

    Args:
      params: the population twin (``shared``) or personal twins (leading individuals axis).
      spec, arrays: the twins' architecture and the prepared cohort.
      stats: the value normalization fitted by ``prepare``; cohort: the data-unit cohort.
      segment: the steps to forecast; history: steps of data each forecast sees.
      scale_factor: predictive-scale recalibration, broadcast against ``[N, K, F]``.

    Returns:
      :class:`Forecasts`; ``observed`` is the cohort's mask at each target inside the segment.
    """
    mean, scale, t, inside = cohort_predictions(
        params, spec, arrays, segment, history=history, shared=shared
    )
    rows = np.arange(cohort.n_individuals)[:, None]
    t, inside = np.asarray(t), np.asarray(inside)
    return Forecasts(
        mean=np.asarray(denormalize(stats, mean)),
        scale=np.asarray(denormalize_scale(stats, scale)) * scale_factor,
        y=cohort.values[rows, t],
        observed=cohort.mask[rows, t] & inside[..., None],
        t=t,
        inside=inside,
    )
