"""The NaN/size screen in front of any aggregator: bad updates are rejected and counted."""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from twinjax.federated.aggregators.base import Aggregator


def screen_updates(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    *,
    max_norm: float = float("inf"),
) -> tuple[Float[Array, "clients params"], Bool[Array, " clients"], Int[Array, ""]]:
    """Rejects updates with NaN/inf or a norm beyond ``max_norm``.

    Returns:
        The updates with rejected rows zeroed, the accepted mask and the rejected count
        (among clients with positive weight).
    """
    finite = jnp.all(jnp.isfinite(updates), axis=1)
    norm = jnp.sqrt(jnp.sum(jnp.where(finite[:, None], updates, 0.0) ** 2, axis=1))
    ok = finite & (norm <= max_norm)
    live = weight > 0
    accepted = ok & live
    return jnp.where(accepted[:, None], updates, 0.0), accepted, jnp.sum(live & ~ok)


def screen(inner: Aggregator, *, max_norm: float = float("inf")) -> Aggregator:
    """``inner`` applied to the updates that pass :func:`screen_updates`.

    Args:
        inner: any aggregator of plain updates (not secure aggregation, whose server never
            sees an individual update).
        max_norm: updates with a larger L2 norm are rejected too.

    Returns:
        An :class:`Aggregator` with ``inner``'s state; its metrics add ``rejected`` (the count)
        and ``update_norm`` (the mean norm of the accepted updates).
    """
    if inner.encode is not None:
        raise ValueError("secure aggregation hides individual updates: they cannot be screened")

    def aggregate(state, updates, cohort, key):
        updates, accepted, rejected = screen_updates(updates, cohort.weight, max_norm=max_norm)
        norm = jnp.sum(jnp.where(accepted, jnp.linalg.norm(updates, axis=1), 0.0)) / jnp.maximum(
            jnp.sum(accepted), 1
        )
        out, state, metrics = inner.aggregate(state, updates, cohort._replace(accepted=accepted),
                                              key)  # fmt: skip
        return out, state, {"rejected": rejected, "update_norm": norm, **metrics}

    return Aggregator(init=inner.init, aggregate=aggregate)
