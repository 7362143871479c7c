"""Per-individual time-ordered splits and context/horizon windows."""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray


class TimeSplit(NamedTuple):
    """Grid-step boundaries per individual: train is [0, train_end), val [train_end, val_end),
    test [val_end, length)."""

    train_end: Int[np.ndarray, " individuals"]
    val_end: Int[np.ndarray, " individuals"]
    lengths: Int[np.ndarray, " individuals"]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raises ValueError (naming both) unless each fraction is in [0, 1) and their sum is < 1.

    A zero fraction is no validation (or no test) period: everything before the end trains.

    >>> check_fractions(0.5, 0.5)
    Traceback (most recent call last):
    ...
    ValueError: bad split fractions val_fraction=0.5, test_fraction=0.5: each must be in [0, 1) and their sum below 1 (0 for no validation or test period)
    """
    ok = all(0 <= f < 1 for f in (val_fraction, test_fraction))  # False for NaN
    if not (ok and val_fraction + test_fraction < 1):
        raise ValueError(
            f"bad split fractions val_fraction={val_fraction}, test_fraction={test_fraction}: "
            "each must be in [0, 1) and their sum below 1 (0 for no validation or test period)"
        )


def time_split(lengths, val_fraction: float = 0.15, test_fraction: float = 0.15) -> TimeSplit:
    """Splits each individual's own timeline in order: past for training, future for testing.

    Args:
        lengths: each individual's number of grid steps.
        val_fraction: share of each timeline for validation (after training; 0: none).
        test_fraction: share of each timeline for testing (the end; 0: none).

    Returns:
        A :class:`TimeSplit` of per-individual boundaries (int32).

    Raises:
        ValueError: bad fractions, or an individual with fewer than 2 training steps.

    Example:
        >>> split = time_split([20, 10], val_fraction=0.2, test_fraction=0.2)
        >>> split.train_end.tolist(), split.val_end.tolist()
        ([12, 6], [16, 8])
        >>> segment_mask(split, 10, "test")[1].nonzero()[0].tolist()
        [8, 9]
    """
    check_fractions(val_fraction, test_fraction)
    lengths = np.asarray(lengths)
    val_end = np.floor(lengths * (1 - test_fraction)).astype(np.int32)
    train_end = np.floor(lengths * (1 - test_fraction - val_fraction)).astype(np.int32)
    if np.any(train_end < 2):
        raise ValueError("an individual has fewer than 2 training steps; use longer series")
    return TimeSplit(train_end, val_end, lengths.astype(np.int32))


def segment_mask(
    split: TimeSplit, n_steps: int, segment: Literal["train", "val", "test"]
) -> np.ndarray:
    """[N, T] mask of the grid steps belonging to ``segment`` ("train", "val" or "test").

    Args:
        split: the per-individual boundaries.
        n_steps: the grid length ``T``.
        segment: which part of each timeline.

    Returns:
        A boolean ``[N, T]`` mask.
    """
    t = np.arange(n_steps)[None, :]
    lo, hi = {
        "train": (0, split.train_end),
        "val": (split.train_end, split.val_end),
        "test": (split.val_end, split.lengths),
    }[segment]
    return (t >= np.asarray(lo)[..., None]) & (t < np.asarray(hi)[:, None])


def window_starts(
    key: PRNGKeyArray, end: Int[Array, ""], *, length: int, n_windows: int
) -> Int[Array, " windows"]:
    """Random starts of ``n_windows`` windows of ``length`` steps inside [0, end) (one individual).

    If the segment is shorter than ``length``, every window starts at 0 (and is masked beyond ``end``).
    """
    high = jnp.maximum(end - length, 0) + 1
    return jax.random.randint(key, (n_windows,), 0, high)


def take_windows(x, starts: Int[Array, " windows"], length: int):
    """Slices ``x[start:start+length]`` along axis 0 for each start: [windows, length, ...]."""
    return jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(x, s, length, axis=0))(starts)
