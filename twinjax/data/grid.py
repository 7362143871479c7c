"""Before a cohort is aligned: will its grid be mostly empty, or too large for this machine?

A step far finer than the data makes a grid of mostly empty cells that costs memory and time in
every later phase (times in epoch seconds read with ``data.step=1`` made 284,401 steps per subject
and a run the kernel killed for memory). :func:`check_grid` estimates the grid from the rows
alone, before anything is allocated, and refuses it with the likely cause and a step to try.
"""

from __future__ import annotations

import math
import os

import numpy as np

from twinjax.data.errors import CohortError

MIN_OBSERVED = 0.005  # a grid with fewer observed cells than this (at most) is refused ...
LARGE_GRID = 1_000_000  # ... when it has more cells than this (small grids are cheap anyway)
RUN_COPIES = 12  # bytes a run may hold per byte of the aligned arrays (normalized and device
# copies, split masks, forecasts): an allowance for the refusal below, not a measured figure
_BYTES_PER_CELL = 4 + 1  # float32 value and bool mask per variable; interventions float32 each
_EPOCH = {"seconds": (1e8, 1e10, 1.0), "milliseconds": (1e11, 1e13, 1e3)}


def host_available_bytes() -> int:
    """Memory the system can give without swapping (``MemAvailable``; free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _spans(subject, time, isubject, itime, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's first time (observations or interventions) and last observation time."""
    first = np.full(n, np.inf)
    np.minimum.at(first, subject, time)
    np.minimum.at(first, isubject, itime)
    last = np.full(n, -np.inf)
    np.maximum.at(last, subject, time)
    return first, last


def median_gap(subject: np.ndarray, time: np.ndarray) -> float:
    """Median positive gap between consecutive observation times of one subject."""
    order = np.lexsort((time, subject))
    s, t = subject[order], time[order]
    gaps = np.diff(t)[(np.diff(s) == 0) & (np.diff(t) > 0)]
    return float(np.median(gaps)) if len(gaps) else float("nan")


def _nice(x: float) -> str:
    """A round step near ``x`` (1, 2, 5 x 10^k), as config text."""
    if not math.isfinite(x) or x <= 0:
        return "1"
    k = math.floor(math.log10(x))
    m = min((1, 2, 5, 10), key=lambda c: abs(math.log(x / (c * 10**k))))
    return f"{m * 10**k:g}"


def likely_cause(time: np.ndarray, gap: float, kind: str, step: float) -> str:
    """What a user most likely meant, as advice (numeric epoch times; else the data's gap)."""
    if kind == "number" and len(time):
        typical = float(np.median(np.abs(time)))
        for unit, (lo, hi, per_second) in _EPOCH.items():
            if lo <= typical < hi:
                hour = 3600 * per_second
                suggest = _nice(gap) if math.isfinite(gap) and gap < hour else f"{hour:g}"
                return (f"times look like epoch {unit} (median {typical:.3g}): try "
                        f"data.step={suggest} (one hour is {hour:g}), or give the times as dates")  # fmt: skip
    if kind == "datetime":
        return f"try a step near the data's gap, e.g. data.step={_nice(gap)}s"
    return f"try data.step={_nice(gap)} (near the median gap between a subject's observations)"


def check_grid(
    obs_subject: np.ndarray,
    obs_time: np.ndarray,
    itv_subject: np.ndarray,
    itv_time: np.ndarray,
    sizes: tuple[int, int, int],
    step: float,
    *,
    kind: str,
    step_text: str,
    origin: str = "subject",
    source: str | None = None,
    column: str | None = None,
    available: int | None = None,
    sparse: bool = False,
) -> dict:
    """Refuses a grid that is mostly empty or will not fit in memory, before it is allocated.

    Args:
      obs_subject, obs_time, itv_subject, itv_time: subject codes and times of the rows.
      sizes: (subjects, variables, intervention kinds). step: the grid step in time units.
      kind: "number" or "datetime"; step_text: the step as the user gave it.
      available: bytes the machine can give (default: ``MemAvailable``).
      sparse: accept a mostly empty grid (the memory check stays): for a caller that reads
        the visits back out of it rather than running a model over every cell.

    Returns:
      The estimate: ``steps`` (longest subject), ``cells``, ``observed_at_most`` (fraction),
      ``array_bytes`` and ``run_bytes`` (``RUN_COPIES`` times the arrays).

    Raises:
      CohortError: fewer than ``MIN_OBSERVED`` of a grid over ``LARGE_GRID`` cells could be
        observed, or the run's estimate exceeds the available memory; the message gives the
        estimate, the likely cause and a step to try.
    """
    n, f, u = sizes
    first, last = _spans(obs_subject, obs_time, itv_subject, itv_time, n)
    with np.errstate(over="ignore"):  # a step so fine that a span overflows: inf, refused below
        if origin == "absolute" and n:
            start = np.floor(first.min() / step) * step
            first[:] = start if np.isfinite(start) else first.min()
        lengths = np.floor((last - first) / step + 1e-9).astype(np.float64) + 1
    longest = float(lengths.max()) if n else 0.0
    T = int(longest) if longest < 1e15 else longest  # a float beyond (1e+300 steps, inf)
    cells_inside = float(lengths.sum()) * f
    observed = min(1.0, len(obs_time) / max(cells_inside, 1.0))
    array_bytes = n * T * (f * _BYTES_PER_CELL + u * 4)
    run_bytes = RUN_COPIES * array_bytes
    out = dict(steps=T, cells=n * T * max(f, 1), observed_at_most=observed,
               array_bytes=array_bytes, run_bytes=run_bytes)  # fmt: skip
    gap = median_gap(obs_subject, obs_time)
    steps = f"{T:,}" if isinstance(T, int) else f"{T:.3g}"
    shape = f"{n} subjects x {steps} steps x {f} variable(s)"
    cause = lambda: likely_cause(obs_time, gap, kind, step)
    if not sparse and n * T * max(f, 1) > LARGE_GRID and observed < MIN_OBSERVED:
        raise CohortError(
            f"the grid would be {shape} with at most {observed:.3%} of its cells observed "
            f"(step {step_text}; the median gap between a subject's observations is {gap:g} time "
            f"units): {cause()}",
            source=source,
            column=column,
        )
    available = host_available_bytes() if available is None else available
    if run_bytes > available:
        raise CohortError(
            f"the grid would be {shape}: about {run_bytes / 1e9:.1f} GB for the run "
            f"({array_bytes / 1e9:.2f} GB of aligned arrays, ~{RUN_COPIES}x that in use), more "
            f"than the {available / 1e9:.1f} GB available; use a larger step ({cause()}) or fewer "
            "subjects per run",
            source=source,
            column=column,
        )
    return out
