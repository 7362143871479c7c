"""Cohort-wide one-step forecasts over a segment of each individual's timeline."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Bool

from twinjax.data import CohortArrays, Series
from twinjax.twins.model import TwinParams, TwinSpec
from twinjax.twins.objectives import predict_at, segment_targets


@partial(jax.jit, static_argnames=("spec", "history", "size", "shared"))
def _predict(params, series: Series, start, end, *, spec, history, size, shared):
    def _one(p, series, start, end):
        t, inside = segment_targets(start, end, size)
        t = jnp.minimum(t, series.values.shape[0] - 1)
        mean, scale = predict_at(p, spec, series, t, history=history)
        return mean, scale, t, inside

    return jax.vmap(_one, in_axes=(None if shared else 0, 0, 0, 0))(params, series, start, end)


def cohort_predictions(
    params: TwinParams,
    spec: TwinSpec,
    arrays: CohortArrays,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    shared: bool = False,
):
    """One-step predictions (normalized units) at every step of each individual's ``segment``.

    Args:
      params: one parameter set for everybody (``shared``, the population twin) or one per
        individual (a leading individuals axis).
      spec: the twins' architecture.
      arrays: the prepared cohort.
      segment: which steps to predict, per individual (e.g. ``arrays.test``).
      history: steps of data each prediction sees.

    Returns:
      ``mean, scale [N, K, F]``, the target steps ``t [N, K]`` and ``inside [N, K]`` (False on
      padding, for individuals with shorter segments).
    """
    segment = np.asarray(segment)
    start, count = segment.argmax(1), segment.sum(1)
    size = int(count.max())
    return _predict(
        params,
        arrays.series,
        jnp.asarray(start),
        jnp.asarray(start + count),
        spec=spec,
        history=history,
        size=size,
        shared=shared,
    )
