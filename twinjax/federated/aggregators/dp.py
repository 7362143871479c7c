"""DP-FedAvg's aggregate: clipped updates, Gaussian noise, the clip norm in the state."""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from twinjax.federated import privacy
from twinjax.federated.aggregators.base import Aggregator, round_keys


class DPState(NamedTuple):
    clip_norm: Float[Array, ""]  # C, adapted every round when ``DPConfig.adaptive``


def dp_mean(dp: privacy.DPConfig, *, expected_clients: float | int) -> Aggregator:
    """McMahan et al. (2018): every accepted update clipped to norm ``C``, summed, noised with
    ``N(0, (z C)^2)`` and divided by the expected number of clients (uniform weights, a fixed
    denominator); ``C`` adapts to a quantile of the update norms (Andrew et al. 2021) when
    ``dp.adaptive``. Noise and the clip count draw on the round key's ``noise`` and ``clip``
    streams.

    Args:
        dp: the mechanism's settings (noise multiplier, initial clip norm, adaptivity).
        expected_clients: the mean number of clients of a round (``clients_per_round``).

    Returns:
        An :class:`Aggregator` whose state is a :class:`DPState`; its metrics hold the clip
        norm for the next round.
    """

    expected = float(expected_clients)

    def init() -> DPState:
        return DPState(clip_norm=jnp.asarray(dp.clip_norm, jnp.float32))

    def aggregate(state, updates, cohort, key):
        keys = round_keys(key)
        clipped, unclipped = privacy.clip_updates(updates, state.clip_norm)
        total = jnp.sum(jnp.where(cohort.accepted[:, None], clipped, 0.0), axis=0)
        mean = privacy.noisy_mean(total, state.clip_norm, expected, keys.noise, dp)
        clip_norm = privacy.adapt_clip_norm(
            state.clip_norm, unclipped, cohort.accepted, expected, keys.clip, dp
        )
        return mean, DPState(clip_norm), {"clip_norm": clip_norm}

    return Aggregator(init=init, aggregate=aggregate)
