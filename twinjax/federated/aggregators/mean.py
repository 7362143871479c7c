"""The weighted mean of the accepted updates (FedAvg's aggregate)."""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from twinjax.federated.aggregators.base import Aggregator, stateless


def weighted_mean(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
) -> Float[Array, " params"]:
    """``sum_i w_i u_i / sum_i w_i`` over the accepted rows (zero when none).

    >>> import jax.numpy as jnp
    >>> weighted_mean(jnp.array([[1.0], [4.0], [9.0]]), jnp.array([1.0, 3.0, 1.0]),
    ...               jnp.array([True, True, False])).tolist()
    [3.25]
    """
    w = jnp.where(accepted, weight, 0.0)
    total = jnp.sum(w)
    return jnp.where(total > 0, (w @ updates) / jnp.where(total > 0, total, 1.0), 0.0)


def mean() -> Aggregator:
    """The weighted mean of the accepted updates, weighted by the cohort's weights.

    Returns:
        A stateless :class:`Aggregator`.
    """
    return stateless(lambda u, c: weighted_mean(u, c.weight, c.accepted))
