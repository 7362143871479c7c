"""One-step forecasts of a segment in data units, with their observed targets; standardized
errors of multi-step rollouts from a segment's origins (the per-horizon calibration)."""

from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import ArrayLike, Bool

from twinjax.data import Cohort, CohortArrays, NormStats, denormalize, denormalize_scale
from twinjax.eval.score import Forecast
from twinjax.twins import Spec, cohort_predictions, segment_rollouts


class Forecasts(NamedTuple):
    """One-step forecasts of one segment in data units, [N, K, F]; ``t``/``inside`` [N, K]."""

    mean: np.ndarray
    scale: np.ndarray
    y: np.ndarray
    observed: np.ndarray
    t: np.ndarray
    inside: np.ndarray

    def stream(self, f: int, *, subject=None, method: str = "") -> Forecast:
        """Stream ``f``'s Gaussian forecasts as a :class:`twinjax.eval.score.Forecast`
        (individuals by forecast steps; only observed values count)."""
        mask = np.asarray(self.observed[..., f], bool)
        as64 = lambda x: np.asarray(x[..., f], np.float64)
        return Forecast(mean=as64(self.mean), scale=as64(self.scale),
                        y=np.where(mask, as64(self.y), 0.0), mask=mask, subject=subject,
                        method=method)  # fmt: skip


def _pad(x: np.ndarray, size: int, fill) -> np.ndarray:
    width = [(0, 0), (0, size - x.shape[1])] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, width, constant_values=fill)


def chunked_predictions(
    params,
    spec: Spec,
    arrays: CohortArrays,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    shared: bool,
    rows: int = 0,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~twinjax.twins.cohort_predictions` on ``rows`` individuals at a time (0: all).

    The forecasts of an individual do not depend on the others, so chunking bounds the memory
    (a forecast re-runs the twin over its ``history`` steps: the intermediates grow with
    individuals x targets x history) and changes nothing but float rounding. Chunks' targets
    are padded to the longest segment (``inside`` False, scale 1). Returns host arrays.
    ``mesh``: each call's individuals split over its devices (see ``cohort_predictions``).
    """
    segment = np.asarray(segment)
    n = segment.shape[0]
    if rows <= 0 or rows >= n:
        return tuple(map(np.asarray, cohort_predictions(
            params, spec, arrays, segment, history=history, shared=shared, mesh=mesh
        )))  # fmt: skip
    size = int(segment.sum(1).max())
    parts = []
    for lo in range(0, n, rows):
        part = slice(lo, min(lo + rows, n))
        p = params if shared else jax.tree.map(lambda x, part=part: x[part], params)
        out = cohort_predictions(
            p, spec, arrays.take(part), segment[part], history=history, shared=shared, mesh=mesh
        )
        mean, scale, t, inside = map(np.asarray, out)
        parts.append((_pad(mean, size, 0.0), _pad(scale, size, 1.0), _pad(t, size, 0),
                      _pad(inside, size, False)))  # fmt: skip
    return tuple(np.concatenate(xs) for xs in zip(*parts, strict=True))


def segment_forecasts(
    params,
    spec: Spec,
    arrays: CohortArrays,
    stats: NormStats,
    cohort: Cohort,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    shared: bool,
    scale_factor: np.ndarray,
    rows: int = 0,
    mesh: jax.sharding.Mesh | None = None,
) -> Forecasts:
    """Forecasts of ``segment`` mapped back to data units, with the cohort's values there.

    Args:
      params: the population twin (``shared``) or personal twins (leading individuals axis).
      spec, arrays: the twins' architecture and the prepared cohort.
      stats: the value normalization fitted by ``prepare``; cohort: the data-unit cohort.
      segment: the steps to forecast; history: steps of data each forecast sees.
      scale_factor: predictive-scale recalibration, broadcast against ``[N, K, F]``.
      rows: individuals forecast at a time (0: all; see :func:`chunked_predictions`).
      mesh: each call's individuals split over its devices (None: one device).

    Returns:
      :class:`Forecasts`; ``observed`` is the cohort's mask at each target inside the segment.
    """
    mean, scale, t, inside = chunked_predictions(
        params, spec, arrays, segment, history=history, shared=shared, rows=rows, mesh=mesh
    )
    index = np.arange(cohort.n_individuals)[:, None]
    return Forecasts(
        mean=np.asarray(denormalize(stats, mean)),
        scale=np.asarray(denormalize_scale(stats, scale)) * scale_factor,
        y=cohort.values[index, t],
        observed=cohort.mask[index, t] & inside[..., None],
        t=t,
        inside=inside,
    )


def horizon_sq_z(
    params,
    spec: Spec,
    arrays: CohortArrays,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    horizon: int,
    n_samples: int,
    key: jax.Array,
    shared: bool,
    rows: int = 0,
    max_origins: int = 0,
    ids=None,
    longest: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Squared standardized errors of sampled rollouts from every origin of ``segment``,
    scored at each horizon on the segment's observed values only.

    An origin o forecasts steps o .. o + horizon - 1 from the ``history`` steps before it
    (:func:`~twinjax.twins.segment_rollouts`, ``n_samples`` paths); step o + h - 1 counts for
    horizon h if it is inside the segment and observed, with ``z = (y - m_h) / sqrt(v_h)``
    (the paths' mixture mean and variance). ``rows``: individuals at a time (0: all);
    ``max_origins``: at most so many origins per individual, evenly spaced through the segment
    (0: every step; the rollouts cost ~12x a one-step forecast per origin, so a long validation
    period is thinned: at 4,096 individuals x 217 validation steps, every origin took >20 min).
    ``ids``: each individual's position in the whole cohort (its paths' key; default its row)
    and ``longest``: the cohort's longest segment (default: of these individuals), when
    ``arrays`` is one process's share of a cohort.

    Returns:
      ``sum z^2`` and the number of scored values, ``[N, horizon, F]`` each (host arrays).
    """
    segment = np.asarray(segment)
    n = segment.shape[0]
    start, count = segment.argmax(1), segment.sum(1)
    longest = max(int(count.max()) if longest is None else int(longest), 1)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    stride = 1 if max_origins <= 0 else -(-longest // max_origins)
    size = -(-longest // stride)  # origins start + k * stride, k < size
    rows = n if rows <= 0 else rows
    values, mask = np.asarray(arrays.series.values), np.asarray(arrays.series.mask)
    z2, seen = [], []
    for lo in range(0, n, rows):
        part = np.arange(lo, min(lo + rows, n))
        p = params if shared else jax.tree.map(lambda x, part=part: x[part], params)
        m, v = map(np.asarray, segment_rollouts(
            p, spec, arrays.series.at(part), start[part], ids[part], key, history=history,
            horizon=horizon, size=size, n_samples=n_samples, shared=shared, stride=stride,
        ))  # fmt: skip
        k, h = stride * np.arange(size)[:, None], np.arange(horizon)[None]  # origin, horizon - 1
        t = np.minimum(start[part, None, None] + k + h, values.shape[1] - 1)  # [n, K, H]
        inside = (k + h < count[part, None, None])[..., None]
        i = part[:, None, None]
        ok = mask[i, t] & inside
        z2.append(np.where(ok, (values[i, t] - m) ** 2 / v, 0.0).sum(1))
        seen.append(ok.sum(1))
    return np.concatenate(z2), np.concatenate(seen)
