"""Equal-weight Gaussian mixtures as predictive distributions: PIT, samples, spread calibration.

A Bayesian twin's predictive for one target is the average of the twin's Gaussian over posterior
draws: components ``mean[s], scale[s]`` along axis 0 of every array here.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm
from jaxtyping import ArrayLike, Bool, Float, PRNGKeyArray

from twinjax.eval.score import crps_draws, pit_ks


def mixture_pit(
    mean: Float[ArrayLike, "draws ..."],
    scale: Float[ArrayLike, "draws ..."],
    y: Float[ArrayLike, "..."],
) -> np.ndarray:
    """PIT of ``y`` under the mixture (exact: the average of the components' CDFs)."""
    return np.asarray(jnp.mean(norm.cdf((y[None] - mean) / scale), axis=0))


def mixture_moments(mean, scale) -> tuple[np.ndarray, np.ndarray]:
    """Mixture mean and variance (law of total variance)."""
    m = jnp.mean(mean, axis=0)
    var = jnp.mean(jnp.square(scale) + jnp.square(mean - m[None]), axis=0)
    return np.asarray(m), np.asarray(var)


def mixture_samples(key: PRNGKeyArray, mean, scale, per_component: int) -> np.ndarray:
    """``draws * per_component`` samples of the mixture, along axis 0."""
    eps = jax.random.normal(key, (per_component,) + tuple(mean.shape))
    return np.asarray((mean[None] + scale[None] * eps).reshape((-1,) + tuple(mean.shape[1:])))


def spread_factor(
    mean: Float[ArrayLike, "draws ... features"],
    scale: Float[ArrayLike, "draws ... features"],
    y: Float[ArrayLike, "... features"],
    observed: Bool[ArrayLike, "... features"],
) -> np.ndarray:
    """Per-feature factor ``c`` with ``E[(y - m)^2 / (c^2 v)] = 1`` over the observed points.

    ``m, v`` are the mixture mean and variance: the same variance recalibration as the point
    twins get (``pipeline.calibrate_scales``), fitted on a validation segment.
    """
    m, var = mixture_moments(mean, scale)
    z2 = np.where(observed, (np.asarray(y) - m) ** 2 / var, 0.0)
    axes = tuple(range(z2.ndim - 1))
    return np.sqrt(z2.sum(axes) / np.maximum(np.asarray(observed).sum(axes), 1))


def rescale_spread(mean, scale, factor) -> tuple[np.ndarray, np.ndarray]:
    """The mixture stretched by ``factor`` about its mean (components' offsets and scales)."""
    m = np.mean(mean, axis=0, keepdims=True)
    return m + factor * (np.asarray(mean) - m), factor * np.asarray(scale)


def mixture_calibration(
    key: PRNGKeyArray, mean, scale, y, observed, *, per_component: int = 8
) -> dict[str, float]:
    """90%/50% coverage (from the exact PIT), CRPS (from samples) and PIT KS over observed points."""
    observed = np.asarray(observed, bool)
    pit = mixture_pit(mean, scale, y)[observed]
    crps = crps_draws(mixture_samples(key, mean, scale, per_component), y)
    return {
        "coverage_90": float(np.mean(np.abs(pit - 0.5) <= 0.45)),
        "coverage_50": float(np.mean(np.abs(pit - 0.5) <= 0.25)),
        "crps": float(np.asarray(crps)[observed].mean()),
        "pit_ks": pit_ks(pit),
        "n_points": int(observed.sum()),
    }
