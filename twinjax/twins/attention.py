"""Causal temporal self-attention over the encoded history of one individual."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from twinjax.twins.cells import glorot


class AttentionParams(NamedTuple):
    """Key, query and value projections of one attention head (fields in alphabetical order)."""

    wk: Float[Array, "hidden dim"]
    wq: Float[Array, "hidden dim"]
    wv: Float[Array, "hidden dim"]


def attention_init(key: PRNGKeyArray, hidden: int, dim: int) -> AttentionParams:
    kq, kk, kv = jax.random.split(key, 3)
    return AttentionParams(
        wk=glorot(kk, (hidden, dim)), wq=glorot(kq, (hidden, dim)), wv=glorot(kv, (hidden, dim))
    )


def attend(
    p: AttentionParams,
    query: Float[Array, " hidden"],
    memory: Float[Array, "time hidden"],
    visible: Bool[Array, " time"],
) -> Float[Array, " dim"]:
    """One query attends over the visible rows of ``memory`` (scaled dot product, one head)."""
    q = query @ p.wq
    k = memory @ p.wk
    logits = (k @ q) / jnp.sqrt(q.shape[-1])
    logits = jnp.where(visible, logits, -jnp.inf)
    return jax.nn.softmax(logits) @ (memory @ p.wv)


def causal_attention(
    p: AttentionParams, hs: Float[Array, "time hidden"]
) -> Float[Array, "time dim"]:
    """Each step t attends over steps 0..t (the same ``attend`` used in rollouts)."""
    t = jnp.arange(hs.shape[0])
    return jax.vmap(lambda h, i: attend(p, h, hs, t <= i))(hs, t)
