"""Size classes for lockstep local SGD: group edges that minimize a round's padded steps.

Under ``vmap`` a group of clients runs its local-step loop until its busiest member is done, so
a group of width ``w`` whose largest client needs ``s`` steps costs ``w * s`` client-steps.
A round's slots arrive sorted by decreasing size (:func:`~twinjax.federated.sampling.
sample_clients`), so a group ``[lo, hi)`` costs ``(hi - lo) * steps[lo]`` and the expected cost
of fixed edges is ``sum (hi - lo) * E[steps[lo]]``: only the mean order statistics of the sorted
step counts matter. They are estimated by drawing rounds from the population's client sizes,
and the edges that minimize the expected cost are found by dynamic programming over the slots.
With heavy-tailed sizes this beats the geometric widths of
:func:`~twinjax.federated.execution.bucket_edges` (10,000 Synthetic clients with sizes capped at
500, 1,000 Poisson-sampled per round, one epoch: 1.47x the useful steps with 8 geometric
groups, 1.12x with 8 size classes, against 3.08x for one padded vmap).
"""

from typing import Literal

import numpy as np
from jaxtyping import Array, Int

from twinjax.federated.sampling import poisson_slots


def mean_sorted_steps(
    count: Int[Array, " clients"] | np.ndarray,
    clients_per_round: int,
    *,
    epochs: int,
    batch_size: int,
    sampling: Literal["uniform", "size", "poisson"] = "uniform",
    devices: int = 1,
    draws: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Mean local steps of each slot of a device, slots sorted by decreasing size as a round
    lays them out (``devices`` contiguous chunks of the padded slots), over ``draws`` rounds."""
    count = np.asarray(count)
    k = len(count)
    steps = epochs * (-(-count // batch_size))
    slots = min(poisson_slots(clients_per_round), k) if sampling == "poisson" else clients_per_round
    total = slots + (-slots) % devices
    rng = np.random.default_rng(seed)
    out = np.zeros(total)
    for _ in range(draws):
        if sampling == "poisson":
            chosen = np.flatnonzero(rng.random(k) < clients_per_round / k)
            chosen = rng.permutation(chosen)[:slots]
        else:
            p = count / count.sum() if sampling == "size" else None
            chosen = rng.choice(k, clients_per_round, replace=False, p=p)
        row = np.zeros(total)
        row[: len(chosen)] = np.sort(steps[chosen])[::-1]
        out += row
    return (out / draws).reshape(devices, -1).mean(axis=0)


def optimal_edges(mean_steps: np.ndarray, buckets: int) -> tuple[int, ...]:
    """``min(buckets, n)`` contiguous groups of the ``n`` sorted slots minimizing
    ``sum (hi - lo) * mean_steps[lo]`` (dynamic programming, O(buckets n^2)). With
    ``mean_steps`` non-increasing, splitting a group never costs more, so no fewer groups
    could do better."""
    n = len(mean_steps)
    groups = max(1, min(buckets, n))
    cost = np.full((groups + 1, n + 1), np.inf)
    cost[0, 0] = 0.0
    back = np.zeros((groups + 1, n + 1), dtype=int)
    width = np.arange(n + 1)
    for b in range(1, groups + 1):
        for i in range(b, n + 1):
            c = cost[b - 1, :i] + (i - width[:i]) * mean_steps[:i]
            back[b, i] = int(np.argmin(c))
            cost[b, i] = c[back[b, i]]
    edges, i = [n], n
    for b in range(groups, 0, -1):
        i = back[b, i]
        edges.append(i)
    return tuple(int(e) for e in edges[::-1])


def size_class_edges(
    count: Int[Array, " clients"] | np.ndarray,
    clients_per_round: int,
    buckets: int,
    *,
    epochs: int,
    batch_size: int,
    sampling: Literal["uniform", "size", "poisson"] = "uniform",
    devices: int = 1,
    draws: int = 64,
    seed: int = 0,
) -> tuple[int, ...]:
    """Edges of at most ``buckets`` vmapped groups over a device's slots that minimize the
    expected lockstep local steps of a round, for ``Execution(buckets=edges)``.

    Args:
        count: every client's sample count (the population's).
        clients_per_round: sampled clients per round (Poisson: the expected number).
        buckets: the most groups (each one a local-step loop of its own).
        epochs: local epochs a client runs.
        batch_size: local minibatch size.
        sampling: the round's client sampling.
        devices: devices the slots are split over (``shard_map``); 1 for ``vmap``.
        draws: rounds drawn to estimate the mean sorted step counts.
        seed: the draws' seed (numpy; the edges are a speed setting, not part of the result).

    Returns:
        ``(0, e_1, ..., slots_per_device)``.

    >>> import numpy as np
    >>> size_class_edges(np.array([500, 20, 20, 20, 20, 20]), 6, 2, epochs=1, batch_size=10)
    (0, 1, 6)
    """
    mean_steps = mean_sorted_steps(
        count, clients_per_round, epochs=epochs, batch_size=batch_size, sampling=sampling,
        devices=devices, draws=draws, seed=seed,
    )  # fmt: skip
    return optimal_edges(mean_steps, buckets)
