"""Last value carried forward (LOCF): the baseline every longitudinal forecast must beat.

For slowly changing measurements (labs, wages) the last observed value is a strong point forecast.
Its interval here comes from the cohort's own visit-to-visit changes: for a stream with last value
``y_prev``, the central ``level`` interval is ``y_prev + [q_lo, q_hi]`` where ``q`` are the
empirical quantiles of the changes between consecutive observations of that stream, pooled over
the cohort's training steps (distribution-free; no Gaussian assumption).
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Bool, Float


class Carried(NamedTuple):
    """For every step t: the last observation strictly before t and whether there was one."""

    value: Float[np.ndarray, "individuals time features"]
    seen: Bool[np.ndarray, "individuals time features"]


def carry_forward(
    values: Float[ArrayLike, "individuals time features"],
    mask: Bool[ArrayLike, "individuals time features"],
) -> Carried:
    """The last observed value before each step (``seen`` False where there is none).

    Example:
        >>> v = np.array([[[1.0], [0.0], [3.0], [5.0]]])
        >>> m = np.array([[[True], [False], [True], [True]]])
        >>> c = carry_forward(v, m)
        >>> c.value[0, :, 0].tolist(), c.seen[0, :, 0].tolist()
        ([0.0, 1.0, 1.0, 3.0], [False, True, True, True])
    """
    values, mask = np.asarray(values, np.float64), np.asarray(mask, bool)
    n, t, f = values.shape
    steps = np.where(mask, np.arange(t)[None, :, None], -1)
    last = np.maximum.accumulate(steps, axis=1)  # last observed step at or before t
    before = np.concatenate([np.full((n, 1, f), -1), last[:, :-1]], axis=1)
    seen = before >= 0
    rows, cols = np.arange(n)[:, None, None], np.arange(f)[None, None, :]
    value = np.where(seen, values[rows, np.maximum(before, 0), cols], 0.0)
    return Carried(value, seen)


def observed_changes(
    values: Float[ArrayLike, "individuals time features"],
    mask: Bool[ArrayLike, "individuals time features"],
    steps: Bool[ArrayLike, "individuals time"],
) -> list[np.ndarray]:
    """Per stream, the changes ``y[t] - y[previous observation]`` at the observed ``steps``
    (e.g. the training steps: a change counts only if both ends are observed and t is in
    ``steps``; the previous observation then lies before t, so inside a prefix segment too)."""
    mask = np.asarray(mask, bool)
    carried = carry_forward(values, mask)
    ok = mask & carried.seen & np.asarray(steps, bool)[..., None]
    diff = np.asarray(values, np.float64) - carried.value
    return [diff[..., k][ok[..., k]] for k in range(mask.shape[-1])]


def locf_intervals(
    carried: Float[ArrayLike, "*batch features"],
    changes: list[np.ndarray],
    levels: tuple[float, ...],
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Central ``level`` intervals ``carried + empirical change quantiles``, per level.

    Raises:
        ValueError: a stream without any observed change.

    Example:
        >>> lo, hi = locf_intervals(np.array([10.0]), [np.arange(-50.0, 51.0)], (0.9,))[0.9]
        >>> float(lo[0]), float(hi[0])
        (-35.0, 55.0)
    """
    carried = np.asarray(carried, np.float64)
    if len(changes) != carried.shape[-1]:
        raise ValueError(f"{len(changes)} change arrays for {carried.shape[-1]} streams")
    empty = [k for k, c in enumerate(changes) if len(c) == 0]
    if empty:
        raise ValueError(f"streams {empty} have no observed change to build an interval from")
    out = {}
    for level in levels:
        q = np.array([np.quantile(c, [0.5 - level / 2, 0.5 + level / 2]) for c in changes])
        out[level] = (carried + q[:, 0], carried + q[:, 1])
    return out
