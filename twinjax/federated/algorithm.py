"""Federated algorithms as pure ``init`` / ``round`` pairs over a :class:`ServerState`.

One round: sample clients, assign local work (stragglers, dropouts), run local training on
every sampled client (serial, vmap or shard_map backend), screen and aggregate the updates
(optionally clipped and noised for DP, or masked for secure aggregation), and apply the
aggregate with a server optimizer from optax (``params - server_opt(-delta)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from jaxtyping import Array, Float, Int, PRNGKeyArray

from twinjax.federated import aggregation as agg
from twinjax.federated import privacy, secagg
from twinjax.federated.data import ClientData
from twinjax.federated.execution import map_clients, mesh_size, pad_to_multiple
from twinjax.federated.local import LossFn, local_sgd, num_local_steps
from twinjax.federated.personal import PersonalConfig, personal_update
from twinjax.federated.sampling import assign_work, sample_clients


class ServerState(NamedTuple):
    params: Any
    opt_state: Any
    control: Any  # SCAFFOLD server control variate (zeros otherwise)
    client_states: Any  # per-client state, leading axis = all clients (or None)
    clip_norm: Float[Array, ""]  # DP clip norm (adaptive)
    round: Int[Array, ""]


class FederatedAlgorithm(NamedTuple):
    init: Callable[..., ServerState]
    round: Callable[[ServerState, ClientData, PRNGKeyArray], tuple[ServerState, dict]]


@dataclass(frozen=True)
class Byzantine:
    """Simulated attackers: clients with id < ``fraction * num_clients`` corrupt their update."""

    fraction: float = 0.0
    attack: str = "sign_flip"  # "sign_flip" (-scale * u), "scale" (scale * u) or "nan"
    scale: float = 10.0


@dataclass(frozen=True)
class FedConfig:
    loss_fn: LossFn
    clients_per_round: int = 10
    local_lr: float = 0.01
    batch_size: int = 10
    local_epochs: int = 20
    mu: float = 0.0  # FedProx proximal weight
    server_optimizer: optax.GradientTransformation = field(default_factory=lambda: optax.sgd(1.0))
    scaffold: bool = False
    weighting: str = "samples"  # "samples" or "uniform"
    sampling: str = "uniform"  # "uniform", "size" (prob. proportional to samples) or "poisson"
    straggler_fraction: float = 0.0
    drop_stragglers: bool = True  # FedAvg drops stragglers; FedProx keeps their partial work
    dropout_prob: float = 0.0
    aggregator: str = "mean"
    trim_fraction: float = 0.1
    krum_byzantine: int = 0
    krum_select: int = 1
    per_step: bool = False  # aggregate updates per local step (agg.aggregate_per_step)
    bucket_size: int = 1  # >1: aggregate means of random client buckets (agg.bucket_means)
    max_update_norm: float = float("inf")
    dp: privacy.DPConfig | None = None
    secure_aggregation: bool = False
    secagg_scale: float = 2.0**16
    personal: PersonalConfig | None = None
    byzantine: Byzantine = field(default_factory=Byzantine)
    backend: str = "vmap"  # "serial", "vmap" or "shard_map"
    buckets: int = 1  # sequential vmapped groups of similar-size clients per device
    mesh: Mesh | None = None

    def __post_init__(self):
        if self.secure_aggregation and (self.aggregator != "mean" or self.dp is not None):
            raise ValueError("secure aggregation supports the plain weighted mean only")
        if self.dp is not None and self.aggregator != "mean":
            raise ValueError("DP-FedAvg uses the mean aggregator")


def init(cfg: FedConfig, params: Any, *, num_clients: int) -> ServerState:
    """The server state before round 0 for a population of ``num_clients`` clients."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    stack = lambda tree: jax.tree.map(lambda a: jnp.repeat(a[None], num_clients, axis=0), tree)
    client_states = {}
    if cfg.scaffold:
        client_states["control"] = stack(zeros)
    if cfg.personal is not None:
        client_states["personal"] = stack(params)
    clip = cfg.dp.clip_norm if cfg.dp is not None else 0.0
    return ServerState(
        params=params,
        opt_state=cfg.server_optimizer.init(params),
        control=zeros,
        client_states=client_states,
        clip_norm=jnp.asarray(clip, jnp.float32),
        round=jnp.asarray(0, jnp.int32),
    )


