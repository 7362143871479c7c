"""Federated averaging as a pure ``(init, apply)`` pair over a :class:`ServerState`.

One round: sample clients and assign their local work (the :class:`Simulation`'s stragglers
and dropouts), run the client update on every sampled client (serial, vmap or shard_map,
:class:`Execution`), aggregate their flat updates with the :class:`Aggregator` and apply the
aggregate with the server optimizer, an optax transform fed the pseudo-gradient ``-delta``
(Reddi et al. 2021).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from jaxtyping import Array, Int, PRNGKeyArray

from twinjax.federated.aggregators import Aggregator, RoundClients, mean, round_keys, screen
from twinjax.federated.clients.base import ClientStates, ClientTask, ClientUpdate
from twinjax.federated.data import ClientData
from twinjax.federated.execution import (
    lockstep_steps,
    map_clients,
    mesh_size,
    pad_to_multiple,
)
from twinjax.federated.sampling import assign_work, sample_clients
from twinjax.federated.simulation import Simulation, byzantine_clients, num_attackers

# halves XLA compile time of a round on CPU, at some cost in run time
FAST_COMPILE = {"xla_backend_optimization_level": 0}


class ServerState(NamedTuple):
    params: Any
    opt_state: Any  # the server optimizer's
    clients: ClientStates  # the client update's state (per client, and broadcast)
    aggregator: Any  # the aggregator's (DP: the clip norm)
    round: Int[Array, ""]  # rounds done


class Parts(NamedTuple):
    """The arguments :func:`federated_averaging` built a round from, for engines that run the
    round's steps elsewhere (:mod:`twinjax.integrations.flower`: clients on their own machines)."""

    client: ClientUpdate
    clients_per_round: int
    local_epochs: int
    server_optimizer: optax.GradientTransformation
    aggregator: Aggregator
    sampling: str
    weighting: str
    drop_stragglers: bool
    simulation: Simulation


class FederatedAlgorithm(NamedTuple):
    """``init(params, *, num_clients) -> ServerState``; ``apply(state, data, key) -> (state,
    metrics)`` runs one round over the population ``data`` (fedjax's ``FederatedAlgorithm``).
    ``parts``: what the round is made of (set by :func:`federated_averaging`)."""

    init: Callable[..., ServerState]
    apply: Callable[[ServerState, ClientData, PRNGKeyArray], tuple[ServerState, dict]]
    parts: Parts | None = None


@dataclass(frozen=True)
class Execution:
    """Where and how a round runs; none of it changes the result beyond float rounding.

    ``backend``: ``serial`` (a Python loop without jit, for debugging), ``vmap`` or
    ``shard_map`` over ``mesh`` (:func:`~twinjax.federated.client_mesh`); ``buckets``:
    sequential vmapped groups of similar-size clients per device, a count (geometric widths)
    or the groups' edges over a device's slots (:func:`~twinjax.federated.size_class_edges`);
    ``jit``: jit the round
    (default: unless serial); ``compiler_options`` go to XLA (e.g. :data:`FAST_COMPILE`).
    """

    backend: Literal["serial", "vmap", "shard_map"] = "vmap"
    mesh: Mesh | None = None
    buckets: int | tuple[int, ...] = 1
    jit: bool | None = None
    compiler_options: dict | None = None


