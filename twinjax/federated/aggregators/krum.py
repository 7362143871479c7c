"""Krum and multi-Krum (Blanchard et al., NeurIPS 2017)."""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from twinjax.federated.aggregators.base import Aggregator, stateless
from twinjax.federated.aggregators.mean import weighted_mean


def krum_scores(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"], byzantine: int
) -> Float[Array, " clients"]:
    """Krum score: summed squared distance to the ``n - f - 2`` nearest accepted updates."""
    x = jnp.where(accepted[:, None], updates, 0.0)
    sq = jnp.sum(x**2, axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    pair = accepted[:, None] & accepted[None, :] & ~jnp.eye(x.shape[0], dtype=bool)
    d = jnp.sort(jnp.where(pair, jnp.maximum(d, 0.0), jnp.inf), axis=1)
    n = jnp.sum(accepted)
    m = jnp.maximum(n - byzantine - 2, 1)
    near = jnp.arange(x.shape[0])[None, :] < m
    score = jnp.sum(jnp.where(near, d, 0.0), axis=1)
    return jnp.where(accepted, score, jnp.inf)


def multi_krum_mean(
    updates: Float[Array, "clients params"],
    accepted: Bool[Array, " clients"],
    *,
    byzantine: int,
    select: int = 1,
) -> Float[Array, " params"]:
    """Mean of the ``select`` accepted updates with the lowest Krum scores (Krum: select=1)."""
    score = krum_scores(updates, accepted, byzantine)
    order = jnp.argsort(score)
    chosen = jnp.zeros_like(accepted).at[order[:select]].set(True) & accepted
    return weighted_mean(updates, jnp.ones(updates.shape[0]), chosen)


def multi_krum(byzantine: int, select: int = 1) -> Aggregator:
    """Multi-Krum: the plain mean of the ``select`` updates with the lowest Krum scores.

    Args:
        byzantine: the number ``f`` of attackers Krum is built to withstand.
        select: how many updates are averaged (1: Krum).

    Returns:
        A stateless :class:`Aggregator`.
    """
    return stateless(lambda u, c: multi_krum_mean(u, c.accepted, byzantine=byzantine,
                                                  select=select))  # fmt: skip


def krum(byzantine: int) -> Aggregator:
    """Krum: the update with the lowest Krum score (:func:`multi_krum` with ``select=1``)."""
    return multi_krum(byzantine, select=1)
