"""Cohort-wide one-step forecasts over a segment of each individual's timeline."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import ArrayLike, Bool

from twinjax.data import CohortArrays, Series
from twinjax.twins.model import Params, Spec
from twinjax.twins.objectives import predict_at, segment_targets


@partial(jax.jit, static_argnames=("spec", "history", "size", "shared", "mesh"))
def _predict(params, series: Series, start, end, *, spec, history, size, shared, mesh=None):
    def _one(p, series, start, end):
        t, inside = segment_targets(start, end, size)
        t = jnp.minimum(t, series.values.shape[0] - 1)
        mean, scale = predict_at(p, spec, series, t, history=history)
        return mean, scale, t, inside

    cohort = jax.vmap(_one, in_axes=(None if shared else 0, 0, 0, 0))
    if mesh is None:
        return cohort(params, series, start, end)
    rows, whole = P(mesh.axis_names), P()
    return jax.shard_map(
        cohort,
        mesh=mesh,
        in_specs=(whole if shared else rows, rows, rows, rows),
        out_specs=rows,
        check_vma=False,  # the twins' scans start from constant carries
    )(params, series, start, end)


def cohort_predictions(
    params: Params,
    spec: Spec,
    arrays: CohortArrays,
    segment: Bool[ArrayLike, "individuals time"],
    *,
    history: int,
    shared: bool = False,
    mesh: jax.sharding.Mesh | None = None,
):
    """One-step predictions (normalized units) at every step of each individual's ``segment``.

    Args:
      params: one parameter set for everybody (``shared``, the population twin) or one per
        individual (a leading individuals axis).
      spec: the twins' architecture.
      arrays: the prepared cohort.
      segment: which steps to predict, per individual (e.g. ``arrays.test``).
      history: steps of data each prediction sees.
      mesh: a one-axis mesh to split the individuals over (``jax.shard_map``); None: one device.

    Returns:
      ``mean, scale [N, K, F]``, the target steps ``t [N, K]`` and ``inside [N, K]`` (False on
      padding, for individuals with shorter segments).
    """
    segment = np.asarray(segment)
    start, count = segment.argmax(1), segment.sum(1)
    size = int(count.max())
    n, series, end = len(start), arrays.series, start + count
    if mesh is not None:  # padded to a multiple of the devices (the last row repeated), each
        # device given its rows only, the padding cut off after
        pick = np.minimum(np.arange(-(-n // mesh.size) * mesh.size), n - 1)
        place = lambda tree: jax.device_put(
            jax.tree.map(lambda x: x[pick], tree), NamedSharding(mesh, P(mesh.axis_names))
        )
        series, start, end = place((series, start, end))
        params = jax.device_put(params, NamedSharding(mesh, P())) if shared else place(params)
    out = _predict(
        params,
        series,
        jnp.asarray(start),
        jnp.asarray(end),
        spec=spec,
        history=history,
        size=size,
        shared=shared,
        mesh=mesh,
    )
    return out if mesh is None else jax.tree.map(lambda x: x[:n], out)
