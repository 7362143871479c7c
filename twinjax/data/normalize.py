"""Normalization over observed (masked) values: population or per-individual mean and std.

Statistics are a :class:`NormStats` NamedTuple of plain arrays (a pytree: orbax saves it as is;
:func:`stats_to_dict`/:func:`stats_from_dict` give a JSON form). Population stats have shape ``[F]``;
per-individual stats ``[N, F]`` and apply to values ``[N, T, F]`` (or, vmapped, ``[F]`` to ``[T, F]``).
"""

from collections.abc import Callable
from typing import Literal, NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float


class NormStats(NamedTuple):
    mean: Float[Array, "*individuals features"]
    std: Float[Array, "*individuals features"]


def fit_normalizer(
    values: Float[ArrayLike, "individuals time features"],
    mask: Bool[ArrayLike, "individuals time features"],
    *,
    per_individual: bool = False,
    min_count: int = 2,
    across=None,
) -> NormStats:
    """Mean and std (ddof 0) of the observed values of each feature.

    Population stats pool all individuals and times; per-individual stats pool each individual's times.
    A std below 1e-12 (a constant feature) is set to 1, as is the std of a feature with no observations
    (whose mean is 0). Per-individual: a feature with fewer than ``min_count`` observations for an
    individual falls back to the population stats of that feature.

    Args:
        values: the cohort's values (anything where ``mask`` is False is ignored).
        mask: True where a value was observed.
        per_individual: fit one mean and std per individual and feature.
        min_count: fewest observations for an individual's own stats.
        across: the population stats pool the individuals of every part of a cohort held
            apart (``across.sum``/``across.max`` of a host array over the parts, e.g.
            :class:`twinjax.train.processes.Across` over processes); None: these individuals.

    Returns:
        :class:`NormStats` of shape ``[F]`` (population) or ``[N, F]`` (per individual).

    Example:
        >>> import numpy as np
        >>> values = np.array([[[1.0], [3.0], [99.0]]])  # the last value is not observed
        >>> mask = np.array([[[True], [True], [False]]])
        >>> stats = fit_normalizer(values, mask)
        >>> stats.mean.tolist(), stats.std.tolist()
        ([2.0], [1.0])
        >>> normalize(stats, values, mask=mask)[0, :, 0].tolist()
        [-1.0, 1.0, 0.0]
    """
    values, mask = jnp.asarray(values), jnp.asarray(mask, dtype=bool)
    pop = _moments(values, mask, axes=tuple(range(values.ndim - 1)), across=across)
    if not per_individual:
        return pop
    count = mask.sum(axis=-2)
    ind = _moments(values, mask, axes=(values.ndim - 2,))
    enough = count >= min_count
    return NormStats(jnp.where(enough, ind.mean, pop.mean), jnp.where(enough, ind.std, pop.std))


def _moments(values, mask, axes, across=None) -> NormStats:
    """Mean and std over ``axes``; the std as ``s * sqrt(mean((x - mean)^2 / s^2))`` with ``s``
    the largest deviation, so that values the reader accepts (up to float32's square root)
    cannot overflow the sum of squares, as the variance itself would."""
    total = lambda x: x if across is None else jnp.asarray(across.sum(np.asarray(x)))
    largest = lambda x: x if across is None else jnp.asarray(across.max(np.asarray(x)))
    count = total(mask.sum(axis=axes))
    n = jnp.maximum(count, 1)
    mean = total(jnp.where(mask, values, 0).sum(axis=axes)) / n
    centred = jnp.where(mask, values - jnp.expand_dims(mean, axes), 0)
    scale = largest(jnp.abs(centred).max(axis=axes))
    scale = jnp.where(scale > 0, scale, 1)
    square = jnp.square(centred / jnp.expand_dims(scale, axes))
    std = scale * jnp.sqrt(total(square.sum(axis=axes)) / n)
    return NormStats(mean, jnp.where((std < 1e-12) | (count == 0), 1.0, std).astype(mean.dtype))


def _expand(stat: Array, values: Array) -> Array:
    """Per-individual ``[..., F]`` stats gain a time axis to broadcast over ``[..., T, F]`` values."""
    return stat if stat.ndim <= 1 or stat.ndim == values.ndim else stat[..., None, :]


def normalize(
    stats: NormStats,
    values: Float[ArrayLike, "*batch features"],
    *,
    mask: Bool[ArrayLike, "*batch features"] | None = None,
) -> Float[Array, "*batch features"]:
    """``(values - mean) / std``; where ``mask`` is given and False the output is 0.

    Args:
        stats: population ``[F]`` or per-individual ``[N, F]`` stats.
        values: values ``[..., F]`` (population stats) or ``[N, T, F]`` (per-individual stats).
        mask: True where observed, or None.

    Returns:
        The normalized values, shaped like ``values``.
    """
    values = jnp.asarray(values)
    out = (values - _expand(stats.mean, values)) / _expand(stats.std, values)
    return out if mask is None else jnp.where(mask, out, 0.0)


def denormalize(
    stats: NormStats, values: Float[ArrayLike, "*batch features"]
) -> Float[Array, "*batch features"]:
    """The inverse of :func:`normalize`: ``values * std + mean``."""
    values = jnp.asarray(values)
    return values * _expand(stats.std, values) + _expand(stats.mean, values)


def denormalize_scale(
    stats: NormStats, scale: Float[ArrayLike, "*batch features"]
) -> Float[Array, "*batch features"]:
    """A scale (predictive std) in normalized units back to data units: ``scale * std``."""
    scale = jnp.asarray(scale)
    return scale * _expand(stats.std, scale)


def identity_stats(n_features: int) -> NormStats:
    """Stats that leave values unchanged (mean 0, std 1)."""
    return NormStats(jnp.zeros(n_features), jnp.ones(n_features))


def stats_to_dict(stats: NormStats) -> dict:
    """A JSON-serializable form (nested lists)."""
    return {"mean": np.asarray(stats.mean).tolist(), "std": np.asarray(stats.std).tolist()}


def stats_from_dict(d: dict) -> NormStats:
    return NormStats(jnp.asarray(d["mean"], jnp.float32), jnp.asarray(d["std"], jnp.float32))


class Normalizer(NamedTuple):
    """One normalization scheme as a pure pair of functions (``fit`` then ``normalize``...)."""

    fit: Callable[..., NormStats]
    normalize: Callable[..., Array]
    denormalize: Callable[..., Array]
    denormalize_scale: Callable[..., Array]


def make_normalizer(kind: Literal["population", "individual", "none"] = "population") -> Normalizer:
    """The scheme named by ``DataConfig.normalization``: "population", "individual" or "none".

    Args:
        kind: pooled stats (``"population"``), one set per individual (``"individual"``), or
            the identity (``"none"``).

    Returns:
        A :class:`Normalizer` whose ``fit(values, mask)`` returns :class:`NormStats`.
    """
    if kind not in ("population", "individual", "none"):
        raise ValueError(f"unknown normalization {kind!r}: use population, individual or none")

    def fit(values, mask, across=None):
        if kind == "none":
            return identity_stats(jnp.shape(values)[-1])
        return fit_normalizer(values, mask, per_individual=kind == "individual", across=across)

    return Normalizer(fit, normalize, denormalize, denormalize_scale)
