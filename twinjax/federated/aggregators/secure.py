"""Secure aggregation of the weighted mean (Bonawitz et al., CCS 2017), simulated."""

import jax.numpy as jnp

from twinjax.federated import secagg
from twinjax.federated.aggregators.base import Aggregator, round_keys


def secure_mean(*, scale: float = 2.0**16) -> Aggregator:
    """The weighted mean through pairwise additive masks: every client sends its update times
    its share of the total weight, quantized (``scale``) and masked; the server only sums
    masked vectors and removes the masks dropped-out clients left (:mod:`secagg`). Masks
    derive from the round key's ``mask`` stream.

    Args:
        scale: fixed-point scale of the quantization.

    Returns:
        An :class:`Aggregator` with an ``encode`` step (the client-side masking); it cannot be
        screened (the server never sees an update) and reports ``rejected = 0``.
    """

    def encode(update, row, cohort, key):
        share = row.weight / jnp.maximum(jnp.sum(cohort.weight), 1e-12)
        return secagg.mask_update(share * update, round_keys(key).mask, row.id, cohort.id,
                                  cohort.group, scale=scale)  # fmt: skip

    def aggregate(state, masked, cohort, key):
        mean = secagg.unmasked_sum(masked, round_keys(key).mask, cohort.id, cohort.group,
                                   cohort.live, scale=scale)  # fmt: skip
        return mean, state, {"rejected": jnp.int32(0)}

    return Aggregator(init=lambda: (), aggregate=aggregate, encode=encode)
