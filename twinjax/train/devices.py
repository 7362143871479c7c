"""Where the personal twins run: a mesh over the local devices, and chunks that fit their memory.

Individuals are independent in personal fine-tuning, so they are split over devices along one
mesh axis (``jax.shard_map``; ``vmap`` inside a device) and over time in chunks: a chunk is as
many individuals as the compiled step's memory (``memory_analysis()``) lets fit in a fraction of
a device's free memory.
"""

import logging
import math
import os
from collections.abc import Sequence

import jax

log = logging.getLogger(__name__)

AXIS = "individuals"


def use_cpu_devices(n: int | None) -> None:
    """Asks JAX for ``n`` CPU devices (None: one per core), before its first operation.

    Individuals are independent, so one device per core lets each core train its share
    (``shard_map``); XLA spreads one device's small recurrent step poorly over the cores
    (personal fit, default model, 256 individuals, 2 cores: 6.8 s for 100 steps on 2 devices vs
    14.1 s on one). An ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` is the user's
    choice and is kept; once JAX has started (e.g. the next run of a sweep in one process) the
    devices stay as they are. Accelerators are not affected.
    """
    if n is not None and n < 1:
        raise ValueError(f"cpu_devices={n}: use a count >= 1, or null for one per core")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    n = n or os.cpu_count() or 1
    if jax.config.jax_num_cpu_devices == n:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX has started: its devices are fixed for this process
        log.info("cpu_devices=%d not applied: JAX has already started in this process", n)


def training_devices() -> list[jax.Device]:
    """This process's devices to split individuals over: all its accelerators, or its CPU
    devices up to one per core (more would share cores: no gain, more synchronization)."""
    devices = jax.local_devices()
    if devices[0].platform == "cpu":
        devices = devices[: os.cpu_count() or 1]
    return devices


def individuals_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh (named :data:`AXIS`) over ``devices`` (default: this process's devices).

    Under ``jax.distributed`` each process uses its own devices (each fits the individuals it is
    given), so the mesh never spans hosts and inputs stay addressable.

    >>> individuals_mesh(jax.local_devices()[:1]).shape[AXIS]
    1
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("individuals_mesh needs at least one device")
    auto = (jax.sharding.AxisType.Auto,)  # shardings follow the inputs (shard_map is explicit)
    return jax.make_mesh((len(devices),), (AXIS,), axis_types=auto, devices=devices)


# host memory (bytes) the CPU devices' budgets are shares of, at most (None: the free memory);
# set once per run by the app (``host_memory_gb``), like the CPU device count
_HOST_MEMORY: list[int | None] = [None]


def use_host_memory(gigabytes: float | None) -> None:
    """Sizes every phase chunked by memory on CPU devices (personal fits, forecasts, validation
    rollouts and NLL) for at most ``gigabytes`` of host memory, shared by the local CPU devices,
    instead of the host's free memory (None): peak memory then follows the data up to that
    size and no further (chunks of individuals are fitted or forecast one after another, with
    the same results). Accelerators size for their own free memory either way."""
    if gigabytes is not None and gigabytes <= 0:
        raise ValueError(f"host memory must be > 0 GB (or None: the free memory), not {gigabytes}")
    _HOST_MEMORY[0] = None if gigabytes is None else int(gigabytes * 2**30)


def device_memory_budget(device: jax.Device, *, fraction: float) -> int:
    """Bytes one device may spend on a step: ``fraction`` of its free memory.

    Accelerators report their limit and use (``memory_stats()``); a CPU device reports none, so
    the host's free physical memory, or the memory set by :func:`use_host_memory` where that is
    less, is shared among its local CPU devices.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"memory fraction must be in (0, 1], got {fraction}")
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    else:
        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")  # free now
        if _HOST_MEMORY[0] is not None:
            host = min(host, _HOST_MEMORY[0])
        same_kind = [d for d in jax.local_devices() if d.platform == device.platform]
        free = host // max(len(same_kind), 1)
    return int(fraction * free)


def step_bytes(compiled) -> int | None:
    """Peak bytes of one device's part of a compiled step (arguments, outputs and temporaries;
    aliased outputs counted once), or None where the backend gives no memory analysis."""
    if compiled is None:
        return None
    try:
        m = compiled.memory_analysis()
    except (NotImplementedError, RuntimeError):
        return None
    if m is None:
        return None
    total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
    return int(total - getattr(m, "alias_size_in_bytes", 0))


def layout(n: int, chunk: int, n_devices: int) -> tuple[int, int]:
    """``(chunk, devices)``: ``chunk`` individuals (at most ``n``) rounded up to a multiple of the
    devices used, all ``n_devices`` of them unless the chunk is smaller.

    >>> layout(5, 5, 8), layout(12, 12, 8), layout(100, 30, 8), layout(5, 2, 8)
    ((5, 5), (16, 8), (32, 8), (2, 2))
    """
    chunk = max(1, min(chunk, n))
    d = min(n_devices, chunk)
    return math.ceil(chunk / d) * d, d


def fit_chunk(n_per_device: int, used: int, budget: int, d: int) -> int:
    """Individuals per chunk (a multiple of ``d`` devices) when ``n_per_device`` of them took
    ``used`` bytes on one device and ``budget`` bytes are allowed (at least one per device).

    >>> fit_chunk(1000, 4_000_000, 1_000_000, 8)
    2000
    """
    per_individual = used / max(n_per_device, 1)
    return max(1, int(budget // max(per_individual, 1))) * d


def rows_that_fit(
    compile_for,
    n: int,
    *,
    fraction: float,
    device: jax.Device | None = None,
    probe: int = 64,
    scale: float = 1.0,
    what: str = "",
) -> int:
    """Individuals per call (0: all ``n`` at once) so that one call of a program that is linear in
    its individuals fits ``fraction`` of ``device``'s free memory (default: the first device).

    ``compile_for(rows)`` returns the program compiled for ``rows`` individuals; its memory
    analysis at ``probe`` of them, scaled (times ``scale``: e.g. the longest segment over the
    probe's), sizes the calls; ``what`` names them in the log. An evaluation over a whole cohort is
    not part of a training step's memory analysis, so it is sized here on its own: the personal
    twins' validation NLL at 4,096 individuals x 217 validation steps needs 4.4 MB each, 18 GB at
    once, which the app ran unchunked (21 GB peak on a 23 GB machine).

    >>> rows_that_fit(lambda rows: None, 10, fraction=0.5)  # no memory analysis: all at once
    0
    """
    if n <= probe:
        return 0
    used = step_bytes(compile_for(probe)) if probe else None
    if used is None:
        return 0
    device = jax.local_devices()[0] if device is None else device
    per_row = used / probe * scale
    rows = int(device_memory_budget(device, fraction=fraction) // max(per_row, 1))
    if rows >= n:
        return 0
    log.info("%s%d individuals at a time (%.1f MB each)", f"{what}: " if what else "",
             max(rows, 1), per_row / 1e6)  # fmt: skip
    return max(rows, 1)
