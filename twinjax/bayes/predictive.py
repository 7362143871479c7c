"""Posterior predictive distributions of hierarchical twins, per individual, at any times."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.bayes.hierarchical import HierarchicalSpec, predict_curves
from twinjax.bayes.residual import error_sites, from_model_scale, observation_dist


class PosteriorPredictive(NamedTuple):
    curves: Float[Array, "draws individuals time"]  # noise-free predicted curves
    observations: Float[Array, "draws individuals time"]  # curves plus residual error


def flatten_chains(samples: dict) -> dict:
    """``[chains, draws, ...]`` -> ``[chains * draws, ...]`` for every site."""
    return {k: np.reshape(v, (-1, *np.shape(v)[2:])) for k, v in samples.items()}


def posterior_predictive(
    spec: HierarchicalSpec,
    samples: dict,
    times: Float[ArrayLike, "individuals time"],
    regimen,
    *,
    key: jax.Array,
) -> PosteriorPredictive:
    """Predictive curves and observations for draws ``samples`` (flat: ``theta`` is
    ``[draws, individuals, params]``) at ``times`` under each individual's ``regimen``."""
    theta, times = jnp.asarray(samples["theta"]), jnp.asarray(times)
    curves = jax.vmap(lambda th: predict_curves(spec, th, times, regimen))(theta)
    sigma = {s: jnp.asarray(samples[s])[:, None, None] for s in error_sites(spec.error_model)}
    noisy = observation_dist(spec.error_model, curves, sigma).sample(key)
    return PosteriorPredictive(curves, from_model_scale(spec.error_model, noisy))


def pointwise_log_likelihood(
    spec: HierarchicalSpec, samples: dict, data
) -> Float[Array, "draws individuals time"]:
    """Log density of each observation of ``data`` under each flat draw (``theta`` is
    ``[draws, individuals, params]``), on the error model's scale (``log y`` for
    ``log_additive``); padding entries are 0. The input of PSIS-LOO (``arviz.loo``) over
    observations."""
    theta = jnp.asarray(samples["theta"])
    times, y = jnp.asarray(data.times), jnp.asarray(data.values)
    y = jnp.log(y) if spec.error_model == "log_additive" else y
    mask = jnp.asarray(data.mask)

    def one(th, sigma):
        pred = predict_curves(spec, th, times, data.regimen)
        return jnp.where(mask, observation_dist(spec.error_model, pred, sigma).log_prob(y), 0.0)

    sigma = {s: jnp.asarray(samples[s]) for s in error_sites(spec.error_model)}
    return jax.lax.map(lambda a: one(*a), (theta, sigma), batch_size=64)
