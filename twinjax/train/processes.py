"""The population twin trained by many processes (JAX's multi-process runtime).

Each process holds its share of the cohort (its own individuals' arrays, e.g. read by
:func:`twinjax.data.read_cohort` for its share) and one mesh spans the devices of every
process: a step's losses and gradients are summed over all of them (``psum`` across
processes), so every process takes the same optimizer step, the one a single process holding
the whole cohort would take (each individual draws its windows by its index in the cohort).

Start the runtime with :func:`initialize` in every process before any other JAX call (on CPUs
it selects gloo collectives, so that localhost processes can test what a cluster runs).
"""

import pickle
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, Bool, Float, Int

from twinjax.data import CohortArrays, Series
from twinjax.runtime.cluster import distributed_arguments
from twinjax.train.devices import AXIS


class ShareRows(NamedTuple):
    """Every process's rows as global arrays over a mesh spanning the processes: the series
    and training masks, each row's index in the cohort, and its weight (0 for the padding that
    gives every device as many rows)."""

    series: Series
    train: Bool[Array, "rows time"]
    index: Int[Array, " rows"]
    weight: Float[Array, " rows"]


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    heartbeat_timeout_seconds: int = 100,
) -> None:
    """``jax.distributed.initialize`` (None: from SLURM's variables,
    :func:`twinjax.runtime.cluster.distributed_arguments`, else detected on the clusters JAX
    knows), with gloo collectives for CPU devices (JAX's CPU client has none by default). A process that
    stops answering for ``heartbeat_timeout_seconds`` ends the others: JAX's distributed service
    aborts them with its own message ("another task died"; a collective waiting on a lost
    process would otherwise wait for ever)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        **distributed_arguments(coordinator_address, num_processes, process_id),
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
    )


def processes_mesh(per_process: int | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh (:data:`~twinjax.train.devices.AXIS`) over the first ``per_process``
    devices of every process (default: all of each process's devices)."""
    by_process: dict[int, list] = {}
    for d in jax.devices():
        by_process.setdefault(d.process_index, []).append(d)
    k = per_process or min(len(v) for v in by_process.values())
    devices = [d for p in sorted(by_process) for d in by_process[p][:k]]
    auto = (jax.sharding.AxisType.Auto,)
    return jax.make_mesh((len(devices),), (AXIS,), axis_types=auto, devices=devices)


def share_rows(arrays: CohortArrays, index: Sequence[int], mesh: jax.sharding.Mesh):
    """This process's ``arrays`` (its individuals, at positions ``index`` of the whole cohort)
    as part of :class:`ShareRows` over ``mesh``; returns them and the cohort's size.

    Raises ``ValueError`` unless the processes' indices together are ``0..N-1``, each once."""
    index = np.asarray(index, np.int64)
    if len(index) != arrays.n_individuals:
        raise ValueError(f"{len(index)} indices for {arrays.n_individuals} individuals")
    counts = np.asarray(multihost_utils.process_allgather(np.array(len(index)))).reshape(-1)
    local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    size = int(-(-counts.max() // local_devices) * local_devices)  # rows per process
    padded = np.full(size, -1)
    padded[: len(index)] = index
    every = np.asarray(multihost_utils.process_allgather(padded)).reshape(-1)
    every = np.sort(every[every >= 0])
    if not np.array_equal(every, np.arange(len(every))):
        raise ValueError(
            "the processes' shares must together index the cohort 0..N-1 once each; got "
            f"{len(every)} indices with {len(every) - len(np.unique(every))} repeated, "
            f"largest {every.max() if len(every) else None}"
        )
    pad = size - len(index)
    take = np.concatenate([np.arange(len(index)), np.zeros(pad, np.int64)])
    local = ShareRows(
        arrays.series.at(take),
        arrays.train[take],
        np.where(np.arange(size) < len(index), padded, 0),
        np.concatenate([np.ones(len(index)), np.zeros(pad)]).astype(np.float32),
    )
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))

    def as_global(x):
        x = np.asarray(x)
        shape = (size * jax.process_count(), *x.shape[1:])
        return jax.make_array_from_process_local_data(sharding, x, shape)

    return jax.tree.map(as_global, local), len(every)


def replicated(tree, mesh: jax.sharding.Mesh):
    """``tree`` (the same values in every process) replicated on every device of ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

    return jax.tree.map(put, tree)


def local_copy(tree):
    """A replicated global ``tree`` as arrays on this process's first device."""
    return jax.tree.map(lambda x: jnp.asarray(x.addressable_data(0)), tree)


def allgather(obj) -> list:
    """``obj`` (any picklable value: ids, per-individual scores, a summary) of every process,
    in process order (``[obj]`` in one process). Exact for every dtype: the value travels as
    its pickled bytes (``process_allgather`` alone would turn float64 into float32)."""
    if jax.process_count() == 1:
        return [obj]
    data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([len(data)], np.int32)))
    sizes = sizes.reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: len(data)] = data
    every = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(sizes), -1)
    return [pickle.loads(every[i, : sizes[i]].tobytes()) for i in range(len(sizes))]


class Across(NamedTuple):
    """Cohort-wide statistics pooled over every process's share: ``sum`` and ``max`` of a host
    array over the processes (what :func:`twinjax.data.prepare` and the calibration take; in
    one process both return their argument)."""

    sum: Callable = lambda x: np.sum(allgather(np.asarray(x)), axis=0)
    max: Callable = lambda x: np.max(allgather(np.asarray(x)), axis=0)


def gather_rows(tree, index: Sequence[int], total: int):
    """Per-individual arrays (leading axis: this process's individuals, at cohort positions
    ``index``) of every process, as whole-cohort arrays in cohort order (on every process)."""
    parts = allgather((np.asarray(index), jax.tree.map(np.asarray, tree)))
    order = np.concatenate([i for i, _ in parts])
    if not np.array_equal(np.sort(order), np.arange(total)):
        raise ValueError(f"the processes' rows do not index the cohort 0..{total - 1} once each")
    where = np.argsort(order, kind="stable")
    stack = lambda *xs: np.concatenate(xs)[where]
    return jax.tree.map(stack, *[t for _, t in parts])


def cohort_positions(subject_ids: Sequence) -> tuple[np.ndarray, int]:
    """Each of this process's subjects' position in the whole cohort (every process's subjects
    in sorted order, the order one process reading the whole cohort gives them) and the
    cohort's size.

    Raises ``ValueError`` when a subject is in more than one process's share."""
    mine = list(subject_ids)
    every = [s for ids in allgather(mine) for s in ids]
    try:
        order = sorted(every)
    except TypeError:  # ids of mixed types: compared as text
        order = sorted(every, key=str)
    rank = {s: i for i, s in enumerate(order)}
    if len(rank) != len(order):
        twice = sorted({s for s in every if every.count(s) > 1})[:10]
        raise ValueError(f"subjects held by more than one process: {twice}")
    return np.array([rank[s] for s in mine], np.int64), len(order)


def barrier(name: str) -> None:
    """Waits until every process reaches the barrier ``name`` (nothing in one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