def _attack(cfg: FedConfig, update, client_id, num_clients):
    bad = client_id < jnp.floor(cfg.byzantine.fraction * num_clients)
    if cfg.byzantine.attack == "sign_flip":
        evil = -cfg.byzantine.scale * update
    elif cfg.byzantine.attack == "scale":
        evil = cfg.byzantine.scale * update
    elif cfg.byzantine.attack == "nan":
        evil = jnp.full_like(update, jnp.nan)
    else:
        raise ValueError(f"unknown attack {cfg.byzantine.attack!r}")
    return jnp.where(bad, evil, update)


def _client_update(cfg: FedConfig, num_clients: int, shared: dict, client: dict) -> dict:
    """Everything one client does in a round; returns only what it sends to the server."""
    params, samples = shared["params"], shared["samples"]
    k_train, k_personal = jax.random.split(client["key"])
    correction = None
    if cfg.scaffold:
        correction = jax.tree.map(jnp.subtract, shared["control"], client["state"]["control"])
    run = dict(learning_rate=cfg.local_lr, batch_size=cfg.batch_size, max_epochs=cfg.local_epochs)
    out_state = client["state"]
    if cfg.personal is not None:
        trained, out_state = personal_update(
            cfg.personal, cfg.loss_fn, params, client, samples, k_personal, **run
        )
        steps = trained.steps
        new = trained.params
    else:
        res = local_sgd(
            cfg.loss_fn, params, samples, client["offset"], client["count"], client["epochs"],
            k_train, anchor=params, mu=cfg.mu, correction=correction, **run,
        )  # fmt: skip
        new, steps = res.params, res.steps
    delta = jax.tree.map(jnp.subtract, new, params)
    if cfg.scaffold:
        # option II of Karimireddy et al.: c_i+ = c_i - c + (x - y) / (K lr)
        denom = jnp.maximum(steps, 1) * cfg.local_lr
        c_new = jax.tree.map(
            lambda ci, c, d: jnp.where(steps > 0, ci - c - d / denom, ci),
            client["state"]["control"], shared["control"], delta,
        )  # fmt: skip
        out_state = {**out_state, "control": c_new}
    flat = ravel_pytree(delta)[0]
    flat = _attack(cfg, flat, client["id"], num_clients)
    sent = {"steps": steps, "state": out_state}
    if cfg.secure_aggregation:
        share = client["weight"] / shared["weight_total"]
        sent["masked"] = secagg.mask_update(
            share * flat, shared["secagg_key"], client["id"], shared["ids"], shared["group"],
            scale=cfg.secagg_scale,
        )  # fmt: skip
    else:
        sent["update"] = flat
    return sent


def _aggregate(cfg: FedConfig, updates, client: dict, accepted, key):
    kw = dict(trim=cfg.trim_fraction, byzantine=cfg.krum_byzantine, select=cfg.krum_select,
              bucket_size=cfg.bucket_size, key=key)  # fmt: skip
    if not cfg.per_step:
        return agg.aggregate(cfg.aggregator, updates, client["weight"], accepted, **kw)
    steps = num_local_steps(client["count"], client["epochs"], cfg.batch_size)
    return agg.aggregate_per_step(cfg.aggregator, updates, client["weight"], accepted,
                                  steps.astype(jnp.float32), **kw)  # fmt: skip


def _zero_rows(rows: dict) -> dict:
    return {**rows, "epochs": rows["epochs"] * 0, "weight": rows["weight"] * 0.0,
            "group": rows["group"] & False, "live": rows["live"] & False}  # fmt: skip


