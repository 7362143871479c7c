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
    theta = jnp.asarray(samples["theta"])
    curves = jax.vmap(lambda th: predict_curves(spec, th, times, regimen))(theta)
    sigma = {s: jnp.asarray(samples[s])[:, None, None] for s in error_sites(spec.error_model)}
    noisy = observation_dist(spec.error_model, curves, sigma).sample(key)
    return PosteriorPredictive(curves, from_model_scale(spec.error_model, noisy))
