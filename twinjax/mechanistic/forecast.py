"""Forecasts of a fitted mechanistic twin: posterior predictive mean and central intervals.

Parameter draws come from the fit's Laplace approximation ``(params, log_sigma) ~ Normal(mode,
cov)``; each draw is simulated over the whole grid (the history's inputs then the future's: a
mechanistic twin's state is its simulation from the start) and, for the predictive intervals,
given its own Gaussian observation noise. One individual is the unit; ``jax.vmap`` over fits,
grids, inputs and keys for a cohort.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Key

from twinjax.mechanistic.fit import Fit
from twinjax.mechanistic.protocol import MechanisticModel, simulate


class Prediction(NamedTuple):
    """The predictive mean and the central interval's bounds at each grid time."""

    mean: Float[Array, "times ..."]
    lower: Float[Array, "times ..."]
    upper: Float[Array, "times ..."]


def posterior_draws(fitted: Fit, key: Key[Array, ""], num_samples: int) -> Float[Array, "n k"]:
    """``(params..., log_sigma)`` drawn from the Laplace approximation (a covariance that is not
    positive definite, from a parameter the data do not identify, is clipped at 0 variance)."""
    mode = jnp.concatenate([fitted.params, fitted.log_sigma[None]])
    values, vectors = jnp.linalg.eigh(fitted.cov)
    root = vectors * jnp.sqrt(jnp.clip(values, 0.0, None))[None, :]
    eps = jax.random.normal(key, (num_samples, mode.shape[0]), mode.dtype)
    return mode[None, :] + eps @ root.T


def forecast(
    model: MechanisticModel,
    fitted: Fit,
    times: Float[ArrayLike, " times"],
    inputs: Any,
    *,
    key: Key[Array, ""],
    num_samples: int = 400,
    level: float = 0.9,
    noise: bool = True,
    substeps: int = 4,
) -> Prediction:
    """Predictive mean and ``level`` central intervals at every time of ``times``.

    Args:
        model: the model that was fitted.
        fitted: one individual's :class:`~twinjax.mechanistic.fit.Fit`.
        times: the grid from the start (history and future).
        inputs: per-interval inputs over the whole grid.
        key: PRNG key.
        num_samples: posterior draws.
        level: the intervals' coverage.
        noise: include observation noise (predictive intervals for measurements); False gives
            intervals for the noise-free trajectory.
        substeps: RK4 steps per interval.

    Returns:
        The :class:`Prediction`.
    """
    k_theta, k_noise = jax.random.split(key)
    z = posterior_draws(fitted, k_theta, num_samples)
    run = lambda theta: simulate(model, theta, times, inputs, substeps=substeps)[0]
    paths = jax.vmap(run)(z[:, :-1])
    if noise:
        sd = jnp.exp(z[:, -1]).reshape((-1,) + (1,) * (paths.ndim - 1))
        paths = paths + sd * jax.random.normal(k_noise, paths.shape, paths.dtype)
    tail = 0.5 * (1.0 - level)
    lower, upper = jnp.quantile(paths, jnp.array([tail, 1.0 - tail]), axis=0)
    return Prediction(paths.mean(0), lower, upper)