def round(
    cfg: FedConfig, state: ServerState, data: ClientData, key: PRNGKeyArray
) -> tuple[ServerState, dict]:
    """One federated round over the population ``data``; returns the new state and metrics."""
    num_clients = data.num_clients
    k_sample, k_work, k_clients, k_noise, k_clip, k_mask = jax.random.split(key, 6)
    ids, group = sample_clients(k_sample, data.count, cfg.clients_per_round, cfg.sampling)
    epochs, live = assign_work(
        k_work, group, cfg.local_epochs, straggler_fraction=cfg.straggler_fraction,
        drop_stragglers=cfg.drop_stragglers, dropout_prob=cfg.dropout_prob,
    )  # fmt: skip
    count = data.count[ids]
    weight = jnp.where(live, count if cfg.weighting == "samples" else 1, 0).astype(jnp.float32)
    if cfg.dp is not None:
        weight = live.astype(jnp.float32)  # DP-FedAvg: uniform weights, fixed denominator
    states = jax.tree.map(lambda a: a[ids], state.client_states)
    client = dict(
        id=ids, offset=data.offset[ids], count=count, epochs=epochs, weight=weight,
        group=group, live=live, key=jax.random.split(k_clients, ids.shape[0]), state=states,
    )  # fmt: skip
    client, n = pad_to_multiple(client, mesh_size(cfg.mesh), _zero_rows)
    shared = dict(params=state.params, control=state.control, samples=data.samples)
    if cfg.secure_aggregation:
        shared.update(
            ids=client["id"], group=client["group"], secagg_key=k_mask,
            weight_total=jnp.maximum(jnp.sum(client["weight"]), 1e-12),
        )  # fmt: skip
    fn = lambda s, c: _client_update(cfg, num_clients, s, c)
    sent = map_clients(fn, shared, client, backend=cfg.backend, mesh=cfg.mesh, buckets=cfg.buckets)
    sent = jax.tree.map(lambda a: a[:n], sent)
    client = jax.tree.map(lambda a: a[:n], client)

    metrics = {"clients_live": jnp.sum(client["live"]), "local_steps": jnp.sum(sent["steps"])}
    unravel = ravel_pytree(state.params)[1]
    clip_norm = state.clip_norm
    if cfg.secure_aggregation:
        mean = secagg.unmasked_sum(
            sent["masked"], k_mask, client["id"], client["group"], client["live"],
            scale=cfg.secagg_scale,
        )  # fmt: skip
        metrics["rejected"] = jnp.int32(0)
    else:
        updates, accepted, rejected = agg.screen_updates(
            sent["update"], client["weight"], max_norm=cfg.max_update_norm
        )
        metrics["rejected"] = rejected
        metrics["update_norm"] = jnp.sum(
            jnp.where(accepted, jnp.linalg.norm(updates, axis=1), 0.0)
        ) / jnp.maximum(jnp.sum(accepted), 1)
        if cfg.dp is not None:
            expected = _expected_clients(cfg, num_clients)
            clipped, unclipped = privacy.clip_updates(updates, clip_norm)
            total = jnp.sum(jnp.where(accepted[:, None], clipped, 0.0), axis=0)
            mean = privacy.noisy_mean(total, clip_norm, expected, k_noise, cfg.dp)
            clip_norm = privacy.adapt_clip_norm(
                clip_norm, unclipped, accepted, expected, k_clip, cfg.dp
            )
            metrics["clip_norm"] = clip_norm
        else:
            # folded in, not split off: rounds without bucketing keep their random streams
            mean = _aggregate(cfg, updates, client, accepted, jax.random.fold_in(key, 1))
    delta = unravel(mean)
    grads = jax.tree.map(jnp.negative, delta)
    updates, opt_state = cfg.server_optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    control = state.control
    client_states = state.client_states
    if client_states:
        keep = client["live"]
        new_states = jax.tree.map(
            lambda new, old: jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
            sent["state"],
            states,
        )
        client_states = jax.tree.map(
            lambda all_, new: all_.at[client["id"]].set(new, mode="drop"),
            client_states, new_states,
        )  # fmt: skip
        if cfg.scaffold:
            change = jax.tree.map(
                lambda new, old: jnp.sum(new - old, axis=0) / num_clients,
                new_states["control"], states["control"],
            )  # fmt: skip
            control = jax.tree.map(jnp.add, control, change)
    new_state = ServerState(params, opt_state, control, client_states, clip_norm, state.round + 1)
    return new_state, metrics


def _expected_clients(cfg: FedConfig, num_clients: int) -> float:
    return float(cfg.clients_per_round)


def sampling_rate(cfg: FedConfig, num_clients: int) -> float:
    """Per-round participation probability of a client (for privacy accounting)."""
    return cfg.clients_per_round / num_clients


def build(
    cfg: FedConfig, *, jit: bool | None = None, compiler_options: dict | None = None
) -> FederatedAlgorithm:
    """The ``(init, round)`` pair of ``cfg``; ``round`` is jitted unless the backend is serial.

    ``compiler_options`` go to XLA, e.g. ``FAST_COMPILE`` for tests and debugging.
    """
    jit = cfg.backend != "serial" if jit is None else jit
    step = lambda state, data, key: round(cfg, state, data, key)
    return FederatedAlgorithm(
        init=lambda params, *, num_clients: init(cfg, params, num_clients=num_clients),
        round=jax.jit(step, compiler_options=compiler_options) if jit else step,
    )


# halves XLA compile time of a round on CPU, at some cost in run time
FAST_COMPILE = {"xla_backend_optimization_level": 0}
