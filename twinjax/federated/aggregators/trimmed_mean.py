"""Coordinate-wise trimmed mean (Yin et al., ICML 2018)."""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from twinjax.federated.aggregators.base import Aggregator, stateless
from twinjax.federated.aggregators.median import sorted_with_count


def coordinate_trimmed_mean(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"], trim: float
) -> Float[Array, " params"]:
    """Coordinate-wise mean after dropping the ``floor(trim * n)`` lowest and highest values.

    >>> import jax.numpy as jnp
    >>> coordinate_trimmed_mean(jnp.array([[1.0], [5.0], [2.0], [99.0]]),
    ...                         jnp.ones(4, bool), 0.25).tolist()
    [3.5]
    """
    s, n = sorted_with_count(updates, accepted)
    k = jnp.floor(trim * n).astype(jnp.int32)
    rank = jnp.arange(updates.shape[0])[:, None]
    keep = (rank >= k) & (rank < n - k)
    total = jnp.sum(jnp.where(keep, s, 0.0), axis=0)
    kept = jnp.maximum(n - 2 * k, 1)
    return jnp.where(n > 0, total / kept, 0.0)


def trimmed_mean(trim: float = 0.1) -> Aggregator:
    """The coordinate-wise trimmed mean of the accepted updates (weights unused).

    Args:
        trim: fraction of the accepted values dropped at each end of every coordinate.

    Returns:
        A stateless :class:`Aggregator`.
    """
    return stateless(lambda u, c: coordinate_trimmed_mean(u, c.accepted, trim))
