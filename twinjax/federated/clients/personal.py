"""Personalization with stateful clients: Ditto, FedPer/FedRep personal heads, fine-tuning.

A client's personal parameters live in its state ``personal`` (one full parameter pytree per
client; for FedPer/FedRep only the ``head`` leaves are personal) and are only ever updated by
that client.
"""

from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from twinjax.federated.clients.base import ClientOutput, ClientUpdate
from twinjax.federated.data import ClientData
from twinjax.federated.local import LossFn, local_sgd

MODES = ("ditto", "fedper", "fedrep")


@dataclass(frozen=True)
class PersonalConfig:
    mode: Literal["ditto", "fedper", "fedrep"] = "ditto"
    lam: float = 0.1  # Ditto: pull of the personal model towards the global one
    head: Any = None  # FedPer/FedRep: pytree of bools, True on personal leaves
    head_epochs: int = 1  # FedRep: epochs on the head before the body


def _merge(head: Any, personal: Any, shared: Any) -> Any:
    return jax.tree.map(lambda h, p, s: p if h else s, head, personal, shared)


def personal_update(
    loss_fn: LossFn,
    personal: PersonalConfig,
    *,
    learning_rate: float,
    batch_size: int,
    epochs: int,
) -> ClientUpdate:
    """A personalized client: Ditto (a global and a personal model, the personal one pulled
    towards the global by ``lam``), FedPer (personal head, trained with the body) or FedRep
    (head epochs first, then the body).

    Args:
        loss_fn: ``loss(params, batch, sample_mask) -> mean loss``.
        personal: the personalization and its settings.
        learning_rate: local SGD step size.
        batch_size: local minibatch size.
        epochs: the most local epochs the server may assign.

    Returns:
        A :class:`ClientUpdate` whose client state ``personal`` starts as the initial params;
        personal leaves send no update.
    """
    if personal.mode not in MODES:
        raise ValueError(f"unknown personalization {personal.mode!r}; expected one of {MODES}")
    run = dict(learning_rate=learning_rate, batch_size=batch_size, max_epochs=epochs)

    def update(params, shared, state, task, key):
        _, key = jax.random.split(key)  # the first stream is the plain clients'
        mine = state["personal"]
        where = (task.samples, task.offset, task.count)
        k1, k2 = jax.random.split(key)
        if personal.mode == "ditto":
            res = local_sgd(loss_fn, params, *where, task.epochs, k1, **run)
            own = local_sgd(
                loss_fn, mine, *where, task.epochs, k2, anchor=params, mu=personal.lam, **run
            )
            delta = jax.tree.map(jnp.subtract, res.params, params)
            return ClientOutput(delta, res.steps, {**state, "personal": own.params})
        start = _merge(personal.head, mine, params)
        head_mask = jax.tree.map(lambda h, p: jnp.full_like(p, float(h)), personal.head, params)
        if personal.mode == "fedper":
            res = local_sgd(loss_fn, start, *where, task.epochs, k1, **run)
        else:
            head_run = {**run, "max_epochs": personal.head_epochs}
            epochs_head = jnp.where(task.epochs > 0, personal.head_epochs, 0)
            res = local_sgd(loss_fn, start, *where, epochs_head, k1, trainable=head_mask,
                            **head_run)  # fmt: skip
            body_mask = jax.tree.map(lambda m: 1.0 - m, head_mask)
            res = local_sgd(loss_fn, res.params, *where, task.epochs, k2,
                            trainable=body_mask, **run)  # fmt: skip
        shared_part = _merge(personal.head, params, res.params)  # personal leaves: no update
        delta = jax.tree.map(jnp.subtract, shared_part, params)
        return ClientOutput(delta, res.steps, {**state, "personal": res.params})

    return ClientUpdate(init=lambda params: ({}, {"personal": params}), update=update)


def personal_params(personal: PersonalConfig, params: Any, client_states: dict) -> Any:
    """Each client's model (leading clients axis): its Ditto model or global body + own head.

    Args:
        personal: the personalization the clients were trained with.
        params: the global parameters.
        client_states: the per-client states (``ServerState.clients.clients``).

    Returns:
        A parameter pytree with a leading clients axis.
    """
    mine = client_states["personal"]
    if personal.mode == "ditto":
        return mine
    n = jax.tree.leaves(mine)[0].shape[0]
    glob = jax.tree.map(lambda a: jnp.repeat(a[None], n, axis=0), params)
    return _merge(personal.head, mine, glob)


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
    """Local fine-tuning: every client's copy of ``params`` after ``epochs`` local epochs.

    Returns:
        A parameter pytree with a leading clients axis.
    """

    def one(offset: Int[Array, ""], count: Int[Array, ""], k: PRNGKeyArray) -> Any:
        return local_sgd(
            loss_fn, params, data.samples, offset, count, jnp.int32(epochs), k,
            learning_rate=learning_rate, batch_size=batch_size, max_epochs=epochs,
        ).params  # fmt: skip

    keys = jax.random.split(key, data.num_clients)
    return jax.vmap(one)(data.offset, data.count, keys)
