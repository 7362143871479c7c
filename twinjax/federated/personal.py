"""Personalization with stateful clients: Ditto, FedPer/FedRep personal heads, fine-tuning.

A client's personal parameters live in ``ServerState.client_states["personal"]`` (one full
parameter pytree per client; for FedPer/FedRep only the ``head`` leaves are personal) and are
only ever updated by that client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from twinjax.federated.data import ClientData
from twinjax.federated.local import LocalResult, LossFn, local_sgd

MODES = ("ditto", "fedper", "fedrep")


@dataclass(frozen=True)
class PersonalConfig:
    mode: str = "ditto"
    lam: float = 0.1  # Ditto: pull of the personal model towards the global one
    head: Any = None  # FedPer/FedRep: pytree of bools, True on personal leaves
    head_epochs: int = 1  # FedRep: epochs on the head before the body


def _merge(head: Any, personal: Any, shared: Any) -> Any:
    return jax.tree.map(lambda h, p, s: p if h else s, head, personal, shared)


def personal_update(
    cfg: PersonalConfig,
    loss_fn: LossFn,
    params: Any,
    client: dict,
    samples: Any,
    key: PRNGKeyArray,
    **run,
) -> tuple[LocalResult, dict]:
    """Local work of a personalized client: (result whose params feed the global update,
    new client state)."""
    mine = client["state"]["personal"]
    where = (samples, client["offset"], client["count"])
    k1, k2 = jax.random.split(key)
    if cfg.mode == "ditto":
        shared = local_sgd(loss_fn, params, *where, client["epochs"], k1, **run)
        own = local_sgd(
            loss_fn, mine, *where, client["epochs"], k2, anchor=params, mu=cfg.lam, **run
        )
        return shared, {**client["state"], "personal": own.params}
    if cfg.mode not in ("fedper", "fedrep"):
        raise ValueError(f"unknown personalization {cfg.mode!r}; expected one of {MODES}")
    start = _merge(cfg.head, mine, params)
    head_mask = jax.tree.map(lambda h, p: jnp.full_like(p, float(h)), cfg.head, params)
    if cfg.mode == "fedper":
        res = local_sgd(loss_fn, start, *where, client["epochs"], k1, **run)
    else:
        head_run = {**run, "max_epochs": cfg.head_epochs}
        epochs_head = jnp.where(client["epochs"] > 0, cfg.head_epochs, 0)
        res = local_sgd(loss_fn, start, *where, epochs_head, k1, trainable=head_mask, **head_run)
        body_mask = jax.tree.map(lambda m: 1.0 - m, head_mask)
        res = local_sgd(loss_fn, res.params, *where, client["epochs"], k2,
                        trainable=body_mask, **run)  # fmt: skip
    shared_part = _merge(cfg.head, params, res.params)  # personal leaves send no update
    return LocalResult(shared_part, res.steps), {**client["state"], "personal": res.params}


def personal_params(cfg: PersonalConfig, params: Any, client_states: dict) -> Any:
    """Each client's model (leading clients axis): its Ditto model or global body + own head."""
    mine = client_states["personal"]
    if cfg.mode == "ditto":
        return mine
    n = jax.tree.leaves(mine)[0].shape[0]
    glob = jax.tree.map(lambda a: jnp.repeat(a[None], n, axis=0), params)
    return _merge(cfg.head, mine, glob)


def fine_tune(
    loss_fn: LossFn,
    params: Any,
    data: ClientData,
    key: PRNGKeyArray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
) -> Any:
    """Local fine-tuning: every client's copy of ``params`` after ``epochs`` local epochs."""

    def one(offset: Int[Array, ""], count: Int[Array, ""], k: PRNGKeyArray) -> Any:
        return local_sgd(
            loss_fn, params, data.samples, offset, count, jnp.int32(epochs), k,
            learning_rate=learning_rate, batch_size=batch_size, max_epochs=epochs,
        ).params  # fmt: skip

    keys = jax.random.split(key, data.num_clients)
    return jax.vmap(one)(data.offset, data.count, keys)
