"""Where client updates run: serial (no jit), vmap in one device, or shard_map over devices.

All backends map a per-client function ``fn(shared, client) -> out`` over the leading axis of
``client`` (a pytree) with ``shared`` broadcast. With ``shard_map`` the clients are split over
the mesh axis ``"clients"`` and vmapped inside each device; the client count must be a multiple
of the mesh size (:func:`pad_to_multiple` adds zero-weight clients).

Multi-host: call :func:`initialize_distributed` (``jax.distributed.initialize``) in every
process before any other JAX call; :func:`client_mesh` then spans the devices of all hosts and
the same round program runs unchanged (each host feeds the same replicated inputs). In the
app this is the root ``distributed`` group (``twinjax.train.processes.initialize``), e.g. on
each of 2 hosts::

    python -m twinjax experiment=fedprox_synthetic experiment.backend=shard_map \
        distributed.enabled=true distributed.coordinator_address=host0:1234 \
        distributed.num_processes=2 distributed.process_id=<0 or 1>
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Int

from twinjax.runtime.cluster import distributed_arguments

AXIS = "clients"
BACKENDS = ("serial", "vmap", "shard_map")


@dataclass
class DistributedConfig:
    """Arguments of ``jax.distributed.initialize`` (multi-host launch); off by default."""

    enabled: bool = False
    coordinator_address: str | None = None  # "host:port" of process 0
    num_processes: int | None = None
    process_id: int | None = None


def initialize_distributed(cfg: DistributedConfig) -> None:
    """Starts JAX's multi-host runtime when ``cfg.enabled``; None fields come from SLURM's
    variables (:func:`twinjax.runtime.cluster.slurm_process`), else JAX detects them on the
    clusters it knows (Cloud TPU, Open MPI...)."""
    if cfg.enabled:
        jax.distributed.initialize(
            **distributed_arguments(cfg.coordinator_address, cfg.num_processes, cfg.process_id)
        )


def client_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over ``num_devices`` (default: all) devices with axis ``"clients"``."""
    n = num_devices or jax.device_count()
    return jax.make_mesh((n,), (AXIS,), axis_types=(AxisType.Auto,))


def pad_to_multiple(client: Any, multiple: int, zero: Callable[[Any], Any]) -> tuple[Any, int]:
    """Appends copies of client 0 made inert by ``zero`` until the count divides ``multiple``.

    ``zero(rows)`` receives the appended rows and must return them with zero weight and no
    local work. Returns the padded pytree and the original count.
    """
    n = jax.tree.leaves(client)[0].shape[0]
    pad = (-n) % multiple
    if pad == 0:
        return client, n
    rows = zero(jax.tree.map(lambda a: jnp.repeat(a[:1], pad, axis=0), client))
    return jax.tree.map(lambda a, r: jnp.concatenate([a, r]), client, rows), n


def bucket_edges(n: int, buckets: int) -> np.ndarray:
    """Edges of at most ``buckets`` consecutive groups of ``n`` clients, growing geometrically.

    Clients arrive sorted by decreasing size and sizes are heavy-tailed, so the first groups
    are the narrowest: the largest client runs its many steps alone (or nearly so) instead of
    dragging a wide vmap along, while the many small clients share a wide one.
    """
    edges = np.round(np.geomspace(1, n + 1, min(buckets, n) + 1)) - 1
    return np.unique(edges.astype(int))


def group_edges(n: int, buckets: int | Sequence[int]) -> np.ndarray:
    """Edges of the vmapped groups of ``n`` slots: :func:`bucket_edges` for a count, or
    explicit edges (``0 = e_0 < e_1 < ... = n``, e.g. from
    :func:`~twinjax.federated.size_class_edges`)."""
    if isinstance(buckets, int | np.integer):
        return bucket_edges(n, int(buckets))
    edges = np.asarray(buckets, dtype=int)
    if edges.ndim != 1 or len(edges) < 2 or edges[0] != 0 or edges[-1] != n:
        raise ValueError(f"group edges must run from 0 to {n} (the slots of a device); got "
                         f"{edges.tolist()}")  # fmt: skip
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"group edges must increase; got {edges.tolist()}")
    return edges


def lockstep_steps(
    steps: Int[Array, " clients"], buckets: int | Sequence[int], devices: int = 1
) -> Int[Array, ""]:
    """Local steps executed in lockstep: per device and per group (:func:`group_edges`), the
    group's width times its busiest client's steps (under ``vmap`` a ``while_loop`` runs every
    member until the last is done). Divided by ``sum(steps)``, the padding overhead.
    """
    per_device = steps.reshape(devices, -1)
    edges = group_edges(per_device.shape[1], buckets)
    return sum(
        (hi - lo) * jnp.sum(jnp.max(per_device[:, lo:hi], axis=1))
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )


def _bucketed_vmap(fn: Callable, shared: Any, client: Any, buckets: int | Sequence[int]) -> Any:
    """vmap over the groups of :func:`group_edges`, each its own local-step loop.

    Each group's loop stops at its own largest client instead of every client idling until the
    largest of the round is done. The groups do not depend on each other, so XLA may run them
    concurrently when cores are free.
    """
    n = jax.tree.leaves(client)[0].shape[0]
    edges = group_edges(n, buckets)
    outs = [
        jax.vmap(fn, in_axes=(None, 0))(
            shared, jax.tree.map(lambda a, lo=lo, hi=hi: a[lo:hi], client)
        )
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outs)


def map_clients(
    fn: Callable[[Any, Any], Any],
    shared: Any,
    client: Any,
    *,
    backend: Literal["serial", "vmap", "shard_map"],
    mesh: Mesh | None,
    buckets: int | Sequence[int] = 1,
) -> Any:
    """Applies ``fn(shared, one_client)`` to every client (leading axis of ``client``).

    ``buckets`` > 1 splits the clients of a device into at most that many vmapped groups
    (:func:`bucket_edges`); a sequence gives the groups' edges over a device's clients.
    """
    if backend == "serial":
        n = jax.tree.leaves(client)[0].shape[0]
        with jax.disable_jit():
            outs = [fn(shared, jax.tree.map(lambda a, i=i: a[i], client)) for i in range(n)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    if backend == "vmap":
        return _bucketed_vmap(fn, shared, client, buckets)
    if backend == "shard_map":
        if mesh is None:
            raise ValueError("backend 'shard_map' needs a mesh")

        def per_device(s, c):
            out = _bucketed_vmap(fn, s, c, buckets)
            return jax.tree.map(lambda x: jax.lax.all_gather(x, AXIS, tiled=True), out)

        # outputs are gathered to every device: the server step after it stays replicated
        sharded = jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(P(), P(AXIS)),
            out_specs=P(),
            check_vma=False,  # client work is per device: no psum of grads of shared params
        )
        return sharded(shared, client)
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def mesh_size(mesh: Mesh | None) -> int:
    return 1 if mesh is None else int(np.prod(list(mesh.shape.values())))
