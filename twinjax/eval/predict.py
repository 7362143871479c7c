"""Cohort-wide one-step forecasts over a segment of each individual's timeline."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool

from twinjax.train.objectives import predict_at, segment_targets
from twinjax.train.prepare import CohortArrays
from twinjax.twins import TwinSpec


@partial(jax.jit, static_argnames=("spec", "history", "size", "shared"))
def _predict(params, arrays: CohortArrays, start, end, *, spec, history, size, shared):
    def _one(p, values, mask, interventions, static, start, end):
        t, inside = segment_targets(start, end, size)
        t = jnp.minimum(t, values.shape[0] - 1)
        mean, scale = predict_at(p, spec, values, mask, interventions, static, t, history=history)
        return mean, scale, t, inside

    data = (arrays.values, arrays.mask, arrays.interventions, arrays.static)
    return jax.vmap(_one, in_axes=(None if shared else 0, 0, 0, 0, 0, 0, 0))(
        params, *data, start, end
    )


def cohort_predictions(
    params: dict,
    spec: TwinSpec,
    arrays: CohortArrays,
    segment: Bool[Array, "individuals time"],
    *,
    history: int,
    shared: bool = False,
):
    """One-step predictions (normalized units) at every step of each individual's ``segment``.

    ``shared``: one parameter set (the population twin) for everybody; otherwise ``params`` has
    a leading individuals axis. Returns ``mean, scale [N, K, F]``, the target steps ``t [N, K]``
    and ``inside [N, K]`` (False on padding, for individuals with shorter segments).
    """
    segment = np.asarray(segment)
    start, count = segment.argmax(1), segment.sum(1)
    size = int(count.max())
    return _predict(
        params,
        arrays,
        jnp.asarray(start),
        jnp.asarray(start + count),
        spec=spec,
        history=history,
        size=size,
        shared=shared,
    )
