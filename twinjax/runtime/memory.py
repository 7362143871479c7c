"""Peak memory, read at the end of each phase of a run (``metrics.json``'s ``memory``).

``peak_rss_mb`` is the process's resident high-water mark (``getrusage``'s ``ru_maxrss``): it
only rises, so the value at the end of a phase is the peak of that phase or of an earlier one, and
a phase's own peak shows as the rise over the phase before. ``device_peak_mb`` is the largest
``peak_bytes_in_use`` among this process's accelerators, where JAX reports ``memory_stats()``
(GPUs and TPUs; not the CPU, whose arrays are in the resident memory).
"""

import resource
import sys

import jax

_MIB = 2**20


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def device_peak_mb() -> float | None:
    """The largest peak of device memory in use among the local devices, in MiB (None where
    the backend reports no memory statistics)."""
    peaks = []
    for device in jax.local_devices():
        stats = device.memory_stats()
        if stats and "peak_bytes_in_use" in stats:
            peaks.append(stats["peak_bytes_in_use"])
    return max(peaks) / _MIB if peaks else None