def federated_averaging(
    client: ClientUpdate,
    *,
    clients_per_round: int,
    local_epochs: int,
    server_optimizer: optax.GradientTransformation | None = None,
    aggregator: Aggregator | None = None,
    sampling: Literal["uniform", "size", "poisson"] = "uniform",
    weighting: Literal["samples", "uniform"] = "samples",
    drop_stragglers: bool = True,
    simulation: Simulation | None = None,
    execution: Execution | None = None,
) -> FederatedAlgorithm:
    """Generalized federated averaging: client update, aggregator and server optimizer.

    Args:
        client: the local work of one client (:func:`sgd_update`, :func:`scaffold_update`,
            :func:`personal_update`).
        clients_per_round: sampled clients per round (Poisson sampling: the expected number).
        local_epochs: the epochs a client is asked to run (at most the client update's).
        server_optimizer: an optax transform of the pseudo-gradient (default ``sgd(1.0)``:
            plain averaging).
        aggregator: the server's aggregation rule (default ``screen(mean())``).
        sampling: ``uniform``, ``size`` (probability proportional to samples) or ``poisson``.
        weighting: aggregation weights, ``samples`` or ``uniform``.
        drop_stragglers: stragglers send nothing (FedAvg) or their partial work (FedProx).
        simulation: stragglers, dropouts and Byzantine clients (default: none).
        execution: backend, mesh, buckets and jit (default: jitted vmap).

    Returns:
        The :class:`FederatedAlgorithm` pair; ``apply`` is jitted per ``execution.jit``.

    >>> import jax
    >>> from twinjax import federated as fl
    >>> data, _ = fl.synthetic_alpha_beta(0, num_clients=6, dim=3, num_classes=2, max_samples=20)
    >>> client = fl.sgd_update(fl.logistic_loss, learning_rate=0.1, batch_size=8, epochs=1)
    >>> algo = fl.federated_averaging(client, clients_per_round=3, local_epochs=1)
    >>> state = algo.init(fl.logistic_init(3, 2), num_clients=data.num_clients)
    >>> state, metrics = algo.apply(state, data, jax.random.key(0))
    >>> int(state.round), int(metrics["clients_live"])
    (1, 3)
    """
    server_optimizer = optax.sgd(1.0) if server_optimizer is None else server_optimizer
    aggregator = screen(mean()) if aggregator is None else aggregator
    simulation = Simulation() if simulation is None else simulation
    execution = Execution() if execution is None else execution

    parts = Parts(client, clients_per_round, local_epochs, server_optimizer, aggregator,
                  sampling, weighting, drop_stragglers, simulation)  # fmt: skip

    def init(params: Any, *, num_clients: int) -> ServerState:
        shared, one = client.init(params)
        stack = lambda a: jnp.repeat(a[None], num_clients, axis=0)
        return ServerState(
            params=params,
            opt_state=server_optimizer.init(params),
            clients=ClientStates(shared, jax.tree.map(stack, one)),
            aggregator=aggregator.init(),
            round=jnp.asarray(0, jnp.int32),
        )

    def apply(state: ServerState, data: ClientData, key: PRNGKeyArray) -> tuple[ServerState, dict]:
        rows = plan_round(parts, state, data.count, key, offset=data.offset)
        rows, n = pad_to_multiple(rows, mesh_size(execution.mesh), _zero_rows)
        shared = dict(params=state.params, client=state.clients.shared, samples=data.samples)
        if aggregator.encode is not None:
            shared.update(cohort=round_cohort(rows), key=key)
        fn = client_update(with_simulation(client, simulation, data.num_clients), aggregator)
        sent = map_clients(fn, shared, rows, backend=execution.backend, mesh=execution.mesh,
                           buckets=execution.buckets)  # fmt: skip
        lockstep = _lockstep(sent["steps"], execution)
        sent, rows = jax.tree.map(lambda a: a[:n], (sent, rows))
        return finish_round(parts, state, rows, sent, key, data.num_clients, lockstep=lockstep)

    jit = execution.backend != "serial" if execution.jit is None else execution.jit
    if jit:
        apply = jax.jit(apply, compiler_options=execution.compiler_options)
    return FederatedAlgorithm(init=init, apply=apply, parts=parts)


def plan_round(parts: Parts, state: ServerState, count: Any, key: PRNGKeyArray, *,
               offset: Any = None) -> dict:  # fmt: skip
    """The round's slots as ``apply`` draws them from ``key``: client ids, sample offsets (zeros
    where each client holds its own samples), counts, assigned epochs, live flags, weights, keys
    and the clients' states before the round. Shared with engines that run the client updates
    elsewhere (:mod:`twinjax.integrations.flower`)."""
    keys = round_keys(key)
    ids, group = sample_clients(keys.sample, count, parts.clients_per_round, parts.sampling)
    sim = parts.simulation
    epochs, live = assign_work(
        keys.work, group, parts.local_epochs, straggler_fraction=sim.straggler_fraction,
        drop_stragglers=parts.drop_stragglers, dropout_prob=sim.dropout_prob,
    )  # fmt: skip
    n = count[ids]
    weight = jnp.where(live, n if parts.weighting == "samples" else 1, 0).astype(jnp.float32)
    return dict(
        id=ids, offset=jnp.zeros_like(ids) if offset is None else offset[ids], count=n,
        epochs=epochs, weight=weight, group=group, live=live,
        key=jax.random.split(keys.clients, ids.shape[0]),
        state=jax.tree.map(lambda a: a[ids], state.clients.clients),
    )  # fmt: skip


