"""What every twin shares around its network: the inputs it reads at each step and the Gaussian
head it ends with.

At grid step t a twin reads the observed values (zero where missing) with their mask, the
interventions given at t and the static covariates; its network turns these into features, and
two dense layers on the features give the predictive Gaussian of the values at t+1: the mean
and a positive scale ``softplus(.) + min_scale``.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.data import Series
from twinjax.twins.cells import Dense, dense, dense_init

_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: importing twinjax starts no JAX backend


def step_inputs(series: Series) -> Float[Array, "time d_in"]:
    """``[values (0 where missing), mask, interventions, static]`` at every step of a series."""
    values, mask, interventions, static = series
    t = values.shape[0]
    static = jnp.broadcast_to(static, (t, static.shape[-1]))
    return jnp.concatenate(
        [jnp.where(mask, values, 0.0), mask.astype(values.dtype), interventions, static], axis=-1
    )


def head_init(
    key_mean: PRNGKeyArray, key_scale: PRNGKeyArray, d_head: int, n_features: int
) -> tuple[Dense, Dense]:
    """The mean and scale layers (the scale starts at softplus(-1) ~ 0.31)."""
    scale = dense_init(key_scale, d_head, n_features)
    # typed, not weak: a weakly typed leaf turns strong after the first optimizer step, so
    # every jitted training step would be compiled twice (the first call, then the rest)
    scale = scale._replace(b=jnp.full(n_features, -1.0, scale.b.dtype))
    return dense_init(key_mean, d_head, n_features), scale


def predict_head(params, spec, z):
    """``mean, scale`` from features ``z [..., d_head]`` (``params.mean``, ``params.scale``,
    ``spec.min_scale``)."""
    mean = dense(params.mean, z)
    scale = jax.nn.softplus(dense(params.scale, z)) + spec.min_scale
    return mean, scale


def gaussian_nll(mean, scale, y):
    return 0.5 * _LOG_2PI + jnp.log(scale) + 0.5 * jnp.square((y - mean) / scale)
