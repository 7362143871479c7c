"""Coordinate-wise median (Yin et al., ICML 2018)."""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from twinjax.federated.aggregators.base import Aggregator, stateless


def sorted_with_count(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"]
) -> tuple[Float[Array, "clients params"], Int[Array, ""]]:
    """Per-coordinate sort with rejected rows last; the number of accepted rows."""
    x = jnp.where(accepted[:, None], updates, jnp.inf)
    return jnp.sort(x, axis=0), jnp.sum(accepted)


def coordinate_median(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"]
) -> Float[Array, " params"]:
    """Coordinate-wise median of the accepted updates (zero when none).

    >>> import jax.numpy as jnp
    >>> coordinate_median(jnp.array([[1.0], [5.0], [2.0], [99.0]]),
    ...                   jnp.array([True, True, True, False])).tolist()
    [2.0]
    """
    s, n = sorted_with_count(updates, accepted)
    lo = jnp.maximum((n - 1) // 2, 0)
    hi = jnp.maximum(n // 2, 0)
    med = 0.5 * (s[lo] + s[hi])
    return jnp.where(n > 0, med, 0.0)


def median() -> Aggregator:
    """The coordinate-wise median of the accepted updates (weights unused).

    Returns:
        A stateless :class:`Aggregator`.
    """
    return stateless(lambda u, c: coordinate_median(u, c.accepted))
