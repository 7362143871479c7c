"""Bucketing (Karimireddy, He and Jaggi, ICLR 2022): robust aggregators of bucket means."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from twinjax.federated.aggregators.base import Aggregator, RoundClients, round_keys


def bucket_means(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
    key: PRNGKeyArray,
    *,
    size: int,
) -> tuple[Float[Array, "buckets params"], Float[Array, " buckets"], Bool[Array, " buckets"]]:
    """Weighted means of the accepted updates in random buckets of ``size`` clients
    (Karimireddy, He and Jaggi, ICLR 2022, Algorithm 1); their weights and accepted mask.

    The accepted rows, in a random order drawn from ``key``, fill the buckets first, so only
    the last filled bucket may hold fewer than ``size`` of them; rejected rows never enter a
    mean, and buckets without an accepted member are not accepted. A robust aggregator of the
    bucket means sees heterogeneity shrunk by about ``sqrt(size)``, while each attacker
    corrupts at most one bucket. Bucket weights are the summed member weights.
    """
    n = updates.shape[0]
    perm = jax.random.permutation(key, n)
    order = perm[jnp.argsort(~accepted[perm], stable=True)]
    pad = -n % size
    w = jnp.pad(jnp.where(accepted, weight, 0.0)[order], (0, pad)).reshape(-1, size)
    x = jnp.where(accepted[:, None], updates, 0.0)[order]
    x = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, size, updates.shape[1])
    total = jnp.sum(w, axis=1)
    ok = total > 0
    means = jnp.einsum("bs,bsp->bp", w, x) / jnp.where(ok, total, 1.0)[:, None]
    return means, total, ok


def bucketed(inner: Aggregator, size: int) -> Aggregator:
    """``inner`` applied to the :func:`bucket_means` of random ``size``-client buckets, drawn
    afresh every round from the round key's ``bucket`` stream.

    Args:
        inner: the aggregator of the bucket means (it sees one row per bucket, with the
            bucket's summed weight; only ``weight`` and ``accepted`` are set).
        size: clients per bucket; 1 returns ``inner`` unchanged.

    Returns:
        An :class:`Aggregator` with ``inner``'s state.
    """
    if size <= 1:
        return inner

    def aggregate(state, updates, cohort, key):
        k = round_keys(key).bucket
        means, total, ok = bucket_means(updates, cohort.weight, cohort.accepted, k, size=size)
        return inner.aggregate(state, means, RoundClients(weight=total, accepted=ok), key)

    return Aggregator(init=inner.init, aggregate=aggregate)