def finish_round(
    parts: Parts, state: ServerState, rows: dict, sent: dict, key: PRNGKeyArray,
    num_clients: int, *, lockstep: Any = None,
) -> tuple[ServerState, dict]:  # fmt: skip
    """Aggregation, server optimizer and client-state write-back on the clients' replies
    (``sent``: update, steps, state per slot of ``rows``)."""
    metrics = {"clients_live": jnp.sum(rows["live"]), "local_steps": jnp.sum(sent["steps"])}
    if lockstep is not None:
        metrics["lockstep_steps"] = lockstep
    out, agg_state, more = parts.aggregator.aggregate(
        state.aggregator, sent["update"], round_cohort(rows), key
    )
    metrics.update(more)
    grads = jax.tree.map(jnp.negative, ravel_pytree(state.params)[1](out))
    updates, opt_state = parts.server_optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    clients = _write_back(state.clients, rows["state"], sent["state"], rows, num_clients)
    return ServerState(params, opt_state, clients, agg_state, state.round + 1), metrics


def _lockstep(steps: Array, execution: Execution) -> Array:
    """Local steps the round executed in lockstep (see :func:`lockstep_steps`)."""
    if execution.backend == "serial":
        return jnp.sum(steps)
    return lockstep_steps(steps, execution.buckets, mesh_size(execution.mesh))


def with_simulation(client: ClientUpdate, simulation: Simulation, num_clients: int) -> ClientUpdate:
    byz = simulation.byzantine
    if byz.fraction <= 0:
        return client
    attackers = num_attackers(byz, num_clients)
    return byzantine_clients(client, attackers=attackers, attack=byz.attack, scale=byz.scale)


def client_update(client: ClientUpdate, aggregator: Aggregator) -> Callable[[dict, dict], dict]:
    """Everything one client does in a round; returns only what it sends to the server."""

    def fn(shared: dict, row: dict) -> dict:
        task = ClientTask(shared["samples"], row["offset"], row["count"], row["epochs"], row["id"])
        out = client.update(shared["params"], shared["client"], row["state"], task, row["key"])
        update = ravel_pytree(out.delta)[0]
        if aggregator.encode is not None:
            update = aggregator.encode(update, round_cohort(row), shared["cohort"], shared["key"])
        return {"steps": out.steps, "state": out.state, "update": update}

    return fn


def round_cohort(rows: dict) -> RoundClients:
    return RoundClients(weight=rows["weight"], accepted=rows["weight"] > 0, id=rows["id"],
                  count=rows["count"], epochs=rows["epochs"], group=rows["group"],
                  live=rows["live"])  # fmt: skip


def _zero_rows(rows: dict) -> dict:
    return {**rows, "epochs": rows["epochs"] * 0, "weight": rows["weight"] * 0.0,
            "group": rows["group"] & False, "live": rows["live"] & False}  # fmt: skip


def _write_back(
    old: ClientStates, before: dict, after: dict, rows: dict, num_clients: int
) -> ClientStates:
    """The live clients' new states written into the population's; each shared entry moved by
    the mean change of its per-client entry."""
    if not old.clients:
        return old
    keep = rows["live"]
    new = jax.tree.map(
        lambda a, b: jnp.where(keep.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), after, before
    )
    clients = jax.tree.map(lambda all_, a: all_.at[rows["id"]].set(a, mode="drop"),
                           old.clients, new)  # fmt: skip
    shared = {
        name: jax.tree.map(
            lambda c, a, b: c + jnp.sum(a - b, axis=0) / num_clients, value, new[name], before[name]
        )  # fmt: skip
        for name, value in old.shared.items()
    }
    return ClientStates(shared, clients)


def sampling_rate(clients_per_round: int, num_clients: int) -> float:
    """Per-round participation probability of a client (for privacy accounting)."""
    return clients_per_round / num_clients
