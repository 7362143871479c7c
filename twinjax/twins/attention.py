"""Causal temporal self-attention over the encoded history of one individual."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from twinjax.twins.cells import _glorot


def attention_init(key: PRNGKeyArray, hidden: int, dim: int) -> dict:
    kq, kk, kv = jax.random.split(key, 3)
    return {
        "wq": _glorot(kq, (hidden, dim)),
        "wk": _glorot(kk, (hidden, dim)),
        "wv": _glorot(kv, (hidden, dim)),
    }


def attend(
    p: dict,
    query: Float[Array, " hidden"],
    memory: Float[Array, "time hidden"],
    visible: Bool[Array, " time"],
) -> Float[Array, " dim"]:
    """One query attends over the visible rows of ``memory`` (scaled dot product, one head)."""
    q = query @ p["wq"]
    k = memory @ p["wk"]
    logits = (k @ q) / jnp.sqrt(q.shape[-1])
    logits = jnp.where(visible, logits, -jnp.inf)
    return jax.nn.softmax(logits) @ (memory @ p["wv"])


def causal_attention(p: dict, hs: Float[Array, "time hidden"]) -> Float[Array, "time dim"]:
    """Each step t attends over steps 0..t (the same ``attend`` used in rollouts)."""
    t = jnp.arange(hs.shape[0])
    return jax.vmap(lambda h, i: attend(p, h, hs, t <= i))(hs, t)
