"""The aggregator pair, what the server knows about a round's clients, and the round's keys."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


class RoundClients(NamedTuple):
    """What the server knows about a round's clients, one row per slot.

    ``accepted`` marks the rows that may enter the aggregate: at first every client with
    positive weight; :func:`~twinjax.federated.screen` narrows it. Rows that are not accepted
    never influence an aggregate (they may hold NaN). Under :func:`~twinjax.federated.bucketed`
    the rows are buckets and only ``weight`` and ``accepted`` are set.
    """

    weight: Float[Array, " clients"]
    accepted: Bool[Array, " clients"]
    id: Int[Array, " clients"] | None = None
    count: Int[Array, " clients"] | None = None  # samples
    epochs: Int[Array, " clients"] | None = None  # local epochs the server assigned
    group: Bool[Array, " clients"] | None = None  # sampled this round
    live: Bool[Array, " clients"] | None = None  # the update reached the server


class Aggregator(NamedTuple):
    """A server aggregation rule as an ``(init, aggregate)`` pair (fedjax's ``Aggregator``).

    ``init() -> state``; ``aggregate(state, updates, cohort, key) -> (aggregate, state,
    metrics)`` with ``updates`` the flat client updates ``[clients, params]`` and ``key`` the
    round's key (see :class:`RoundKeys`). ``encode(update, row, cohort, key)``, when set, runs
    on each client and turns its flat update into what it sends (secure aggregation's masked
    vector); ``row`` is that client's row of ``cohort``, the cohort of all slots.
    """

    init: Callable[[], Any]
    aggregate: Callable[[Any, Array, RoundClients, PRNGKeyArray], tuple[Array, Any, dict]]
    encode: Callable[[Array, RoundClients, RoundClients, PRNGKeyArray], Array] | None = None


class RoundKeys(NamedTuple):
    """The named streams of a round key; ``bucket`` is folded in, not split off, so rounds
    without bucketing keep the streams they had before it existed."""

    sample: PRNGKeyArray
    work: PRNGKeyArray
    clients: PRNGKeyArray
    noise: PRNGKeyArray
    clip: PRNGKeyArray
    mask: PRNGKeyArray
    bucket: PRNGKeyArray


def round_keys(key: PRNGKeyArray) -> RoundKeys:
    """Splits a round's key into its named streams."""
    return RoundKeys(*jax.random.split(key, 6), jax.random.fold_in(key, 1))


def stateless(fn: Callable[[Array, RoundClients], Array]) -> Aggregator:
    """An aggregator without state, randomness or metrics from ``fn(updates, cohort)``."""
    return Aggregator(init=lambda: (), aggregate=lambda s, u, c, k: (fn(u, c), s, {}))
