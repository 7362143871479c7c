"""Secure aggregation by pairwise additive masks (Bonawitz et al., CCS 2017), simulated.

Updates are quantized to fixed point and added modulo 2^32. Every pair of clients (i, j) in a
round's mask group shares a seed; client i adds the mask ``m_ij`` if ``i < j`` and subtracts
it otherwise, so the masks cancel in the sum. A client that drops out after the masks were
agreed leaves dangling masks; the survivors reveal their seeds with the dropped clients and
the server removes those masks. Seeds are derived here from the round key and the two client
ids (a stand-in for the key agreement of the protocol); the server only handles masked vectors.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt32


def quantize(x: Float[Array, " params"], scale: float) -> UInt32[Array, " params"]:
    return jnp.round(x * scale).astype(jnp.int32).astype(jnp.uint32)


def dequantize(x: UInt32[Array, " params"], scale: float) -> Float[Array, " params"]:
    return x.astype(jnp.int32).astype(jnp.float32) / scale


def pair_mask(key: PRNGKeyArray, a: Int[Array, ""], b: Int[Array, ""], size: int) -> Array:
    """The mask shared by clients ``a`` and ``b`` (symmetric in the pair)."""
    lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
    pair_key = jax.random.fold_in(jax.random.fold_in(key, lo), hi)
    return jax.random.bits(pair_key, (size,), jnp.uint32)


def total_mask(
    key: PRNGKeyArray,
    me: Int[Array, ""],
    ids: Int[Array, " clients"],
    partner: Bool[Array, " clients"],
    size: int,
) -> UInt32[Array, " params"]:
    """Sum over partners j of ``+m_ij`` (me < j) or ``-m_ij`` (me > j), modulo 2^32."""

    def one(j, use):
        m = pair_mask(key, me, j, size)
        signed = jnp.where(me < j, m, jnp.uint32(0) - m)
        return jnp.where(use & (j != me), signed, jnp.uint32(0))

    return jnp.sum(jax.vmap(one)(ids, partner), axis=0, dtype=jnp.uint32)


def mask_update(
    update: Float[Array, " params"],
    key: PRNGKeyArray,
    me: Int[Array, ""],
    ids: Int[Array, " clients"],
    group: Bool[Array, " clients"],
    *,
    scale: float,
) -> UInt32[Array, " params"]:
    """Client side: the quantized update plus this client's pairwise masks."""
    return quantize(update, scale) + total_mask(key, me, ids, group, update.shape[0])


def unmasked_sum(
    masked: UInt32[Array, "clients params"],
    key: PRNGKeyArray,
    ids: Int[Array, " clients"],
    group: Bool[Array, " clients"],
    survived: Bool[Array, " clients"],
    *,
    scale: float,
) -> Float[Array, " params"]:
    """Server side: sums the survivors' masked vectors and removes masks left by dropouts."""
    total = jnp.sum(jnp.where(survived[:, None], masked, jnp.uint32(0)), axis=0, dtype=jnp.uint32)
    dropped = group & ~survived

    def dangling(me, alive):
        m = total_mask(key, me, ids, dropped, masked.shape[1])
        return jnp.where(alive, m, jnp.uint32(0))

    leftover = jnp.sum(jax.vmap(dangling)(ids, survived & group), axis=0, dtype=jnp.uint32)
    return dequantize(total - leftover, scale)
