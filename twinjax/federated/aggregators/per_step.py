"""FedNova-style normalized averaging: any aggregator of the updates per local step."""

import jax.numpy as jnp

from twinjax.federated.aggregators.base import Aggregator
from twinjax.federated.local import num_local_steps


def per_step(inner: Aggregator, *, batch_size: int) -> Aggregator:
    """``inner`` of the per-step updates ``updates / steps``, times the weighted mean step
    count of the accepted clients (FedNova's normalized averaging, Wang et al. 2020).

    ``steps`` are the local SGD steps the server assigned (it knows every client's size and
    epochs, so a client cannot misreport them). Clients that ran E epochs over n samples send
    updates roughly proportional to n; a median or trimmed mean of raw updates then tracks
    the typical (small) client and takes a shorter step than the mean does.

    Args:
        inner: the aggregator of the per-step updates (outside :func:`bucketed`, whose rows
            are buckets without a step count).
        batch_size: the clients' local batch size.

    Returns:
        An :class:`Aggregator` with ``inner``'s state.
    """

    def aggregate(state, updates, cohort, key):
        steps = num_local_steps(cohort.count, cohort.epochs, batch_size).astype(jnp.float32)
        steps = jnp.maximum(steps, 1.0)
        out, state, metrics = inner.aggregate(state, updates / steps[:, None], cohort, key)
        w = jnp.where(cohort.accepted, cohort.weight, 0.0)
        return jnp.sum(w * steps) / jnp.maximum(jnp.sum(w), 1e-12) * out, state, metrics

    return Aggregator(init=inner.init, aggregate=aggregate)
