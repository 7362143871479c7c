"""Calibration of predictive distributions: interval coverage, CRPS and PIT.

Sample-based forms take predictive draws along axis 0; Gaussian forms take a mean and an SD.
Every function takes an optional ``mask`` of the points that count.
"""

import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm
from jaxtyping import Array, ArrayLike, Bool, Float


def _masked_mean(x, mask):
    if mask is None:
        return jnp.mean(x)
    mask = jnp.asarray(mask, dtype=x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def central_interval(draws: Float[ArrayLike, "draws ..."], level: float = 0.9):
    """Equal-tailed ``level`` interval of draws along axis 0: ``(lower, upper)``."""
    a = (1.0 - level) / 2.0
    return jnp.quantile(draws, a, axis=0), jnp.quantile(draws, 1.0 - a, axis=0)


def coverage(
    draws: Float[ArrayLike, "draws ..."],
    y: Float[ArrayLike, "..."],
    mask: Bool[ArrayLike, "..."] | None = None,
    *,
    level: float = 0.9,
) -> Float[Array, ""]:
    """Fraction of (masked) points ``y`` inside the central ``level`` interval of the draws."""
    lo, hi = central_interval(draws, level)
    return _masked_mean(((y >= lo) & (y <= hi)).astype(jnp.float32), mask)


def gaussian_coverage(mean, sd, y, mask=None, *, level: float = 0.9) -> Float[Array, ""]:
    """Coverage of the central ``level`` interval of ``Normal(mean, sd)``."""
    half = norm.ppf(0.5 + level / 2.0) * sd
    return _masked_mean((jnp.abs(y - mean) <= half).astype(jnp.float32), mask)


def crps_samples(
    draws: Float[ArrayLike, "draws ..."], y: Float[ArrayLike, "..."]
) -> Float[Array, "..."]:
    """CRPS per point, ``E|X - y| - E|X - X'| / 2``, with the pairwise term computed from the
    sorted draws in ``O(m log m)``: ``E|X - X'| = 2 / m^2 sum_i (2 i - m - 1) x_(i)``."""
    m = draws.shape[0]
    first = jnp.mean(jnp.abs(draws - y[None]), axis=0)
    xs = jnp.sort(draws, axis=0)
    w = (2.0 * jnp.arange(1, m + 1) - m - 1.0).reshape((m,) + (1,) * (draws.ndim - 1))
    pair = 2.0 * jnp.sum(w * xs, axis=0) / m**2
    return first - 0.5 * pair


def crps_gaussian(mean, sd, y) -> Float[Array, "..."]:
    """Closed-form CRPS of ``Normal(mean, sd)`` (Gneiting and Raftery 2007)."""
    z = (y - mean) / sd
    return sd * (z * (2.0 * norm.cdf(z) - 1.0) + 2.0 * norm.pdf(z) - 1.0 / jnp.sqrt(jnp.pi))


def pit_samples(
    draws: Float[ArrayLike, "draws ..."], y: Float[ArrayLike, "..."]
) -> Float[Array, "..."]:
    """Probability integral transform: fraction of draws at or below ``y`` (mid-rank for ties)."""
    below = jnp.mean((draws < y[None]).astype(jnp.float32), axis=0)
    equal = jnp.mean((draws == y[None]).astype(jnp.float32), axis=0)
    return below + 0.5 * equal


def pit_gaussian(mean, sd, y) -> Float[Array, "..."]:
    return norm.cdf((y - mean) / sd)


def calibration_summary(draws, y, mask=None, *, level: float = 0.9) -> dict[str, float]:
    """Coverage, mean CRPS and PIT uniformity (KS distance) over the masked points."""
    pit = pit_samples(draws, y)
    keep = np.ones(np.shape(y), bool) if mask is None else np.asarray(mask, bool)
    return {
        f"coverage_{int(round(100 * level))}": float(coverage(draws, y, mask, level=level)),
        "crps": float(_masked_mean(crps_samples(draws, y), mask)),
        "pit_ks": pit_ks(np.asarray(pit)[keep]),
        "n_points": int(keep.sum()),
    }


def pit_ks(pit: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of PIT values from the uniform distribution."""
    u = np.sort(np.ravel(pit))
    n = u.size
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - u), np.max(u - (i - 1) / n)))
